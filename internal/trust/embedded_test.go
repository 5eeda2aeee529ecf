package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestPublicGood(t *testing.T) {
	tr, err := PublicGood()
	if err != nil {
		t.Fatalf("PublicGood: %v", err)
	}
	if n := len(tr.FulcioCertificateAuthorities()); n < 1 {
		t.Errorf("Fulcio CAs: got %d, want at least 1", n)
	}
	if n := len(tr.RekorLogs()); n < 1 {
		t.Errorf("Rekor logs: got %d, want at least 1", n)
	}
	if n := len(tr.CTLogs()); n < 1 {
		t.Errorf("CT logs: got %d, want at least 1", n)
	}

	// Each call returns a root of its own.
	again, err := PublicGood()
	if err != nil {
		t.Fatalf("PublicGood again: %v", err)
	}
	if again == tr {
		t.Error("PublicGood returned the same *TrustedRoot twice; callers must own theirs")
	}
}

// The embedded root must be what hack/update-trusted-root.sh wrote: a hand
// edit of either file fails here.
func TestEmbeddedSource(t *testing.T) {
	src := EmbeddedSource()

	sum := sha256.Sum256([]byte(embeddedTrustedRoot))
	if got := hex.EncodeToString(sum[:]); got != src.SHA256 {
		t.Errorf("sha256 of embedded/trusted_root.json = %s, SOURCE records %s; run hack/update-trusted-root.sh", got, src.SHA256)
	}
	if src.Package != "@sigstore/tuf" {
		t.Errorf("Package = %q, want @sigstore/tuf", src.Package)
	}
	if src.Repository != "https://tuf-repo-cdn.sigstore.dev" {
		t.Errorf("Repository = %q, want the public-good TUF repository", src.Repository)
	}
	if src.Target != "trusted_root.json" {
		t.Errorf("Target = %q, want trusted_root.json", src.Target)
	}
	if !strings.HasPrefix(src.Integrity, "sha512-") {
		t.Errorf("Integrity = %q, want a sha512- integrity", src.Integrity)
	}

	// The embedded bytes are the files on disk (guards a stale build cache
	// or an embed pattern pointing elsewhere).
	for file, embedded := range map[string]string{
		"embedded/trusted_root.json": embeddedTrustedRoot,
		"embedded/SOURCE":            embeddedSourceFile,
	} {
		disk, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if string(disk) != embedded {
			t.Errorf("%s differs from the embedded copy", file)
		}
	}
}

func TestParseSource(t *testing.T) {
	const valid = `# comment
package: @sigstore/tuf
version: 5.0.1
integrity: sha512-abc==

repository: https://tuf-repo-cdn.sigstore.dev
target: trusted_root.json
sha256: 0123
date: 2026-01-02
`
	tests := []struct {
		name    string
		text    string
		want    Source
		wantErr string
	}{
		{
			name: "valid",
			text: valid,
			want: Source{
				Package:    "@sigstore/tuf",
				Version:    "5.0.1",
				Integrity:  "sha512-abc==",
				Repository: "https://tuf-repo-cdn.sigstore.dev",
				Target:     "trusted_root.json",
				SHA256:     "0123",
				Date:       "2026-01-02",
			},
		},
		{name: "missing key", text: strings.Replace(valid, "sha256: 0123\n", "", 1), wantErr: "missing sha256"},
		{name: "unknown key", text: valid + "extra: 1\n", wantErr: `unknown key "extra"`},
		{name: "duplicate key", text: valid + "version: 6\n", wantErr: `duplicate key "version"`},
		{name: "empty value", text: strings.Replace(valid, "version: 5.0.1", "version:", 1), wantErr: "empty version"},
		{name: "no colon", text: valid + "garbage\n", wantErr: `want "key: value"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSource(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseSource error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSource: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parseSource (-want +got):\n%s", diff)
			}
		})
	}
}
