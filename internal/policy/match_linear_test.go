package policy

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
)

// stepsPerCell is the constant of the matcher's bound: a match takes at most
// stepsPerCell·(size(pattern)+1)·(size(name)+1) steps (linearBound), where a
// step is one comparison of a pattern character with a name character, or
// of a pattern segment with a name segment.
const stepsPerCell = 4

func linearBound(phost string, psegs []string, host string, segs []string) int {
	return stepsPerCell * (size(phost, psegs) + 1) * (size(host, segs) + 1)
}

// size is the length of a repository written out: host, then "/" and each
// segment.
func size(host string, segs []string) int {
	n := len(host)
	for _, s := range segs {
		n += 1 + len(s)
	}
	return n
}

// TestMatchLinear: adversarial globs against long names cost at most
// stepsPerCell steps per (pattern character, name character) pair. A
// backtracking matcher needs exponentially many steps on these: with k
// stars it may try every way of splitting the name k times.
func TestMatchLinear(t *testing.T) {
	stars := func(k int, c string) string { return strings.Repeat("*"+c, k) }
	repeat := func(seg string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = seg
		}
		return out
	}
	type tc struct {
		name string
		glob string
		host string
		segs []string
		want bool
	}
	var cases []tc
	for _, n := range []int{32, 4096} {
		cases = append(cases,
			tc{name: fmt.Sprintf("stars in a segment/size=%d", n),
				glob: "registry.example.org/team/" + stars(8, "a") + "*b",
				host: "registry.example.org", segs: []string{"team", strings.Repeat("a", n)}},
			tc{name: fmt.Sprintf("stars in a segment, matching/size=%d", n),
				glob: "registry.example.org/team/" + stars(8, "a") + "*b",
				host: "registry.example.org", segs: []string{"team", strings.Repeat("a", n) + "b"}, want: true},
			tc{name: fmt.Sprintf("double stars/size=%d", n),
				glob: "registry.example.org/" + strings.Repeat("**/", 64) + "x",
				host: "registry.example.org", segs: append(repeat("a", n/2), "y")},
			tc{name: fmt.Sprintf("double stars between segment stars/size=%d", n),
				glob: "registry.example.org/" + strings.Repeat("**/*a*a*/", 16) + "b",
				host: "registry.example.org", segs: repeat("aaa", n/4)},
			tc{name: fmt.Sprintf("host stars/size=%d", n),
				glob: stars(8, "a") + "*b.example.org/app",
				host: strings.Repeat("a", n) + ".example.org", segs: []string{"app"}},
			tc{name: fmt.Sprintf("everything/size=%d", n),
				glob: stars(8, "a") + "*.org/" + strings.Repeat("**/"+stars(4, "a")+"*/", 8) + stars(8, "a") + "*b",
				host: strings.Repeat("a", n/2) + ".org", segs: repeat(strings.Repeat("a", 16), n/32)},
			// The worst case of a linear matcher: each failed try re-reads
			// the literal after the star, len(pattern)·len(name) steps.
			tc{name: fmt.Sprintf("long literal after a star/size=%d", n),
				glob: "registry.example.org/*" + strings.Repeat("a", 64) + "b",
				host: "registry.example.org", segs: []string{strings.Repeat("a", n)}},
			tc{name: fmt.Sprintf("long path after a double star/size=%d", n),
				glob: "registry.example.org/**/" + strings.Repeat("a/", 64) + "b",
				host: "registry.example.org", segs: repeat("a", n/2)},
		)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := compilePattern(c.glob, true)
			if err != nil {
				t.Fatal(err)
			}
			got, steps := p.match(c.host, c.segs)
			if got != c.want {
				t.Errorf("matched %v, want %v", got, c.want)
			}
			bound := linearBound(p.host, p.segs, c.host, c.segs)
			if steps > bound {
				t.Errorf("%d steps for a %d-character pattern and a %d-character name, over the linear bound %d", steps, size(p.host, p.segs), size(c.host, c.segs), bound)
			}
		})
	}
}

// TestTagMatchLinear: a tag pattern at its length limit, all stars and
// literals, against the longest tag costs at most stepsPerCell steps per
// (pattern character, tag character) pair.
func TestTagMatchLinear(t *testing.T) {
	for _, tc := range []struct{ tag, name string }{
		{strings.Repeat("*a", maxTagPatternLength/2-1) + "*b", strings.Repeat("a", 128)},
		{"*" + strings.Repeat("a", maxTagPatternLength-2) + "b", strings.Repeat("a", 128)},
	} {
		tag, err := compileTag(tc.tag)
		if err != nil {
			t.Fatal(err)
		}
		got, steps := (&pattern{tag: tag}).matchTag(tc.name)
		if got {
			t.Errorf("%q on %q: matched, want no match", tc.tag, tc.name)
		}
		if bound := linearBound(tag, nil, tc.name, nil); steps > bound {
			t.Errorf("%q on %q: %d steps, over the linear bound %d", tc.tag, tc.name, steps, bound)
		}
	}
}

// TestPrefixLinear: a prefix compares each of its segments once.
func TestPrefixLinear(t *testing.T) {
	p, err := compilePattern("registry.example.org/"+strings.Repeat("a/", 200)+"b", false)
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Split(strings.Repeat("a/", 2000)+"b", "/")
	got, steps := p.match("registry.example.org", segs)
	if got {
		t.Error("matched, want no match")
	}
	if bound := stepsPerCell * (size(p.host, p.segs) + 1); steps > bound {
		t.Errorf("%d steps, over %d", steps, bound)
	}
}

// TestCompileBounds: a pattern over maxPatternLength characters, or an
// identity regular expression too long or too large, is refused with its
// field, without being repeated; a pattern at the limit compiles.
func TestCompileBounds(t *testing.T) {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	atLimit := "registry.example.org/" + strings.Repeat("*a", (maxPatternLength-len("registry.example.org/"))/2)
	atLimit += strings.Repeat("b", maxPatternLength-len(atLimit))
	over := atLimit + "c"
	for _, tc := range []struct {
		name string
		spec v1alpha1.ImagePolicySpec
		want []string
	}{
		{"at the limit", v1alpha1.ImagePolicySpec{
			Images:        []v1alpha1.ImageMatcher{{Glob: atLimit}, {Prefix: "nginx", Tag: strings.Repeat("*a", maxTagPatternLength/2)}},
			ExcludeImages: []v1alpha1.ImageMatcher{{Prefix: "registry.example.org/" + strings.Repeat("x", maxPatternLength-len("registry.example.org/"))}},
		}, nil},
		{"over the limit", v1alpha1.ImagePolicySpec{
			Images:        []v1alpha1.ImageMatcher{{Glob: "nginx"}, {Glob: over}, {Prefix: strings.Repeat("a/", 1000) + "a"}, {Glob: "nginx", Tag: strings.Repeat("v", 2000)}},
			ExcludeImages: []v1alpha1.ImageMatcher{{Glob: strings.Repeat("**/", 200) + "x"}},
		}, []string{
			"spec.images[1].glob: has 513 characters, over the limit of 512",
			"spec.images[2].prefix: has 2001 characters, over the limit of 512",
			"spec.images[3].tag: has 2000 characters, over the limit of 128",
			"spec.excludeImages[0].glob: has 601 characters, over the limit of 512",
		}},
		{"identity regular expressions", v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: "nginx"}},
			Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{
				{IssuerRegExp: "https://" + strings.Repeat("x", 2000), Subject: "me@example.org"},
				{Issuer: "https://accounts.google.com", SubjectRegExp: strings.Repeat(`\pL{1000}`, 3)},
			}}}},
		}, []string{
			"spec.authorities[0].keyless.identities[0]: issuerRegExp: has 2008 characters, over the limit of 1024",
			"spec.authorities[0].keyless.identities[1]: subjectRegExp: compiles to 3002 instructions, over the limit of 2048 (a counted repetition such as {100} repeats what it applies to: write a shorter count, or + or *)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.spec.Authorities == nil {
				tc.spec.Authorities = static
			}
			p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: tc.spec}, fakeResolver{})
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
}

// TestOtherNamespacesCostNothing: the patterns of a namespace's
// ImagePolicies are not matched for images admitted in other namespaces,
// nor are those of policies whose selector or kinds rule the target out.
func TestOtherNamespacesCostNothing(t *testing.T) {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	mk := func(kind, ns, name, glob string, match *v1alpha1.MatchResources) *Policy {
		p := CompileObject(t.Context(), Object{Kind: kind, Name: name, Namespace: ns, Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: glob}, {Glob: "registry.example.org/**"}}, Authorities: static, Match: match}}, nil)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		return p
	}
	policies := []*Policy{mk(KindClusterImagePolicy, "", "cluster", "registry.example.org/**", nil)}
	for i := range 500 {
		// A wildcard host: tried for every image, whatever its registry.
		policies = append(policies, mk(KindImagePolicy, "tenant", fmt.Sprintf("p%d", i), "*.org/**/*a*a*a*b", nil))
	}
	policies = append(policies, mk(KindClusterImagePolicy, "", "deployments-only", "*.org/**", &v1alpha1.MatchResources{Kinds: []string{"Deployment"}}))
	snap, err := NewSnapshot(policies, Config{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.Parse("registry.example.org/team/" + strings.Repeat("a", 100) + ":v1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns        string
		wantNames string
		wantTried int
	}{
		// The cluster policy: its two patterns, the first of which matches.
		{"other", "cluster", 1},
		// Each tenant policy: the wildcard glob (no match), then its second.
		{"tenant", "cluster," + strings.Join(func() []string {
			var names []string
			for i := range 500 {
				names = append(names, fmt.Sprintf("p%d", i))
			}
			sort.Strings(names)
			return names
		}(), ","), 1 + 2*500},
	} {
		t.Run(tc.ns, func(t *testing.T) {
			got, tried := snap.match(ref, Target{Namespace: tc.ns, Kind: "Pod"})
			var names []string
			for _, p := range got {
				names = append(names, p.Object.Name)
			}
			if diff := cmp.Diff(tc.wantNames, strings.Join(names, ",")); diff != "" {
				t.Errorf("matched (-want +got):\n%s", diff)
			}
			if tried != tc.wantTried {
				t.Errorf("matched %d patterns, want %d", tried, tc.wantTried)
			}
		})
	}
}
