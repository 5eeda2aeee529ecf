package trust

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// A file over the size cap is refused having read at most the cap and one
// byte more (the whole file was read first, then measured).
func TestPackDirectoryReadsNoMoreThanTheCap(t *testing.T) {
	const limit = 1 << 20
	for _, tc := range []struct {
		name  string
		sizes map[string]int64
	}{
		{"one file far over the cap", map[string]int64{"big.json": 64 << 20}},
		{"a file over what the others left", map[string]int64{"a.json": limit / 2, "targets/b.json": 64 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, size := range tc.sizes {
				p := filepath.Join(dir, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				f, err := os.Create(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(size); err != nil { // sparse: no disk
					t.Fatal(err)
				}
				f.Close()
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := packDirectory(dir, limit)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("got %v, want ErrTooLarge", err)
			}
			// Reading limit+1 bytes allocates a few times that while the
			// buffer grows; reading the 64 MiB file would allocate 64 MiB.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*limit {
				t.Errorf("refusing a directory over %d bytes allocated %d bytes", limit, alloc)
			}
		})
	}
}
