package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
)

// TestTagPatterns: a tag narrows a glob or prefix to the references naming
// a matching tag (latest when they name neither tag nor digest); a
// reference by digest alone is selected by every tag pattern of its
// repository, and one with tag and digest by its tag. Through the index
// (Snapshot.Match), wherever the pattern sits in it.
func TestTagPatterns(t *testing.T) {
	digest := "@sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct {
		m       v1alpha1.ImageMatcher
		match   []string
		noMatch []string
	}{
		{m: v1alpha1.ImageMatcher{Glob: "registry.example.org/team/app", Tag: "v1"},
			match:   []string{"registry.example.org/team/app:v1", "registry.example.org/team/app" + digest, "registry.example.org/team/app:v1" + digest},
			noMatch: []string{"registry.example.org/team/app:v2", "registry.example.org/team/app", "registry.example.org/team/app:v1-evil", "registry.example.org/team/app:v2" + digest, "registry.example.org/team/app2:v1", "registry.example.org/team/app/x:v1"}},
		{m: v1alpha1.ImageMatcher{Glob: "registry.example.org/team/app", Tag: "latest"},
			match:   []string{"registry.example.org/team/app", "registry.example.org/team/app:latest", "registry.example.org/team/app" + digest},
			noMatch: []string{"registry.example.org/team/app:v1"}},
		{m: v1alpha1.ImageMatcher{Glob: "registry.example.org/*/app", Tag: "v1.*"},
			match:   []string{"registry.example.org/a/app:v1.2", "registry.example.org/b/app:v1.", "registry.example.org/b/app" + digest},
			noMatch: []string{"registry.example.org/a/app:v1", "registry.example.org/a/app:v10", "registry.example.org/a/b/app:v1.2"}},
		{m: v1alpha1.ImageMatcher{Prefix: "registry.example.org/team", Tag: "release-*"},
			match:   []string{"registry.example.org/team/a/b:release-1", "registry.example.org/team:release-"},
			noMatch: []string{"registry.example.org/team/a:dev", "registry.example.org/team-evil/a:release-1"}},
		{m: v1alpha1.ImageMatcher{Glob: "*.example.org/**", Tag: "prod"},
			match:   []string{"a.example.org/x/y:prod", "b.example.org/x" + digest},
			noMatch: []string{"a.example.org/x/y:Prod", "a.example.org/x/y:prod2"}},
		{m: v1alpha1.ImageMatcher{Glob: "**", Tag: "*-debug"},
			match:   []string{"nginx:1.25-debug", "registry.example.org/x:a-debug"},
			noMatch: []string{"nginx:1.25", "nginx"}},
		// "*" alone is every tag, as no tag is.
		{m: v1alpha1.ImageMatcher{Glob: "nginx", Tag: "**"},
			match: []string{"nginx", "nginx:1.25", "docker.io/library/nginx" + digest}},
	} {
		p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{tc.m}, Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}}, nil)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		snap, err := NewSnapshot([]*Policy{p}, Config{})
		if err != nil {
			t.Fatal(err)
		}
		check := func(image string, want bool) {
			ref, err := reference.Parse(image)
			if err != nil {
				t.Fatalf("%q: %v", image, err)
			}
			if got := len(snap.Match(ref, Target{Namespace: "ns"})) == 1; got != want {
				t.Errorf("%+v on %q: matched %v, want %v", tc.m, image, got, want)
			}
		}
		for _, im := range tc.match {
			check(im, true)
		}
		for _, im := range tc.noMatch {
			check(im, false)
		}
	}
}

// TestDigestMeetsEveryTagPolicy: deploying by digest alone never escapes a
// policy that selects tags of the repository: it is governed by all of them
// (each must pass), where a tag reference is governed by its own.
func TestDigestMeetsEveryTagPolicy(t *testing.T) {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	mk := func(name string, m v1alpha1.ImageMatcher) *Policy {
		p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: name, Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{m}, Authorities: static}}, nil)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		return p
	}
	snap, err := NewSnapshot([]*Policy{
		mk("prod", v1alpha1.ImageMatcher{Glob: "registry.example.org/app", Tag: "prod"}),
		mk("release", v1alpha1.ImageMatcher{Glob: "registry.example.org/app", Tag: "v*"}),
		mk("other-repo", v1alpha1.ImageMatcher{Glob: "registry.example.org/other", Tag: "prod"}),
	}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	digest := "@sha256:" + strings.Repeat("b", 64)
	for image, want := range map[string][]string{
		"registry.example.org/app:prod":          {"prod"},
		"registry.example.org/app:v2":            {"release"},
		"registry.example.org/app:dev":           nil, // unmatched: --unmatched decides (deny by default)
		"registry.example.org/app" + digest:      {"prod", "release"},
		"registry.example.org/app:dev" + digest:  nil,
		"registry.example.org/app:prod" + digest: {"prod"},
	} {
		ref, err := reference.Parse(image)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range snap.Match(ref, Target{Namespace: "ns"}) {
			got = append(got, p.Object.Name)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", image, diff)
		}
	}
}

// TestTagPatternRejects: what a tag pattern cannot be, with its field; a
// tag in excludeImages is refused (a tag cannot lift a requirement), and
// the policy still denies what it selects.
func TestTagPatternRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec v1alpha1.ImagePolicySpec
		want []string
	}{
		{"characters", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "nginx", Tag: "v1/x"}, {Glob: "nginx", Tag: "v1@sha256"}, {Glob: "nginx", Tag: "v 1"}}},
			[]string{`spec.images[0].tag: "v1/x": character '/' cannot appear in a tag`, `spec.images[1].tag: "v1@sha256": character '@' cannot appear in a tag`, `spec.images[2].tag: "v 1": character ' ' cannot appear in a tag`}},
		{"a tag in the glob", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/app:v1"}}},
			[]string{`spec.images[0].glob: "registry.example.org/app:v1": patterns match repositories: write the tag "v1" in tag`}},
		{"excluded by tag", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}, ExcludeImages: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/app", Tag: "debug"}}},
			[]string{"spec.excludeImages[0].tag: a tag cannot exclude an image: whoever writes the reference chooses its tag"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Authorities = []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
			p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: tc.spec}, nil)
			var got []string
			if p.Err != nil {
				for _, fe := range p.Err.Errors {
					got = append(got, fe.Error())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("field errors (-want +got):\n%s", diff)
			}
		})
	}
	// The invalid policy still governs what its images select, the
	// excluded tag included.
	p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}, ExcludeImages: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/app", Tag: "debug"}},
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}}, nil)
	snap, err := NewSnapshot([]*Policy{p}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := reference.Parse("registry.example.org/app:debug")
	if got := snap.Match(ref, Target{Namespace: "ns"}); len(got) != 1 || got[0].Err == nil {
		t.Errorf("registry.example.org/app:debug: matched %v, want the invalid policy", got)
	}
}
