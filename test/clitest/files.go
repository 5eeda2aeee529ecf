package clitest

import (
	"os"
	"path/filepath"
	"testing"
)

// WriteFile writes content to dir/name (readable by its owner only) and
// returns the path.
func WriteFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// WriteTemp writes data to name in a new temporary directory of t and
// returns the path.
func WriteTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	return WriteFile(t, t.TempDir(), name, string(data))
}

// ReadFile returns the content of the file at path.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
