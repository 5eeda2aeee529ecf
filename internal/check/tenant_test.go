package check

import (
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestImagePoliciesOnlyAddRequirements is invariant 10 as a property: over
// generated sets of cluster policies (tag patterns among them), settings,
// targets and images (by tag, digest, or both), adding
// any generated ImagePolicies never turns a denial into an admission.
// Authorities are static or key-based; the registry answers 404 to
// everything, so key authorities deny ("no signature found") or cannot
// decide (a tag that does not resolve), and onError decides what that does.
func TestImagePoliciesOnlyAddRequirements(t *testing.T) {
	rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(registrytest.Status(http.StatusNotFound)))
	if err != nil {
		t.Fatal(err)
	}
	g := &policyGen{r: mrand.New(mrand.NewPCG(18, 2)), key: newSigningKey(t).pem}
	const cases = 400
	relaxed, deniedBefore := 0, 0
	for i := range cases {
		cfg := policy.Config{Unmatched: policy.Action(g.pick("deny", "warn", "allow")), NamespaceOptIn: g.r.IntN(4) == 0, TrustVersion: "t"}
		var cluster []*policy.Policy
		for j := range g.r.IntN(3) {
			cluster = append(cluster, g.compile(t, policy.KindClusterImagePolicy, "", fmt.Sprintf("c%d", j)))
		}
		var tenant []*policy.Policy
		for j := range 1 + g.r.IntN(2) {
			tenant = append(tenant, g.compile(t, policy.KindImagePolicy, g.pick("team-a", "team-b"), fmt.Sprintf("n%d", j)))
		}
		target := policy.Target{Namespace: g.pick("team-a", "team-b"), Kind: g.pick("Pod", "Deployment")}
		if g.r.IntN(2) == 0 {
			target.NamespaceLabels = map[string]string{"env": "prod", policy.OptInLabel: "true"}
		}
		image := g.image()

		before := decide(t, rc, cluster, cfg, image, target)
		after := decide(t, rc, append(append([]*policy.Policy(nil), cluster...), tenant...), cfg, image, target)
		if !before.Allowed {
			deniedBefore++
			if after.Allowed {
				relaxed++
				t.Errorf("case %d: %s in %s: denied by the cluster (%v), admitted with ImagePolicies %s", i, image, target.Namespace,
					before.Denials, describe(tenant))
			}
		}
	}
	// The generator must reach the interesting part of the space.
	if deniedBefore < cases/5 {
		t.Fatalf("only %d of %d generated cases were denied without ImagePolicies: the property was hardly tested", deniedBefore, cases)
	}
	t.Logf("%d cases, %d denied by the cluster alone, %d relaxed by an ImagePolicy", cases, deniedBefore, relaxed)
}

func decide(t *testing.T, rc *registry.Client, ps []*policy.Policy, cfg policy.Config, image string, target policy.Target) Decision {
	t.Helper()
	snap, err := policy.NewSnapshot(ps, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := (&Decider{Registry: rc, ResolutionWindow: -1}).decide(t.Context(), &credentials{}, snap, image, target, withRegistry)
	return d
}

func describe(ps []*policy.Policy) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "\n  %s %+v", p.Object.ID(), p.Object.Spec)
	}
	return b.String()
}

// policyGen generates policies from small vocabularies, so that patterns,
// exclusions, selectors and kinds overlap often.
type policyGen struct {
	r   *mrand.Rand
	key string
}

func (g *policyGen) pick(xs ...string) string { return xs[g.r.IntN(len(xs))] }

func (g *policyGen) matcher() v1alpha1.ImageMatcher {
	var m v1alpha1.ImageMatcher
	if g.r.IntN(3) == 0 {
		m = v1alpha1.ImageMatcher{Prefix: g.pick("reg.example.org/prod", "reg.example.org", "other.example.org/tools/x", "nginx")}
	} else {
		m = v1alpha1.ImageMatcher{Glob: g.pick("**", "reg.example.org/**", "reg.example.org/team-a/**", "*.example.org/**", "reg.example.org/*/app", "docker.io/library/*")}
	}
	// Tag patterns (in excludeImages they make the policy invalid).
	m.Tag = g.pick("", "", "v1", "v*", "latest")
	return m
}

func (g *policyGen) image() string {
	repo := g.pick("reg.example.org/team-a/app", "reg.example.org/team-b/app", "reg.example.org/prod/api", "other.example.org/tools/x", "nginx")
	digest := "@sha256:" + strings.Repeat("ab", 32)
	switch g.r.IntN(5) {
	case 0, 1:
		return repo + digest
	case 2:
		return repo + g.pick(":v2", ":dev", "") + g.pick("", digest)
	}
	return repo + ":v1"
}

func (g *policyGen) authority() v1alpha1.Authority {
	switch g.r.IntN(3) {
	case 0:
		return v1alpha1.Authority{Static: &v1alpha1.StaticAuthority{Action: "pass"}}
	case 1:
		return v1alpha1.Authority{Static: &v1alpha1.StaticAuthority{Action: "fail"}}
	}
	return v1alpha1.Authority{InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: g.key}}
}

func (g *policyGen) compile(t *testing.T, kind, namespace, name string) *policy.Policy {
	t.Helper()
	spec := v1alpha1.ImagePolicySpec{
		Mode:    g.pick("", "enforce", "warn"),
		OnError: g.pick("", "deny", "allow", "warn"),
		Digest:  g.pick("none", "none", "require", "pin"),
	}
	for range 1 + g.r.IntN(2) {
		spec.Images = append(spec.Images, g.matcher())
	}
	if g.r.IntN(3) == 0 {
		spec.ExcludeImages = []v1alpha1.ImageMatcher{g.matcher()}
	}
	for range 1 + g.r.IntN(2) {
		a := g.authority()
		a.Name = fmt.Sprintf("a%d", len(spec.Authorities))
		spec.Authorities = append(spec.Authorities, a)
	}
	if g.r.IntN(3) == 0 {
		spec.Match = &v1alpha1.MatchResources{Kinds: []string{g.pick("Pod", "Deployment")}}
		if g.r.IntN(2) == 0 {
			spec.Match.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}
		}
	}
	return policy.CompileObject(t.Context(), policy.Object{Kind: kind, Namespace: namespace, Name: name, Spec: spec}, nil)
}
