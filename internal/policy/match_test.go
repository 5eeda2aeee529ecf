package policy

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
)

func TestPatternMatching(t *testing.T) {
	for _, tc := range []struct {
		glob, prefix string
		match        []string
		noMatch      []string
	}{
		{glob: "nginx",
			match:   []string{"nginx", "nginx:1.25", "docker.io/nginx", "index.docker.io/library/nginx", "docker.io/library/nginx@sha256:" + strings.Repeat("a", 64)},
			noMatch: []string{"nginx-evil", "evil/nginx", "registry.example.org/nginx", "docker.io/library/nginx/sub"}},
		{glob: "docker.io/nginx", match: []string{"nginx", "library/nginx"}},
		{glob: "index.docker.io/library/nginx", match: []string{"nginx"}},
		{glob: "registry.example.org/app",
			match:   []string{"registry.example.org/app:v1", "REGISTRY.example.ORG/app:v1"},
			noMatch: []string{"registry.example.org/app-evil", "registry.example.org/app/sub", "registry.example.org:5000/app", "registry.example.org.evil.com/app"}},
		{glob: "Registry.Example.org/app", match: []string{"registry.example.org/app"}},
		{glob: "registry.example.org/team/*",
			match:   []string{"registry.example.org/team/app", "registry.example.org/team/app:v1"},
			noMatch: []string{"registry.example.org/team", "registry.example.org/team/a/b", "registry.example.org/team-evil/app"}},
		{glob: "registry.example.org/team/**",
			match:   []string{"registry.example.org/team", "registry.example.org/team/app", "registry.example.org/team/a/b/c"},
			noMatch: []string{"registry.example.org/team-evil/app", "registry.example.org/teams/app"}},
		{glob: "registry.example.org/**/app",
			match:   []string{"registry.example.org/app", "registry.example.org/x/app", "registry.example.org/x/y/app"},
			noMatch: []string{"registry.example.org/x/app2"}},
		{glob: "registry.example.org/app-*", match: []string{"registry.example.org/app-1"}, noMatch: []string{"registry.example.org/app", "registry.example.org/app-1/x"}},
		{glob: "*.example.org/app", match: []string{"a.example.org/app", "b.example.org/app"}, noMatch: []string{"example.org/app", "a.example.org.evil/app"}},
		{glob: "localhost:5000/app", match: []string{"localhost:5000/app"}, noMatch: []string{"localhost:5001/app", "localhost/app"}},
		{glob: "127.0.0.1:5000/**", match: []string{"127.0.0.1:5000/a/b"}, noMatch: []string{"127.0.0.1:5001/a"}},
		{glob: "**", match: []string{"nginx", "registry.example.org/a/b/c", "localhost:5000/x"}},
		{prefix: "registry.example.org/team",
			match:   []string{"registry.example.org/team", "registry.example.org/team/app", "registry.example.org/team/a/b:v1", "Registry.Example.Org/team/app"},
			noMatch: []string{"registry.example.org/team-evil", "registry.example.org/teams/app", "other.example.org/team/app"}},
		{prefix: "registry.example.org", match: []string{"registry.example.org/anything/at/all"}, noMatch: []string{"registry.example.org.evil/x"}},
		{prefix: "nginx", match: []string{"docker.io/library/nginx"}, noMatch: []string{"docker.io/library/nginx-evil"}},
		// One Docker Hub segment: the official image and the organization.
		{prefix: "docker.io/bitnami", match: []string{"bitnami/redis", "docker.io/bitnami/redis", "docker.io/library/bitnami", "bitnami"}, noMatch: []string{"bitnami-evil/redis", "docker.io/library/bitnamix"}},
		{prefix: "docker.io/library/nginx", match: []string{"nginx"}, noMatch: []string{"nginx/nginx-ingress"}},
	} {
		text, glob := tc.glob, true
		if tc.prefix != "" {
			text, glob = tc.prefix, false
		}
		pats, err := compilePatterns(text, glob)
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		check := func(image string, want bool) {
			ref, err := reference.Parse(image)
			if err != nil {
				t.Fatalf("%q: %v", image, err)
			}
			got := false
			for _, p := range pats {
				got = got || p.matches(ref.Registry(), strings.Split(ref.Repository(), "/"))
			}
			if got != want {
				t.Errorf("pattern %q (glob=%v) on %q (%s): got %v, want %v", text, glob, image, ref.Name(), got, want)
			}
			// The index must agree with the patterns.
			ix := newIndex()
			for _, p := range pats {
				ix.add(p, 0)
			}
			found := false
			ix.lookup(ref.Registry(), strings.Split(ref.Repository(), "/"), func(int) { found = true })
			if found != want {
				t.Errorf("index for %q on %q: got %v, want %v", text, image, found, want)
			}
		}
		for _, m := range tc.match {
			check(m, true)
		}
		for _, m := range tc.noMatch {
			check(m, false)
		}
	}
}

func TestPatternRejects(t *testing.T) {
	for _, tc := range []struct {
		text string
		glob bool
		want string
	}{
		{"registry.example.org/app:v1", true, `write the tag "v1" in tag`},
		{"registry.example.org/app@sha256:" + strings.Repeat("a", 64), true, "remove the digest"},
		{"registry.example.org/App", true, "lower case"},
		{"registry.example.org//app", true, "empty path segment"},
		{"registry.example.org/team/", false, "trailing /"},
		{"registry.example.org/team/*", false, "use glob"},
		{"registry.example.org/a**", true, "whole path segment"},
		{"registry.example.org/a b", true, "cannot appear"},
		{" nginx", true, "space"},
		{"", true, "empty"},
	} {
		_, err := compilePattern(tc.text, tc.glob)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q (glob=%v): got %v, want an error saying %q", tc.text, tc.glob, err, tc.want)
		}
	}
}

// TestSnapshotMatchScopes: ImagePolicies apply only in their namespace,
// selectors and kinds narrow, and an image's tag never stands for a
// repository.
func TestSnapshotMatchScopes(t *testing.T) {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	mk := func(kind, ns, name, glob string, match *v1alpha1.MatchResources) *Policy {
		p := CompileObject(t.Context(), Object{Kind: kind, Name: name, Namespace: ns, Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: glob}}, Authorities: static, Match: match}}, nil)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		return p
	}
	snap, err := NewSnapshot([]*Policy{
		mk(KindClusterImagePolicy, "", "all-prod", "registry.example.org/prod/**", nil),
		mk(KindImagePolicy, "team-a", "team-a-extra", "registry.example.org/prod/app", nil),
		mk(KindClusterImagePolicy, "", "labelled", "registry.example.org/prod/**", &v1alpha1.MatchResources{
			NamespaceSelector: labelSelector(map[string]string{"env": "prod"}), Kinds: []string{"Deployment"}}),
	}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	names := func(image string, tg Target) string {
		ref, err := reference.Parse(image)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range snap.Match(ref, tg) {
			out = append(out, p.Object.Name)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		image string
		t     Target
		want  string
	}{
		{"registry.example.org/prod/app:v1", Target{Namespace: "team-b", Kind: "Pod"}, "all-prod"},
		{"registry.example.org/prod/app:v1", Target{Namespace: "team-a", Kind: "Pod"}, "all-prod,team-a-extra"},
		{"registry.example.org/prod/app:v1", Target{Namespace: "team-a", Kind: "Deployment", NamespaceLabels: map[string]string{"env": "prod"}}, "all-prod,labelled,team-a-extra"},
		{"registry.example.org/prod/app:v1", Target{Namespace: "team-b", Kind: "Pod", NamespaceLabels: map[string]string{"env": "prod"}}, "all-prod"},
		{"registry.example.org/dev/app:prod", Target{Namespace: "team-a"}, ""},
	} {
		if got := names(tc.image, tc.t); got != tc.want {
			t.Errorf("%s in %+v: matched %q, want %q", tc.image, tc.t, got, tc.want)
		}
	}
}

// TestIndexScales: a lookup among 10,000 policies tries only the few that
// can match.
func TestIndexScales(t *testing.T) {
	ix := newIndex()
	for i := range 10000 {
		p, err := compilePattern(fmt.Sprintf("registry.example.org/team-%d/**", i), true)
		if err != nil {
			t.Fatal(err)
		}
		ix.add(p, i)
	}
	tried := 0
	var got []int
	ix.lookup("registry.example.org", []string{"team-42", "app"}, func(i int) { got = append(got, i) })
	for _, es := range [][]entry{ix.wildcard, ix.hosts["registry.example.org"].here, ix.hosts["registry.example.org"].children["team-42"].here} {
		tried += len(es)
	}
	if len(got) != 1 || got[0] != 42 || tried > 2 {
		t.Fatalf("lookup found %v after trying %d patterns", got, tried)
	}
}

func labelSelector(m map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: m}
}

func selectorWith(key, op string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: metav1.LabelSelectorOperator(op), Values: []string{"x"}}}}
}

// TestExcludeImages: excludeImages removes images from one policy only;
// the others still govern them, and a broken exclusion fails closed (the
// policy keeps governing everything it selects).
func TestExcludeImages(t *testing.T) {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	general := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "general", Spec: v1alpha1.ImagePolicySpec{
		Images:        []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
		ExcludeImages: []v1alpha1.ImageMatcher{{Prefix: "registry.example.org/vendor"}, {Glob: "registry.example.org/tools/*-debug"}},
		Authorities:   static}}, nil)
	specific := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "vendor", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Prefix: "registry.example.org/vendor"}}, Authorities: static}}, nil)
	broken := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "broken", Spec: v1alpha1.ImagePolicySpec{
		Images:        []v1alpha1.ImageMatcher{{Glob: "other.example.org/**"}},
		ExcludeImages: []v1alpha1.ImageMatcher{{Glob: "other.example.org/App"}},
		Authorities:   static}}, nil)
	for _, p := range []*Policy{general, specific} {
		if p.Err != nil {
			t.Fatal(p.Err)
		}
	}
	if broken.Err == nil || !strings.Contains(broken.Err.Error(), `spec.excludeImages[0].glob: "other.example.org/App"`) {
		t.Fatalf("broken exclusion: %v", broken.Err)
	}
	snap, err := NewSnapshot([]*Policy{general, specific, broken}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for image, want := range map[string]string{
		"registry.example.org/app:v1":              "general",
		"registry.example.org/vendor/db:v1":        "vendor",
		"registry.example.org/vendor-evil/db:v1":   "general",
		"registry.example.org/tools/shell-debug:1": "",
		"registry.example.org/tools/shell:1":       "general",
		"other.example.org/app:1":                  "broken",
	} {
		ref, err := reference.Parse(image)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range snap.Match(ref, Target{Namespace: "default", Kind: "Pod"}) {
			got = append(got, p.Object.Name)
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s: matched %v, want %q", image, got, want)
		}
	}
}
