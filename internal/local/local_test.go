package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("12345"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		limit   int64
		wantErr string
	}{
		{5, ""},
		{4, "is larger than 4 bytes"},
	} {
		data, err := ReadFile(p, tc.limit)
		switch {
		case tc.wantErr == "" && (err != nil || string(data) != "12345"):
			t.Errorf("limit %d: %q, %v", tc.limit, data, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("limit %d: error %v, want %q", tc.limit, err, tc.wantErr)
		}
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing"), 5); err == nil {
		t.Error("a missing file was read")
	}
}

// TrustedRoot("") is the embedded public-good root; a file that is not a
// trusted root is refused.
func TestTrustedRoot(t *testing.T) {
	tr, err := TrustedRoot("")
	if err != nil || len(tr.FulcioCertificateAuthorities()) == 0 {
		t.Fatalf("embedded root: %v", err)
	}
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := TrustedRoot(p); err == nil {
		t.Error("a broken trusted_root.json was accepted")
	}
}
