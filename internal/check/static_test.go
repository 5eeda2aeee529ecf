package check_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestStaticVerdictsNeedNoRegistry: a static authority's verdict (what
// containers-policy.json's reject and insecureAcceptAnything convert to)
// never depends on the registry. A fail denies as a policy refusal, not
// "could not decide", so onError allow or warn does not turn it into an
// admission; a pass admits. The registry is asked only to pin a tag a pass
// admits, and a registry that does not answer then leaves the tag unpinned,
// with a warning, but admitted.
func TestStaticVerdictsNeedNoRegistry(t *testing.T) {
	const tag, byDigest = "registry.example.org/app:v1", "registry.example.org/app@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	static := func(action, digest, onError string) *policy.Snapshot {
		return policytest.Snapshot(t, "static-"+action, v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}, Digest: digest, OnError: onError,
			Authorities: []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: action}}},
		}, nil, policy.Config{})
	}
	for _, tc := range []struct {
		name      string
		snap      *policy.Snapshot
		image     string
		allowed   bool
		requests  bool   // whether the registry is asked (for the pin)
		warning   string // in a warning, when set
		undecided bool
	}{
		{"fail, onError allow", static("fail", "", "allow"), tag, false, false, "", false},
		{"fail, onError warn", static("fail", "", "warn"), tag, false, false, "", false},
		{"fail by digest", static("fail", "", "allow"), byDigest, false, false, "", false},
		{"pass, no pin", static("pass", "none", ""), tag, true, false, "", false},
		{"pass by digest", static("pass", "", ""), byDigest, true, false, "", false},
		{"pass, pin wanted", static("pass", "", ""), tag, true, true, "not pinned to a digest", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := registrytest.Status(http.StatusServiceUnavailable)
			rc, err := registry.New(registry.WithTransport(reg))
			if err != nil {
				t.Fatal(err)
			}
			ds, err := (&check.Decider{Registry: rc}).Decide(t.Context(), check.Request{Snapshot: tc.snap, Target: policy.Target{Namespace: "default"}, Images: []string{tc.image}})
			if err != nil {
				t.Fatal(err)
			}
			d := ds[0]
			if d.Allowed != tc.allowed || d.Undecided != tc.undecided || d.PinnedImage != "" {
				t.Fatalf("allowed %v (want %v), undecided %v, pinned %q: %+v", d.Allowed, tc.allowed, d.Undecided, d.PinnedImage, d)
			}
			if asked := reg.Requests() > 0; asked != tc.requests {
				t.Errorf("registry asked: %v (%d requests), want %v", asked, reg.Requests(), tc.requests)
			}
			for _, msg := range append(d.Denials, d.Warnings...) {
				if strings.Contains(msg, "could not decide") {
					t.Errorf("a static verdict says %q", msg)
				}
			}
			if tc.warning != "" && !strings.Contains(strings.Join(d.Warnings, "\n"), tc.warning) {
				t.Errorf("warnings %q do not say %q", d.Warnings, tc.warning)
			}
		})
	}
}
