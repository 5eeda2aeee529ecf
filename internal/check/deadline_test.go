package check_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// A decision that joins work in flight for another caller (the audit's
// decision, with a minute to go) against a registry that stopped
// answering still ends by its own deadline, undecided: the work is shared,
// the wait for it is not. Each case stalls the registry at another shared
// step: its first contact (ping), the tag's resolution, the evidence.
func TestSharedWorkKeepsEachCallersDeadline(t *testing.T) {
	for _, tc := range []struct {
		name string
		// stallPing stalls the ping too (the first contact is shared).
		stallPing bool
		byTag     bool
	}{
		{"first contact", true, true},
		{"tag resolution", false, true},
		{"evidence", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg := registrytest.StartInProcess(t, true)
			img := reg.PushRandomImage(t, "app", "v1")
			snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
				Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}},
				Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
			}, nil, policy.Config{TrustVersion: "test"})
			stalled := make(chan struct{}, 100)
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.URL.Path != "/v2/" || tc.stallPing {
					stalled <- struct{}{}
					<-r.Context().Done()
					return nil, r.Context().Err()
				}
				return http.DefaultTransport.RoundTrip(r)
			})
			rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(rt))
			if err != nil {
				t.Fatal(err)
			}
			d := &check.Decider{Registry: rc, Cache: check.NewCache(time.Hour, time.Minute, 100)}
			image := img.Ref
			if tc.byTag {
				image = img.Tag
			}
			decide := func(ctx context.Context) check.Decision {
				ds, err := d.Decide(ctx, check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{image}})
				if err != nil {
					t.Error(err)
					return check.Decision{}
				}
				return ds[0]
			}

			long, cancelLong := context.WithTimeout(t.Context(), time.Minute)
			defer cancelLong()
			first := make(chan check.Decision, 1)
			go func() { first <- decide(long) }()
			<-stalled

			const deadline = 300 * time.Millisecond
			short, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			start := time.Now()
			got := decide(short)
			if took := time.Since(start); took > deadline+time.Second {
				t.Errorf("the decision with a %s deadline took %s: it waited for another caller's work", deadline, took)
			}
			if got.Allowed || !got.Undecided {
				t.Errorf("decision %+v; want denied, undecided", got)
			}
			cancelLong()
			<-first
		})
	}
}
