package verify

import (
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/reference"
)

// TestCheckSignedIdentity: the containers-policy.json meanings of the
// signed identity modes, on what cosign writes (the repository only) and
// on references with tags.
func TestCheckSignedIdentity(t *testing.T) {
	const digest = "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		mode          SignedIdentity
		image, signed string
		want          string // "" passes
	}{
		{SignedIdentityOff, "registry.example.org/app:v1", "", ""},
		{MatchRepository, "registry.example.org/app:v1", "registry.example.org/app", ""},
		{MatchRepository, "registry.example.org/app" + digest, "registry.example.org/app:v9", ""},
		{MatchRepository, "registry.example.org/app:v1", "registry.example.org/app-evil", "signed for repository registry.example.org/app-evil"},
		{MatchRepository, "registry.example.org/app:v1", "", "names no image"},
		{MatchExact, "registry.example.org/app:v1", "registry.example.org/app:v1", ""},
		{MatchExact, "registry.example.org/app", "registry.example.org/app:latest", ""},
		{MatchExact, "registry.example.org/app:v1", "registry.example.org/app", "names only the repository registry.example.org/app"},
		{MatchExact, "registry.example.org/app:v1", "registry.example.org/app:v2", "signed for registry.example.org/app:v2, not registry.example.org/app:v1"},
		// By digest alone: the repository decides, if the signature names a
		// tag or digest; by tag (with or without a digest): exactly.
		{MatchRepoDigestOrExact, "registry.example.org/app" + digest, "registry.example.org/app:v3", ""},
		{MatchRepoDigestOrExact, "registry.example.org/app" + digest, "registry.example.org/app" + digest, ""},
		{MatchRepoDigestOrExact, "registry.example.org/app" + digest, "registry.example.org/app", "names only the repository"},
		{MatchRepoDigestOrExact, "registry.example.org/app" + digest, "registry.example.org/other:v3", "signed for repository registry.example.org/other"},
		{MatchRepoDigestOrExact, "registry.example.org/app:v1", "registry.example.org/app:v1", ""},
		{MatchRepoDigestOrExact, "registry.example.org/app:v1", "registry.example.org/app", "names only the repository"},
		{MatchRepoDigestOrExact, "registry.example.org/app:v1" + digest, "registry.example.org/app:v1", "not registry.example.org/app:v1@sha256"},
		{MatchRepoDigestOrExact, "registry.example.org/app:v1" + digest, "registry.example.org/app:v1" + digest, ""},
		{MatchRepoDigestOrExact, "docker.io/library/nginx:1.27", "nginx:1.27", ""},
	} {
		image, err := reference.Parse(tc.image)
		if err != nil {
			t.Fatal(err)
		}
		err = checkSignedIdentity(tc.mode, image, tc.signed)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("mode %d, %s signed %q: %v", tc.mode, tc.image, tc.signed, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("mode %d, %s signed %q: %v, want %q", tc.mode, tc.image, tc.signed, err, tc.want)
		}
	}
}
