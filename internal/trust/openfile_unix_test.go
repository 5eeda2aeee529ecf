//go:build unix

package trust

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A FIFO, a directory and a symbolic link leading out of the root are not
// opened for reading (open on a FIFO blocks until a writer comes); a
// regular file and a link to one inside the root are.
func TestOpenRegular(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret.json")
	for _, err := range []error{
		os.WriteFile(filepath.Join(dir, "root.json"), []byte("{}"), 0o644),
		os.WriteFile(outside, []byte("{}"), 0o644),
		syscall.Mkfifo(filepath.Join(dir, "fifo.json"), 0o644),
		os.Mkdir(filepath.Join(dir, "targets"), 0o755),
		os.Symlink(outside, filepath.Join(dir, "out.json")),
		os.Symlink("fifo.json", filepath.Join(dir, "tofifo.json")),
		os.Symlink("root.json", filepath.Join(dir, "in.json")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, tc := range []struct {
		name    string
		wantErr bool
	}{
		{"root.json", false},
		{"in.json", false},
		{"fifo.json", true},
		{"tofifo.json", true},
		{"targets", true},
		{"out.json", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				f, _, err := OpenRegular(root, tc.name)
				if err == nil {
					f.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if (err != nil) != tc.wantErr {
					t.Errorf("OpenRegular: %v, want error %v", err, tc.wantErr)
				}
			case <-time.After(30 * time.Second): // bounds the test's wait only
				t.Fatal("OpenRegular blocked")
			}
		})
	}
	// PackDirectory refuses the directory, naming the FIFO or the link.
	if _, err := PackDirectory(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("PackDirectory of a directory with a FIFO and links: %v, want ErrNotRegular", err)
	}
}
