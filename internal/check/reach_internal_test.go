package check

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/policytest"
)

// countingTransport answers every request 404 and counts them.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return &http.Response{StatusCode: http.StatusNotFound, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// TestCachedOnlyMakesNoRequest: a decision that needs the registry (a tag to
// pin, a digest whose result is not cached) is refused under cachedOnly
// without a request, and decided with one under withRegistry; one that needs
// no registry (an unmatched image) is decided under either.
func TestCachedOnlyMakesNoRequest(t *testing.T) {
	c := &countingTransport{}
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
		if _, ok := dc.decide(t.Context(), rc, "", snap, image, target, cachedOnly); ok || c.n.Load() != 0 {
			t.Fatalf("%s: cold cachedOnly decided (%v) or made %d requests", image, ok, c.n.Load())
		}
		if d, ok := dc.decide(t.Context(), rc, "", snap, image, target, withRegistry); !ok || d.Allowed || c.n.Load() == 0 {
			t.Fatalf("%s: withRegistry: decided %v, allowed %v, after %d requests", image, ok, d.Allowed, c.n.Load())
		}
		c.n.Store(0)
	}
	if d, ok := dc.decide(t.Context(), rc, "", snap, "elsewhere.example.org/app:v1", target, cachedOnly); !ok || d.Allowed || c.n.Load() != 0 {
		t.Fatalf("unmatched image under cachedOnly: decided %v, allowed %v, %d requests", ok, d.Allowed, c.n.Load())
	}
}

const sixtyFourZeros = "0000000000000000000000000000000000000000000000000000000000000000"
