package admission

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// The admission path allocates per request, never per policy: a 3-container
// pod decided by one static policy costs as many allocations among 10,000
// policies (most indexed by repository, some with a wildcard host, which
// every lookup scans) as alone.
func TestAdmissionDoesNotAllocatePerPolicy(t *testing.T) {
	static := []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	snapshot := func(n int) *policy.Snapshot {
		ps := []*policy.Policy{policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "team", Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/team/**"}}, Digest: "none", Authorities: static,
		}}, nil)}
		for i := 1; i < n; i++ {
			m := v1alpha1.ImageMatcher{Glob: fmt.Sprintf("registry.example.org/team-%d/**", i)}
			switch i % 10 {
			case 0:
				m = v1alpha1.ImageMatcher{Glob: fmt.Sprintf("*.example.net/team-%d/*", i)}
			case 1:
				m = v1alpha1.ImageMatcher{Prefix: fmt.Sprintf("registry.example.org/group-%d", i)}
			}
			ps = append(ps, policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: fmt.Sprintf("p%d", i), Spec: v1alpha1.ImagePolicySpec{
				Images: []v1alpha1.ImageMatcher{m}, Digest: "none", Authorities: static,
			}}, nil))
		}
		snap, err := policy.NewSnapshot(ps, policy.Config{})
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	body := []byte(benchPodReview)
	allocs := func(n int) float64 {
		h := handler(t, snapshot(n)).Validate()
		return testing.AllocsPerRun(200, func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
			if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
				t.Fatalf("%d %s", rec.Code, rec.Body.String())
			}
		})
	}
	one, many := allocs(1), allocs(10000)
	// A few allocations of slack: under the race detector sync.Pool drops
	// items at random. One allocation per policy would be thousands.
	if many > one+3 {
		t.Errorf("an admission allocates %v times among 10,000 policies, %v times among 1", many, one)
	}
}
