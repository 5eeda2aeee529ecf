package audit_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// snapshot compiles cluster policies over registry.example.org/<name>/**.
func snapshot(t *testing.T, cfg policy.Config, specs map[string]v1alpha1.ImagePolicySpec) *policy.Snapshot {
	t.Helper()
	var ps []*policy.Policy
	for name, spec := range specs {
		p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: name, Spec: spec}, nil)
		if p.Err != nil {
			t.Fatalf("%s: %v", name, p.Err)
		}
		ps = append(ps, p)
	}
	snap, err := policy.NewSnapshot(ps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func static(repo, action, mode, onError string) v1alpha1.ImagePolicySpec {
	return v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/" + repo + "/**"}}, Mode: mode, OnError: onError, Digest: "none",
		Authorities: []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: action}}}}
}

type namespaces struct{ labels map[string]map[string]string }

func (n namespaces) Labels(_ context.Context, ns string) (map[string]string, error) {
	return n.labels[ns], nil
}

func (namespaces) PullSecrets(context.Context, string, []string, string) ([]registry.CredentialSource, error) {
	return nil, nil
}

// TestEvaluateSaysWhatAdmissionWould: one result per image and governing
// policy, in admission's words, with what admission does because of it.
func TestEvaluateSaysWhatAdmissionWould(t *testing.T) {
	unreachable := registrytest.Status(http.StatusServiceUnavailable)
	rc, err := registry.New(registry.WithTransport(unreachable))
	if err != nil {
		t.Fatal(err)
	}
	limited := registrytest.Status(http.StatusTooManyRequests)
	rcLimited, err := registry.New(registry.WithTransport(limited))
	if err != nil {
		t.Fatal(err)
	}
	key := v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/keyed/**"}}, OnError: "warn",
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(sigstoretest.PublicKeyPEM(t, sigstoretest.NewKey(t)))}}}}
	snap := snapshot(t, policy.Config{Unmatched: policy.ActionAllow, ExcludedNamespaces: []string{"kube-system"}}, map[string]v1alpha1.ImagePolicySpec{
		"refuse":  static("bad", "fail", "", ""),
		"observe": static("bad", "fail", "warn", ""),
		"accept":  static("good", "pass", "", ""),
		"keyed":   key,
	})
	subject := func(ns string, images ...string) audit.Subject {
		s := audit.Subject{Object: audit.Object{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "p", UID: "u1"}, Kind: workload.Kind{Kind: "Pod"}}
		for i, im := range images {
			s.Images = append(s.Images, workload.Image{Path: fmt.Sprintf("spec.containers[%d].image", i), Image: im})
		}
		return s
	}
	a := &audit.Auditor{Decider: &check.Decider{Registry: rc}, Namespaces: namespaces{}, Timeout: 2 * time.Second}
	got := a.Evaluate(t.Context(), snap, subject("team", "registry.example.org/bad/app:v1", "registry.example.org/good/app:v1", "elsewhere.example/app:v1", "registry.example.org/keyed/app:v1", "Not A Reference"))
	type want struct {
		path, policy string
		effect       policy.Effect
		admission    string
		says         string
	}
	wants := []want{
		{"spec.containers[0].image", "ClusterImagePolicy observe", policy.EffectWarn, "warned", "(policy in warn mode)"},
		{"spec.containers[0].image", "ClusterImagePolicy refuse", policy.EffectFail, "denied", "s"},
		{"spec.containers[1].image", "ClusterImagePolicy accept", policy.EffectPass, "allowed", ""},
		{"spec.containers[2].image", audit.PolicyUnmatched, policy.EffectSkip, "allowed", "did not match any image policies"},
		{"spec.containers[3].image", "ClusterImagePolicy keyed", policy.EffectError, "warned", "could not decide"},
		{"spec.containers[4].image", audit.PolicyReference, policy.EffectFail, "denied", ""},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		r := got[i]
		if r.Path != w.path || r.Policy != w.policy || r.Effect != w.effect || r.Admission != w.admission || !strings.Contains(r.Reason, w.says) {
			t.Errorf("result %d: %s %s %s %s %q; want %s %s %s %s %q", i, r.Path, r.Policy, r.Effect, r.Admission, r.Reason, w.path, w.policy, w.effect, w.admission, w.says)
		}
		if r.Object.Name != "p" || r.Object.UID != "u1" {
			t.Errorf("result %d names %+v", i, r.Object)
		}
	}
	if got[2].Authorities == nil || got[2].Authorities[0] != "s" {
		t.Errorf("a pass does not name the authority that passed: %+v", got[2])
	}
	if !audit.Failed(got) {
		t.Error("Failed: a result denies the object")
	}
	if got[4].RateLimited {
		t.Error("503 is not rate limiting")
	}

	t.Run("an excluded namespace has no results", func(t *testing.T) {
		if got := a.Evaluate(t.Context(), snap, subject("kube-system", "registry.example.org/bad/app:v1")); len(got) != 0 {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("a registry's 429 is marked, to slow the audit down", func(t *testing.T) {
		la := &audit.Auditor{Decider: &check.Decider{Registry: rcLimited}, Timeout: 2 * time.Second}
		got := la.Evaluate(t.Context(), snap, subject("team", "registry.example.org/keyed/app:v1"))
		if len(got) != 1 || !got[0].RateLimited || got[0].Effect != policy.EffectError {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("an object with no images has no results", func(t *testing.T) {
		if got := a.Evaluate(t.Context(), snap, subject("team")); got != nil {
			t.Fatalf("%+v", got)
		}
	})
}

func results(objects, perObject int, reason string) []audit.Result {
	var out []audit.Result
	for o := range objects {
		for i := range perObject {
			out = append(out, audit.Result{
				Object: audit.Object{APIVersion: "v1", Kind: "Pod", Namespace: "ns", Name: fmt.Sprintf("pod-%05d", o), UID: fmt.Sprint(o)},
				Path:   fmt.Sprintf("spec.containers[%d].image", i), Image: "registry.example.org/app:v1", Digest: "sha256:abc",
				Policy: "ClusterImagePolicy p", Effect: []policy.Effect{policy.EffectPass, policy.EffectFail}[o%2], Reason: reason, Admission: "allowed",
			})
		}
	}
	return out
}

// TestReportsStayBounded: parts hold at most MaxResultsPerReport results
// and about MaxReportBytes, an object's results stay in one part, every
// result is in exactly one part, and summaries count them.
func TestReportsStayBounded(t *testing.T) {
	for _, tc := range []struct {
		name      string
		results   []audit.Result
		wantParts int
	}{
		{"5,000 objects of 2 results", results(5000, 2, "denied by policy p: authority ci: no signature found"), 10},
		{"large reasons fill parts by size", results(600, 1, strings.Repeat("x", 4000)), 6},
		{"one object larger than a part", results(1, 2500, "r"), 3},
		{"nothing", nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parts := audit.Reports(tc.results, audit.Written{}, time.Unix(100, 0))
			if len(parts) != tc.wantParts {
				t.Errorf("%d parts, want %d", len(parts), tc.wantParts)
			}
			seen := map[string]int{}
			partOf := map[string]int{}
			for i, p := range parts {
				if want := audit.ReportName; i > 0 {
					want = fmt.Sprintf("%s-%d", audit.ReportName, i+1)
					if p.Name != want {
						t.Errorf("part %d named %q", i, p.Name)
					}
				} else if p.Name != want {
					t.Errorf("first part named %q", p.Name)
				}
				if !audit.IsReportName(p.Name) {
					t.Errorf("IsReportName(%q) is false", p.Name)
				}
				if len(p.Results) > audit.MaxResultsPerReport {
					t.Errorf("part %d has %d results", i, len(p.Results))
				}
				size := 0
				var sum audit.Summary
				for _, r := range p.Results {
					size += len(fmt.Sprint(r))
					seen[r.Resources[0].Name+r.Rule]++
					if j, ok := partOf[r.Resources[0].Name]; ok && j != i && tc.name != "one object larger than a part" {
						t.Errorf("%s is split across parts %d and %d", r.Resources[0].Name, j, i)
					}
					partOf[r.Resources[0].Name] = i
					switch r.Result {
					case "pass":
						sum.Pass++
					case "fail":
						sum.Fail++
					}
				}
				if size > audit.MaxReportBytes+audit.MaxReportBytes/10 {
					t.Errorf("part %d holds about %d bytes", i, size)
				}
				if sum != p.Summary {
					t.Errorf("part %d: summary %+v, results %+v", i, p.Summary, sum)
				}
			}
			if len(seen) != len(tc.results) {
				t.Errorf("%d distinct results reported, want %d", len(seen), len(tc.results))
			}
			for k, n := range seen {
				if n != 1 {
					t.Errorf("%s reported %d times", k, n)
				}
			}
		})
	}
	for _, name := range []string{"signet-audit-1", "signet-audit-02", "signet-audit-x", "other", "signet-auditx"} {
		if audit.IsReportName(name) {
			t.Errorf("IsReportName(%q)", name)
		}
	}
}

// TestReportsKeepTimestamps: a result keeps the time it first took its
// value, so that a scan that changes nothing makes the same reports (and
// nothing is written); a changed result takes the time of the scan.
func TestReportsKeepTimestamps(t *testing.T) {
	first := audit.Reports(results(3, 1, "r"), audit.Written{}, time.Unix(100, 0))
	written := audit.Record(first)
	again := audit.Reports(results(3, 1, "r"), written, time.Unix(200, 0))
	if len(again) != 1 || written.Changed(again[0]) {
		t.Fatalf("the same results make other reports: %+v", again)
	}
	changed := results(3, 1, "r")
	changed[1].Reason = "another reason"
	next := audit.Reports(changed, written, time.Unix(300, 0))
	if !written.Changed(next[0]) {
		t.Fatal("a changed result makes the same report")
	}
	for _, r := range next[0].Results {
		want := int64(100)
		if r.Resources[0].Name == "pod-00001" {
			want = 300
		}
		if r.Timestamp.Seconds != want {
			t.Errorf("%s: timestamp %d, want %d", r.Resources[0].Name, r.Timestamp.Seconds, want)
		}
	}
	if !strings.Contains(next[0].Results[1].Message, "another reason") || next[0].Results[1].Properties["digest"] != "sha256:abc" {
		t.Errorf("result %+v", next[0].Results[1])
	}
}

// TestReportsChangeOnlyWhatChanged: objects stay in their part, so new
// objects change the part they go to and deleted ones the part they left,
// never every part after them (5,000 Pods would otherwise rewrite every
// part at every change).
func TestReportsChangeOnlyWhatChanged(t *testing.T) {
	all := results(5000, 2, "denied by policy p: authority ci: no signature found")
	first := audit.Reports(all[2000:], audit.Written{}, time.Unix(100, 0)) // pods 1000-4999
	written := audit.Record(first)
	changedParts := func(parts []audit.Report) (changed []string) {
		for _, p := range parts {
			if written.Changed(p) {
				changed = append(changed, p.Name)
			}
		}
		return changed
	}
	// 500 new Pods whose names sort first.
	grown := audit.Reports(all[1000:], written, time.Unix(200, 0))
	if changed := changedParts(grown); len(changed) != 1 || len(grown) != len(first)+1 {
		t.Errorf("500 new objects changed parts %q (%d parts, then %d); want one new part", changed, len(first), len(grown))
	}
	// Delete Pods 1000-1099: the first part shrinks, no other changes.
	shrunk := audit.Reports(all[2200:], written, time.Unix(300, 0))
	if changed := changedParts(shrunk); len(changed) != 1 || changed[0] != audit.ReportName || len(shrunk) != len(first) {
		t.Errorf("deleting objects of one part changed %q", changed)
	}
	// Deleting most objects packs the parts again.
	var fifth []audit.Result // every fifth Pod of the first parts: 1,600 results
	for i, r := range all[2000:] {
		if i/2%5 == 0 {
			fifth = append(fifth, r)
		}
	}
	if few := audit.Reports(fifth, written, time.Unix(350, 0)); len(first) != 8 || len(few) != 2 {
		t.Errorf("%d parts of 8 hold %d results after deletions; want them packed into 2", len(few), len(fifth))
	}
	// New objects fill the room deleted ones left before a new part.
	refilled := audit.Reports(append(slices.Clone(all[2200:]), all[:100]...), audit.Record(shrunk), time.Unix(400, 0))
	if len(refilled) != len(shrunk) {
		t.Errorf("%d parts after refilling, want %d", len(refilled), len(shrunk))
	}
}

// TestRunningImages: a Pod's containers are decided at the digest the
// kubelet reported when it names the image's repository.
func TestRunningImages(t *testing.T) {
	const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	const d2 = "sha256:2222222222222222222222222222222222222222222222222222222222222222"
	pod := `{"spec":{"containers":[{"name":"app","image":"nginx:1.25"},{"name":"side","image":"registry.example.org/side:v1"},{"name":"new","image":"registry.example.org/new:v1"}],
	  "initContainers":[{"name":"init","image":"registry.example.org/init@` + d1 + `"}],
	  "ephemeralContainers":[{"name":"debug","image":"registry.example.org/debug:v1"}]},
	 "status":{"containerStatuses":[
	   {"name":"side","imageID":"sha256:3333333333333333333333333333333333333333333333333333333333333333"},
	   {"name":"app","imageID":"docker-pullable://docker.io/library/nginx@` + d1 + `"}],
	  "initContainerStatuses":[{"name":"init","imageID":"registry.example.org/init@` + d2 + `"}],
	  "ephemeralContainerStatuses":[{"name":"debug","imageID":"registry.example.org/other@` + d2 + `"}]}}`
	images := []workload.Image{
		{Path: "spec.containers[0].image", Image: "nginx:1.25"},
		{Path: "spec.containers[1].image", Image: "registry.example.org/side:v1"},
		{Path: "spec.containers[2].image", Image: "registry.example.org/new:v1"},
		{Path: "spec.initContainers[0].image", Image: "registry.example.org/init@" + d1},
		{Path: "spec.ephemeralContainers[0].image", Image: "registry.example.org/debug:v1"},
		{Path: "spec.volumes[0].image.reference", Image: "registry.example.org/vol:v1"},
	}
	got, err := audit.RunningImages([]byte(pod), images)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"nginx:1.25@" + d1,                // docker-pullable://, the canonical repository
		"registry.example.org/side:v1",    // an image ID without a repository: as written
		"registry.example.org/new:v1",     // no status yet
		"registry.example.org/init@" + d2, // the runtime says what ran
		"registry.example.org/debug:v1",   // another repository's digest is not this image's
		"registry.example.org/vol:v1",     // image volumes have no image ID
	}
	for i := range want {
		if got[i].Image != want[i] || got[i].Path != images[i].Path {
			t.Errorf("%s: %s, want %s", images[i].Path, got[i].Image, want[i])
		}
	}
	if _, err := audit.RunningImages([]byte(`{"status":[]}`), images); err == nil {
		t.Error("a malformed Pod reads")
	}
}
