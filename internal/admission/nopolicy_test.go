package admission

import (
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/policy"
)

// TestNoPolicy: with no ClusterImagePolicy at all, every image is unmatched
// and --unmatched decides, saying that no policy exists: denied (403, a
// policy refusal, not "try again") under the default, admitted with
// "image policy enforcement was not applied" under warn. Policies not
// loaded yet is something else: 503, try again.
func TestNoPolicy(t *testing.T) {
	empty := func(unmatched policy.Action) *Handler {
		snap, err := policy.NewSnapshot(nil, policy.Config{Unmatched: unmatched})
		if err != nil {
			t.Fatal(err)
		}
		return handler(t, snap)
	}
	const image = "registry.example.org/app:v1"

	resp := post(t, empty("").Validate(), []byte(podReview))
	want := image + " did not match any image policies: no ClusterImagePolicy exists; unmatched images are denied (--unmatched=deny, the default)"
	if resp.Allowed || resp.Result == nil || resp.Result.Code != 403 || !strings.Contains(resp.Result.Message, want) {
		t.Errorf("no policy, default: got %+v, want 403 saying %q", resp.Result, want)
	}

	resp = post(t, empty(policy.ActionWarn).Validate(), []byte(podReview))
	want = image + " did not match any image policies: no ClusterImagePolicy exists, so image policy enforcement was not applied; admitted because signet runs with --unmatched=warn"
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], want) {
		t.Errorf("no policy, --unmatched=warn: allowed=%v warnings %q, want allowed with one warning saying %q", resp.Allowed, resp.Warnings, want)
	}

	resp = post(t, empty(policy.ActionAllow).Validate(), []byte(podReview))
	if !resp.Allowed || len(resp.Warnings) != 0 {
		t.Errorf("no policy, --unmatched=allow: allowed=%v warnings %q, want allowed silently", resp.Allowed, resp.Warnings)
	}
}
