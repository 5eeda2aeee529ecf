package registry_test

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/registry"
)

// newClient returns a client for the plain-HTTP loopback registries the
// tests start.
func newClient(t *testing.T, opts ...registry.Option) *registry.Client {
	t.Helper()
	c, err := registry.New(append([]registry.Option{registry.InsecureAllowHTTP()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sha256Digest returns "sha256:<hex>" of b.
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tagOf is the tag cosign gives what it attaches to digest:
// sha256-<hex><suffix>.
func tagOf(digest, suffix string) string { return strings.Replace(digest, ":", "-", 1) + suffix }
