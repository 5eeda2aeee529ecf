package harness

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
