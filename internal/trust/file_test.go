package trust

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadTrustedRootFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	copied := write("trusted_root.json", []byte(embeddedTrustedRoot))
	garbage := write("garbage.json", []byte("this is not a trusted root"))
	wrongMedia := write("wrong-media.json", []byte(`{"mediaType": "application/json"}`))
	oversized := filepath.Join(dir, "oversized.json")
	f, err := os.Create(oversized)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(MaxTrustedRootFileSize + 1); err != nil { // sparse: cheap
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		path    string
		wantErr error // nil: any error will do when wantFail
		fail    bool
	}{
		{name: "copy of the embedded root", path: copied},
		{name: "garbage", path: garbage, fail: true},
		{name: "wrong media type", path: wrongMedia, fail: true},
		{name: "oversized", path: oversized, fail: true, wantErr: ErrTooLarge},
		{name: "missing", path: filepath.Join(dir, "missing.json"), fail: true, wantErr: os.ErrNotExist},
		{name: "directory", path: dir, fail: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := LoadTrustedRootFile(tt.path)
			if !tt.fail {
				if err != nil {
					t.Fatalf("LoadTrustedRootFile: %v", err)
				}
				if len(tr.FulcioCertificateAuthorities()) == 0 || len(tr.RekorLogs()) == 0 {
					t.Error("loaded root has no Fulcio CA or no Rekor log")
				}
				return
			}
			if err == nil {
				t.Fatal("LoadTrustedRootFile succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the file %s", err, tt.path)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %q is not %v", err, tt.wantErr)
			}
		})
	}
}
