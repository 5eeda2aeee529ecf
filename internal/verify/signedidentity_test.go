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
		{MatchExact, "registry.example.org/app:v1", "registry.example.org/app", "signed for registry.example.org/app, not registry.example.org/app:v1"},
		{MatchExact, "registry.example.org/app:v1", "registry.example.org/app:v2", "not registry.example.org/app:v1"},
		// By digest: the repository decides; by tag: the reference as written.
		{MatchRepoDigestOrExact, "registry.example.org/app" + digest, "registry.example.org/app", ""},
		{MatchRepoDigestOrExact, "registry.example.org/app" + digest, "registry.example.org/other", "signed for repository registry.example.org/other"},
		{MatchRepoDigestOrExact, "registry.example.org/app:v1", "registry.example.org/app:v1", ""},
		{MatchRepoDigestOrExact, "registry.example.org/app:v1", "registry.example.org/app", "not registry.example.org/app:v1"},
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
