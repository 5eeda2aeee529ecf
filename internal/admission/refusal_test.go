package admission

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

// TestRefusalsSayWhy: a refusal's code and reason say whether a policy
// refused (403 Forbidden), the request is not one the API server sends (400
// BadRequest, 413 for a body too large), signet could not decide and trying
// again may help (503 ServiceUnavailable), or signet failed (500).
func TestRefusalsSayWhy(t *testing.T) {
	// A policy whose onError is deny, over a registry that answers 503.
	unreachable := func(onError string) *Handler {
		snap := policytest.Snapshot(t, "signed", v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}, OnError: onError,
			Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
		}, nil, policy.Config{})
		rc, err := registry.New(registry.WithTransport(registrytest.Status(http.StatusServiceUnavailable)))
		if err != nil {
			t.Fatal(err)
		}
		h := handler(t, snap)
		h.Decider = &check.Decider{Registry: rc}
		return h
	}
	notLoaded := handler(t, nil)
	notLoaded.Snapshot = func() *policy.Snapshot { return nil }
	panics := handler(t, nil)
	panics.Snapshot = func() *policy.Snapshot { panic("boom") }
	// Two images: one a static policy denies, one no policy matches
	// (denied as unmatched): policy refusals both.
	mixed := strings.Replace(podReview, `{"name":"a","image":"registry.example.org/app:v1"}`,
		`{"name":"a","image":"registry.example.org/app:v1"},{"name":"b","image":"other.example.org/app:v1"}`, 1)
	for _, tc := range []struct {
		name   string
		h      *Handler
		body   string
		code   int32
		reason string
		want   string
	}{
		{"a policy refuses", handler(t, staticSnapshot(t, "fail")), podReview, 403, "Forbidden", "denied by policy static-fail"},
		{"policies and the unmatched rule refuse", handler(t, staticSnapshot(t, "fail")), mixed, 403, "Forbidden", "did not match any image policies"},
		{"malformed", handler(t, staticSnapshot(t, "pass")), strings.Replace(podReview, `"operation":"CREATE"`, `"operation":"PATCH"`, 1), 400, "BadRequest", "malformed AdmissionReview"},
		{"kind and object disagree", handler(t, staticSnapshot(t, "pass")), strings.Replace(podReview, `"apiVersion":"v1","kind":"Pod"`, `"apiVersion":"v1","kind":"Service"`, 1), 400, "BadRequest", `the object's kind "Service" is not "Pod"`},
		{"too large", handler(t, staticSnapshot(t, "pass")), `{"request":{"uid":"u-1","x":"` + strings.Repeat("a", MaxBodyBytes) + `"}}`, 413, "RequestEntityTooLarge", "larger than"},
		{"not loaded", notLoaded, podReview, 503, "ServiceUnavailable", "not loaded its policies yet"},
		{"registry unreachable, onError deny", unreachable("deny"), podReview, 503, "ServiceUnavailable", "could not decide"},
		{"panic", panics, podReview, 500, "InternalError", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, tc.h.Validate(), []byte(tc.body))
			if resp.Allowed || resp.UID != "u-1" {
				t.Fatalf("allowed, or UID %q: %+v", resp.UID, resp)
			}
			if r := resp.Result; r == nil || r.Code != tc.code || string(r.Reason) != tc.reason || !strings.Contains(r.Message, tc.want) {
				t.Fatalf("refusal %+v, want %d %s saying %q", resp.Result, tc.code, tc.reason, tc.want)
			}
		})
	}
	// onError allow admits what could not be decided: no refusal at all.
	if resp := post(t, unreachable("allow").Validate(), []byte(podReview)); !resp.Allowed {
		t.Fatalf("onError allow refused: %+v", resp.Result)
	}
}
