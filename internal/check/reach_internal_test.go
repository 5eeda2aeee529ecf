package check

import (
	"net/http"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestCachedOnlyMakesNoRequest: a decision that needs the registry (a tag to
// pin, a digest whose result is not cached) is refused under cachedOnly
// without a request, and decided with one under withRegistry; one that needs
// no registry (an unmatched image) is decided under either.
func TestCachedOnlyMakesNoRequest(t *testing.T) {
	c := registrytest.Status(http.StatusNotFound)
	rc, err := registry.New(registry.WithTransport(c))
	if err != nil {
		t.Fatal(err)
	}
	snap := policytest.Snapshot(t, "pass", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
		Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
	}, nil, policy.Config{})
	dc := &Decider{Registry: rc, Cache: NewCache(0, 0, 10)}
	target := policy.Target{Namespace: "default"}
	for _, image := range []string{"registry.example.org/app:v1", "registry.example.org/app@sha256:" + sixtyFourZeros} {
		if _, ok := dc.decide(t.Context(), &credentials{}, snap, image, target, cachedOnly); ok || c.Requests() != 0 {
			t.Fatalf("%s: cold cachedOnly decided (%v) or made %d requests", image, ok, c.Requests())
		}
		if d, ok := dc.decide(t.Context(), &credentials{}, snap, image, target, withRegistry); !ok || d.Allowed || c.Requests() == 0 {
			t.Fatalf("%s: withRegistry: decided %v, allowed %v, after %d requests", image, ok, d.Allowed, c.Requests())
		}
		c.Reset()
	}
	if d, ok := dc.decide(t.Context(), &credentials{}, snap, "elsewhere.example.org/app:v1", target, cachedOnly); !ok || d.Allowed || c.Requests() != 0 {
		t.Fatalf("unmatched image under cachedOnly: decided %v, allowed %v, %d requests", ok, d.Allowed, c.Requests())
	}
}

const sixtyFourZeros = "0000000000000000000000000000000000000000000000000000000000000000"
