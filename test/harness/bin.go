package harness

import (
	"os"
	"path/filepath"
	"testing"
)

// BinDir returns the folder holding the tool binaries: $SIGNET_BIN_DIR, or bin/
// at the root of the repository that contains the working directory.
func BinDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("SIGNET_BIN_DIR"); dir != "" {
		return dir
	}
	root, err := RepoRoot()
	if err != nil {
		t.Fatalf("finding the tool binaries: %v (set SIGNET_BIN_DIR or run the tests inside the signet repository)", err)
	}
	return filepath.Join(root, "bin")
}

// Binary returns the path of the named tool binary, failing the test with
// instructions when it has not been built.
func Binary(t testing.TB, name string) string {
	t.Helper()
	path := filepath.Join(BinDir(t), name)
	fi, err := os.Stat(path)
	if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is missing: this test runs the real %s; build it with `make tools` (or run `make test`, which does)", path, name)
	}
	return path
}

// RepoRoot returns the root of the signet repository containing the working
// directory: the nearest parent holding a go.mod for module
// github.com/signet-dev/signet.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && isSignetModule(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

func isSignetModule(gomod []byte) bool {
	const want = "module github.com/signet-dev/signet\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}
