package admission

import (
	"strings"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// TestImagePolicyCannotLiftUnmatchedDeny: through /validate, an
// ImagePolicy selecting every image with a static pass leaves an image no
// ClusterImagePolicy selects denied under --unmatched=deny (invariant 10).
func TestImagePolicyCannotLiftUnmatchedDeny(t *testing.T) {
	cluster := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "prod", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/prod/**"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}, nil)
	tenant := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindImagePolicy, Namespace: "default", Name: "mine", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "**"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}, nil)
	for _, tc := range []struct {
		unmatched, image string
		allowed          bool
		want             string
	}{
		{"deny", "registry.example.org/app:v1", false, "registry.example.org/app:v1 did not match any ClusterImagePolicy"},
		{"deny", "registry.example.org/prod/app:v1", true, ""},
		{"warn", "registry.example.org/app:v1", true, "did not match any ClusterImagePolicy"},
		{"allow", "registry.example.org/app:v1", true, ""},
	} {
		t.Run(tc.unmatched+" "+tc.image, func(t *testing.T) {
			snap, err := policy.NewSnapshot([]*policy.Policy{cluster, tenant}, policy.Config{Unmatched: policy.Action(tc.unmatched)})
			if err != nil {
				t.Fatal(err)
			}
			body := strings.Replace(podReview, "registry.example.org/app:v1", tc.image, 1)
			resp := post(t, handler(t, snap).Validate(), []byte(body))
			if resp.Allowed != tc.allowed {
				t.Fatalf("allowed = %v, want %v: %+v", resp.Allowed, tc.allowed, resp.Result)
			}
			said := strings.Join(resp.Warnings, "\n")
			if resp.Result != nil {
				said += "\n" + resp.Result.Message
			}
			if !strings.Contains(said, tc.want) {
				t.Errorf("the answer does not say %q: %s", tc.want, said)
			}
		})
	}
}
