package check_test

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestDeciderSharesTagResolutions counts manifest requests for a tag: a
// burst of decisions, concurrent or arriving after the first resolution
// completed, resolves it once within the resolution window, and again after
// it; each decision is bound to the digest resolved.
func TestDeciderSharesTagResolutions(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	img := reg.PushRandomImage(t, "app", "v1")
	// A static policy that pins: the tag must be resolved, nothing verified.
	p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "pin", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}}, Digest: "pin",
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}, nil)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{TrustVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var resolutions atomic.Int64
	rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			resolutions.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(rt))
	if err != nil {
		t.Fatal(err)
	}
	decide := func(d *check.Decider) {
		t.Helper()
		ds, err := d.Decide(t.Context(), check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{img.Tag}})
		if err != nil {
			t.Fatal(err)
		}
		if dec := ds[0]; !dec.Allowed || dec.Digest != img.Digest {
			t.Fatalf("decision %+v; want allowed, bound to %s", dec, img.Digest)
		}
	}

	for _, tc := range []struct {
		name   string
		window time.Duration
		// late is how many requests the two late arrivals make.
		late int64
	}{
		{"default window", 0, 0},
		{"only in-flight resolutions shared", -1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resolutions.Store(0)
			d := &check.Decider{Registry: rc, Cache: check.NewCache(time.Hour, time.Minute, 100), ResolutionWindow: tc.window}
			var wg sync.WaitGroup
			for range 20 {
				wg.Go(func() { decide(d) })
			}
			wg.Wait()
			burst := resolutions.Load()
			// Two late arrivals, after every resolution completed.
			decide(d)
			decide(d)
			if late := resolutions.Load() - burst; late != tc.late || (tc.window == 0 && burst != 1) {
				t.Errorf("20 concurrent decisions of one tag resolved it %d times, 2 later ones %d times; want %d later", burst, late, tc.late)
			}
		})
	}

	t.Run("resolved again after the window", func(t *testing.T) {
		resolutions.Store(0)
		d := &check.Decider{Registry: rc, ResolutionWindow: 50 * time.Millisecond}
		decide(d)
		decide(d)
		time.Sleep(60 * time.Millisecond)
		decide(d)
		if got := resolutions.Load(); got != 2 {
			t.Errorf("resolved %d times; want 2 (once within the window, once after)", got)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
