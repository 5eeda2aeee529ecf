package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
)

// selects reports whether any of pats selects image, and checks that the
// index agrees.
func selects(t *testing.T, pats []*pattern, image string) bool {
	t.Helper()
	ref, err := reference.Parse(image)
	if err != nil {
		t.Fatalf("%q: %v", image, err)
	}
	segs := strings.Split(ref.Repository(), "/")
	got := false
	ix := newIndex()
	for _, p := range pats {
		got = got || p.matches(ref.Registry(), segs)
		ix.add(p, 0)
	}
	indexed := false
	ix.lookup(ref.Registry(), segs, func(int) { indexed = true })
	if indexed != got {
		t.Errorf("%q: the index says %v, the patterns %v", image, indexed, got)
	}
	return got
}

// TestPatternHostSpellings: a pattern selects a registry however the
// pattern and the image spell its host.
func TestPatternHostSpellings(t *testing.T) {
	tests := []struct {
		text    string
		glob    bool
		match   []string
		noMatch []string
	}{
		{text: "127.0.0.1:5000/**", glob: true,
			match:   []string{"127.0.0.1:5000/app", "127.0.0.1:05000/app", "127.0.0.1:0005000/team/app:v1", "[::ffff:7f00:1]:5000/app", "[0::FFFF:7F00:0001]:05000/app"},
			noMatch: []string{"127.0.0.1:50000/app", "127.0.0.1:500/app", "127.0.0.2:5000/app"}},
		{text: "127.0.0.1:05000/**", glob: true, match: []string{"127.0.0.1:5000/app", "127.0.0.1:05000/app"}},
		{text: "[::ffff:7f00:1]:5000/app", glob: true, match: []string{"127.0.0.1:5000/app", "127.0.0.1:05000/app"}},
		{text: "127.0.0.1:05000", match: []string{"127.0.0.1:5000/app", "127.0.0.1:05000/a/b"}},
		{text: "[::1]:5000/**", glob: true,
			match:   []string{"[::1]:5000/app", "[0:0::1]:5000/app", "[0000:0000:0000:0000:0000:0000:0000:0001]:05000/app"},
			noMatch: []string{"[::2]:5000/app", "[::1]:5001/app"}},
		{text: "[0:0:0:0:0:0:0:1]:5000/app", glob: true, match: []string{"[::1]:5000/app"}},
		{text: "[2001:DB8::1]", match: []string{"[2001:0db8:0:0::1]/app", "[2001:db8::1]/x/y"}},
		{text: "Registry.Example.ORG:05000/team", match: []string{"registry.example.org:5000/team/app", "REGISTRY.EXAMPLE.ORG:5000/team/app"}},
		{text: "*.example.org:05000/app", glob: true, match: []string{"a.example.org:5000/app", "B.example.org:05000/app"}, noMatch: []string{"a.example.org/app"}},
		{text: "*.EXAMPLE.org/app", glob: true, match: []string{"a.example.org/app"}},
		// Docker Hub under every host name it answers to.
		{text: "docker.io/**", glob: true,
			match:   []string{"nginx", "registry-1.docker.io/library/nginx", "Registry-1.Docker.IO/library/nginx", "registry.hub.docker.com/bitnami/redis", "index.docker.io/bitnami/redis"},
			noMatch: []string{"registry-1.docker.io:5000/library/nginx", "docker.io.attacker.com/library/nginx"}},
		{text: "registry-1.docker.io/**", glob: true, match: []string{"nginx", "docker.io/bitnami/redis"}},
		{text: "registry.hub.docker.com/library/nginx", glob: true, match: []string{"nginx", "registry-1.docker.io/library/nginx"}},
		{text: "registry-1.docker.io", match: []string{"bitnami/redis", "registry.hub.docker.com/library/nginx"}},
		// A longer name is another host.
		{text: "registry.example.org", noMatch: []string{"registry.example.org.attacker.com/app", "registry.example.org:5000/app"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			pats, err := compilePatterns(tt.text, tt.glob)
			if err != nil {
				t.Fatalf("%q: %v", tt.text, err)
			}
			for _, image := range tt.match {
				if !selects(t, pats, image) {
					t.Errorf("pattern %q does not select %q", tt.text, image)
				}
			}
			for _, image := range tt.noMatch {
				if selects(t, pats, image) {
					t.Errorf("pattern %q selects %q", tt.text, image)
				}
			}
		})
	}
}

// TestPatternHostRejects: a pattern naming a host no reference can have is
// refused with the reason, as the reference would be.
func TestPatternHostRejects(t *testing.T) {
	defaultPort := func(port, n string) string {
		return "registry port " + port + " is a default port: write the host without it (the runtime configures and " +
			"authenticates host:" + n + " as another registry host than host, and over plain HTTP it is another server)"
	}
	const numeric = " is a numeric address not written as four decimal numbers without leading zeros (a.b.c.d); " +
		"resolvers disagree about which address it is"
	tests := []struct {
		text string
		glob bool
		want string
	}{
		{"registry.example.org:443/**", true, defaultPort("443", "443")},
		{"registry.example.org:0443", false, defaultPort("0443", "443")},
		{"localhost:80/app", true, defaultPort("80", "80")},
		{"*.example.org:443/**", true, defaultPort("443", "443")},
		{"registry.example.org:0/**", true, "registry port 0 is out of range: want 1 to 65535"},
		{"registry.example.org:65536/app", true, "registry port 65536 is out of range: want 1 to 65535"},
		{"registry.example.org:/app", true, `invalid registry port ""`},
		{"registry.example.org./**", true, `registry host "registry.example.org." ends with a dot, which the runtime's grammar does not accept`},
		{"*.example.org./**", true, `registry host "*.example.org." ends with a dot, which the runtime's grammar does not accept`},
		{"127.1:5000/**", true, `registry host "127.1"` + numeric},
		{"0x7f.0.0.1/**", true, `registry host "0x7f.0.0.1"` + numeric},
		{"017700000001:5000/**", true, `registry host "017700000001"` + numeric},
		{"[::1/**", true, `invalid registry host "[::1"`},
		{"[::1]x/app", true, `invalid registry host "[::1]x"`},
		{"[::*]:5000/**", true, `registry host "[::*]:5000": an IPv6 address cannot hold wildcards`},
		{"*.exa_mple.org/**", true, `invalid registry host "*.exa_mple.org"`},
		{"*.example.org:5x/**", true, `invalid registry port "5x"`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := compilePattern(tt.text, tt.glob)
			if err == nil {
				t.Fatalf("%q (glob=%v) compiled, want an error", tt.text, tt.glob)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("%q (glob=%v) error (-want +got):\n%s", tt.text, tt.glob, diff)
			}
		})
	}
}

// TestExcludeImagesHostSpellings: spec.excludeImages is canonicalized like
// spec.images, so an exclusion spelled differently still removes the
// images, and one naming a refused host makes the policy fail (closed).
func TestExcludeImagesHostSpellings(t *testing.T) {
	static := []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}
	general := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "general", Spec: v1alpha1.ImagePolicySpec{
		Images:        []v1alpha1.ImageMatcher{{Glob: "[0:0::1]:05000/**"}},
		ExcludeImages: []v1alpha1.ImageMatcher{{Prefix: "[::1]:5000/vendor"}},
		Authorities:   static}}, nil)
	if general.Err != nil {
		t.Fatal(general.Err)
	}
	refused := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "refused", Spec: v1alpha1.ImagePolicySpec{
		Images:        []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
		ExcludeImages: []v1alpha1.ImageMatcher{{Glob: "registry.example.org:443/tools/**"}},
		Authorities:   static}}, nil)
	wantErr := `spec.excludeImages[0].glob: "registry.example.org:443/tools/**": registry port 443 is a default port`
	if refused.Err == nil || !strings.Contains(refused.Err.Error(), wantErr) {
		t.Fatalf("exclusion with port 443: error %v, want it to say %q", refused.Err, wantErr)
	}
	snap, err := NewSnapshot([]*Policy{general, refused}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for image, want := range map[string]string{
		"[::1]:5000/app":                     "general",
		"[0::1]:05000/app":                   "general",
		"[::1]:5000/vendor/db":               "",
		"[0:0:0:0:0:0:0:1]:005000/vendor/db": "",
		"registry.example.org/tools/shell":   "refused",
	} {
		ref, err := reference.Parse(image)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range snap.Match(ref, Target{Namespace: "default", Kind: "Pod"}) {
			got = append(got, p.Object.Name)
		}
		if diff := cmp.Diff(want, strings.Join(got, ",")); diff != "" {
			t.Errorf("%s: matched policies (-want +got):\n%s", image, diff)
		}
	}
}
