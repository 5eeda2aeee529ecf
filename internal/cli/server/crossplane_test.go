package server

import (
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
)

// TestServeCrossplaneRegistryFlag: --crossplane-registry is documented with
// its default, and a value that is not a registry host is refused before
// anything starts.
func TestServeCrossplaneRegistryFlag(t *testing.T) {
	stdout, _, code := runServer(t, "serve", "--help")
	if code != cli.ExitOK || !strings.Contains(stdout, "--crossplane-registry") || !strings.Contains(stdout, `(default "xpkg.crossplane.io")`) {
		t.Errorf("serve --help (exit %d) does not document --crossplane-registry with its default:\n%s", code, stdout)
	}
	for _, bad := range []string{"", "https://xpkg.crossplane.io", "xpkg.crossplane.io/crossplane", "registry"} {
		_, stderr, code := runServer(t, "serve", "--crossplane-registry", bad)
		if code != cli.ExitUndecided || !strings.Contains(stderr, "--crossplane-registry") || !strings.Contains(stderr, "want a registry host") {
			t.Errorf("serve --crossplane-registry %q: exit %d, stderr %q; want 2 naming the flag", bad, code, stderr)
		}
	}
}
