package policydir

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSync(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("gone.json", "old")          // a namespace that no longer exists
	write("same.json", "same")         // already right
	write("README", "not ours")        // not a namespace file
	write("Not_A_NS.json", "theirs")   // not a namespace name
	write(".gone.json.tmp-123", "par") // a write that never finished
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(filepath.Join(dir, ".gone.json.tmp-123"), old, old); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(dir, "same.json"), old, old); err != nil {
		t.Fatal(err)
	}

	ch, err := Sync(dir, map[string][]byte{"same": []byte("same"), "new": []byte("new"), "changed": []byte("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Changes{Written: []string{"changed", "new"}, Unchanged: []string{"same"}, Removed: []string{"gone"}}, ch); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got[e.Name()] = string(data)
		if info, _ := e.Info(); e.Name() != "README" && e.Name() != "Not_A_NS.json" && info.Mode().Perm() != 0o644 && e.Name() != "same.json" {
			t.Errorf("%s has mode %v, want 0644 (the runtime reads it)", e.Name(), info.Mode().Perm())
		}
	}
	want := map[string]string{"same.json": "same", "new.json": "new", "changed.json": "v2", "README": "not ours", "Not_A_NS.json": "theirs"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
	if fi, err := os.Stat(filepath.Join(dir, "same.json")); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("the unchanged file was rewritten (mtime %v, want %v)", fi.ModTime(), old)
	}

	// A second pass with the same content writes nothing.
	ch, err = Sync(dir, map[string][]byte{"same": []byte("same"), "new": []byte("new"), "changed": []byte("v2")})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Written)+len(ch.Removed) != 0 {
		t.Errorf("second pass changed %+v", ch)
	}
}

func TestSyncRefusesBadNames(t *testing.T) {
	for _, name := range []string{"../etc", "a/b", "", "UPPER", ".hidden"} {
		if _, err := Sync(t.TempDir(), map[string][]byte{name: []byte("x")}); err == nil {
			t.Errorf("Sync accepted the namespace name %q", name)
		}
	}
}

// TestWriteFileAtomicNeverPartial: a reader polling the file while it is
// rewritten sees one whole version or the other, never a mix or nothing.
func TestWriteFileAtomicNeverPartial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ns.json")
	a, b := make([]byte, 1<<20), make([]byte, 1<<20)
	for i := range a {
		a[i], b[i] = 'a', 'b'
	}
	if err := WriteFileAtomic(path, a); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 20; i++ {
			data := a
			if i%2 == 0 {
				data = b
			}
			if err := WriteFileAtomic(path, data); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			entries, _ := os.ReadDir(filepath.Dir(path))
			if len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}
			return
		default:
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		if len(data) != len(a) || (data[0] != data[len(data)-1]) {
			t.Fatalf("read %d saw a partial file (%d bytes)", reads, len(data))
		}
	}
}
