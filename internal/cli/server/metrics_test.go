package server

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/clitest"
)

// Thousands of made-up kinds sent to /validate leave
// signet_admission_duration_seconds with a bounded set of series: the
// kinds signet knows, "other" and "unknown", by decision. (Each kind was a
// series: 20,000 made /metrics 92 MB.)
func TestAdmissionMetricKindsAreBounded(t *testing.T) {
	s := startServe(t)
	hc := s.client(nil)
	review := func(group, kind string) string {
		return strings.Replace(podReview, `"kind":{"group":"","version":"v1","kind":"Pod"}`, `"kind":{"group":"`+group+`","version":"v1","kind":"`+kind+`"}`, 1)
	}
	for i := range 2000 {
		s.review(t, hc, review("made.up", fmt.Sprintf("Kind%d", i)))
	}
	s.review(t, hc, review("", "Pod"))
	s.review(t, hc, review("apps", "Pod")) // a known name in another group
	s.review(t, hc, `{"request":`)
	resp, err := hc.Get("https://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if series, ok := strings.CutPrefix(sc.Text(), "signet_admission_duration_seconds_count{"); ok {
			got = append(got, series[:strings.Index(series, "}")])
		}
	}
	sort.Strings(got)
	// The made-up kinds are served as pods, so they are denied as
	// malformed (the kind disagrees with the resource).
	want := []string{`decision="allowed",kind="Pod"`, `decision="denied",kind="other"`, `decision="denied",kind="unknown"`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series of signet_admission_duration_seconds (-want +got):\n%s", diff)
	}
}

// Requests to thousands of registry hosts no policy names leave
// signet_registry_requests_total with one series per named host and result,
// plus "other".
func TestRegistryMetricHostsAreBounded(t *testing.T) {
	snap, err := loadPolicyFiles(t.Context(), clitest.WriteTemp(t, "p.yaml", []byte(passPolicy+`---
apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: hub
spec:
  images: [{prefix: "nginx"}, {glob: "*.wildcard.example/**"}]
  digest: none
  authorities:
    - static: {action: pass}
`)), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := newServeMetrics()
	m.knownHost = snap.KnownHost
	rt := m.transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	}))
	for i := range 3000 {
		for _, host := range []string{fmt.Sprintf("r%d.evil.example", i), "registry.example.org", "index.docker.io", fmt.Sprintf("a%d.wildcard.example", i)} {
			req, _ := http.NewRequest(http.MethodGet, "https://"+host+"/v2/", nil)
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
	}
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "signet_registry_requests_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "host" {
					got[l.GetValue()] += metric.GetCounter().GetValue()
				}
			}
		}
	}
	want := map[string]float64{"registry.example.org": 3000, "index.docker.io": 3000, "other": 6000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests by host label (-want +got):\n%s", diff)
	}
}

// Decisions by thousands of policies leave
// signet_admission_policy_results_total with at most maxPolicyLabels
// policies and "other", and every result counted once.
func TestPolicyResultsAreBounded(t *testing.T) {
	m := newServeMetrics()
	const policies = 1000
	for i := range policies {
		m.observeDecisions([]check.Decision{{Policies: []check.PolicyDecision{
			{Policy: fmt.Sprintf("ImagePolicy tenant-%d/p", i), Mode: policy.ModeEnforce, Result: &verify.Result{Verified: true}, Effect: policy.EffectPass},
			{Policy: "ClusterImagePolicy base", Mode: policy.ModeWarn, Result: &verify.Result{Err: verify.ErrNoSignature}, Effect: policy.EffectWarn},
		}}})
	}
	families, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]bool{}
	got := map[string]float64{} // by result, over every policy
	for _, f := range families {
		if f.GetName() != "signet_admission_policy_results_total" {
			continue
		}
		for _, metric := range f.GetMetric() {
			var pol, result string
			for _, l := range metric.GetLabel() {
				switch l.GetName() {
				case "policy":
					pol = l.GetValue()
				case "result":
					result = l.GetValue()
				}
			}
			labels[pol] = true
			got[result] += metric.GetCounter().GetValue()
		}
	}
	if len(labels) != maxPolicyLabels+1 || !labels["other"] || !labels["ClusterImagePolicy base"] || !labels["ImagePolicy tenant-0/p"] {
		t.Errorf("%d policy labels (want %d, with other, ClusterImagePolicy base and the first tenant's)", len(labels), maxPolicyLabels+1)
	}
	want := map[string]float64{"pass": policies, "warn": policies, "fail": 0, "error": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
}
