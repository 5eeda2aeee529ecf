package server

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/policy"
)

// The text report groups by namespace and object, says before → after and
// why, and ends with the summary line.
func TestWriteImpactText(t *testing.T) {
	dep := audit.Object{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "team-a", Name: "web"}
	prov := audit.Object{APIVersion: "pkg.crossplane.io/v1", Kind: "Provider", Name: "aws"}
	im := audit.NewImpact(true, []audit.Entry{
		{Object: dep, Path: "spec.template.spec.containers[0].image", Image: "r.example/app:1", Before: audit.OutcomeAllowed, Outcome: audit.OutcomeDenied,
			Policies: []string{"ClusterImagePolicy strict"}, Reasons: []string{"no signature"}},
		{Object: dep, Path: "spec.template.spec.containers[1].image", Image: "r.example/side:1", Before: audit.OutcomeDenied, Outcome: audit.OutcomeAllowed,
			Policies: []string{"(unmatched)"}, Reasons: []string{"no policy selects the image"}},
		{Object: prov, Path: "spec.package", Image: "xpkg.example/aws:v1", Before: audit.OutcomeAllowed, Outcome: audit.OutcomeWarned,
			Policies: []string{"ClusterImagePolicy strict"}, Reasons: []string{"unsigned (warn)"}},
	}, 3, 5, []string{"tasks.tekton.dev: forbidden"})
	var b strings.Builder
	if err := writeImpact(&b, "text", im); err != nil {
		t.Fatal(err)
	}
	want := `cluster-scoped
  Provider aws
    spec.package: xpkg.example/aws:v1
      allowed → warned (ClusterImagePolicy strict): unsigned (warn)
namespace team-a
  Deployment web
    spec.template.spec.containers[0].image: r.example/app:1
      allowed → denied (ClusterImagePolicy strict): no signature
    spec.template.spec.containers[1].image: r.example/side:1
      denied → allowed ((unmatched)): no longer: no policy selects the image
not read: tasks.tekton.dev: forbidden
3 objects (5 images) decided, 1 not read: 1 image newly denied, 1 newly warned, 0 newly undecided, 1 newly allowed
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}

// Exit codes: 1 when something is (newly) denied, whatever else; 2 when
// something is undecided or unread; 0 otherwise.
func TestImpactExit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		summary audit.ImpactSummary
		want    int
	}{
		{"nothing", audit.ImpactSummary{Objects: 3, Warned: 2, Allowed: 1}, cli.ExitOK},
		{"denied", audit.ImpactSummary{Denied: 1, Undecided: 1, Unread: []string{"x"}}, cli.ExitDenied},
		{"undecided", audit.ImpactSummary{Undecided: 1}, cli.ExitUndecided},
		{"unread", audit.ImpactSummary{Unread: []string{"tasks.tekton.dev: forbidden"}}, cli.ExitUndecided},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cli.ExitOK
			if err := impactExit(audit.Impact{Summary: tc.summary}); err != nil {
				got = exitCodeOf(t, err)
			}
			if got != tc.want {
				t.Errorf("exit %d, want %d", got, tc.want)
			}
		})
	}
}

// exitCodeOf is the exit code err gives a command, as the binaries run it.
func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	cmd := &cobra.Command{Use: "x", SilenceErrors: true, SilenceUsage: true, RunE: func(*cobra.Command, []string) error { return err }}
	return cli.Run(t.Context(), cmd, nil, &strings.Builder{}, &strings.Builder{})
}

// A given policy replaces the cluster's of the same kind, name and
// namespace, and is added otherwise.
func TestWithPolicies(t *testing.T) {
	p := func(kind, ns, name string) *policy.Policy {
		return &policy.Policy{Object: policy.Object{Kind: kind, Namespace: ns, Name: name}}
	}
	base, teamA := p(policy.KindClusterImagePolicy, "", "base"), p(policy.KindImagePolicy, "team-a", "base")
	newBase, teamB, strict := p(policy.KindClusterImagePolicy, "", "base"), p(policy.KindImagePolicy, "team-b", "base"), p(policy.KindClusterImagePolicy, "", "strict")
	got := withPolicies([]*policy.Policy{base, teamA}, []*policy.Policy{newBase, teamB, strict})
	want := []*policy.Policy{teamA, newBase, teamB, strict}
	if len(got) != len(want) {
		t.Fatalf("got %d policies, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("policy %d is %s (%p), want %s (%p)", i, got[i].Object.ID(), got[i], want[i].Object.ID(), want[i])
		}
	}
}
