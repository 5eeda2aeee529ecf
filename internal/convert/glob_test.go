package convert

import (
	"regexp"
	"strings"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
)

const hex64 = "a3f1c9e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a6"

// sample is one image as written by a user, with the names each source
// matches its patterns against (written from the peers' documented code,
// independently of the translator).
type sample struct {
	written string // as in a Pod spec, always with a tag and a digest variant
	pcName  string // policy-controller: normalized, index.docker.io
	kyName  string // Kyverno: docker.io, no library/ added
}

var samples = []sample{
	{"ghcr.io/acme/app", "ghcr.io/acme/app", "ghcr.io/acme/app"},
	{"ghcr.io/acme/a/b", "ghcr.io/acme/a/b", "ghcr.io/acme/a/b"},
	{"ghcr.io/acme-evil/app", "ghcr.io/acme-evil/app", "ghcr.io/acme-evil/app"},
	{"ghcr.io/acme", "ghcr.io/acme", "ghcr.io/acme"},
	{"oci.stackable.tech/sdp/kafka", "oci.stackable.tech/sdp/kafka", "oci.stackable.tech/sdp/kafka"},
	{"stackable.tech/x/y", "stackable.tech/x/y", "stackable.tech/x/y"},
	{"evil.example/x.stackable.tech/y", "evil.example/x.stackable.tech/y", "evil.example/x.stackable.tech/y"},
	{"evil.example/x.stackable.tech", "evil.example/x.stackable.tech", "evil.example/x.stackable.tech"},
	{"nginx", "index.docker.io/library/nginx", "docker.io/nginx"},
	{"library/nginx", "index.docker.io/library/nginx", "docker.io/library/nginx"},
	{"bitnami/redis", "index.docker.io/bitnami/redis", "docker.io/bitnami/redis"},
	{"localhost:5000/team/app", "localhost:5000/team/app", "localhost:5000/team/app"},
	{"localhost/app", "localhost/app", "localhost/app"},
	{"registry.example.org/myproject/my-image", "registry.example.org/myproject/my-image", "registry.example.org/myproject/my-image"},
	{"registry.example.org/myproject/deep/img", "registry.example.org/myproject/deep/img", "registry.example.org/myproject/deep/img"},
	{"registry.example.org/myproject-x/img", "registry.example.org/myproject-x/img", "registry.example.org/myproject-x/img"},
	{"my-registry.example.org/p/img", "my-registry.example.org/p/img", "my-registry.example.org/p/img"},
	{"xpkg.upbound.io/upbound/provider-aws", "xpkg.upbound.io/upbound/provider-aws", "xpkg.upbound.io/upbound/provider-aws"},
	{"xpkg.upbound.io/upbound-evil/provider", "xpkg.upbound.io/upbound-evil/provider", "xpkg.upbound.io/upbound-evil/provider"},
	{"gcr.io/projectsigstore/cosign", "gcr.io/projectsigstore/cosign", "gcr.io/projectsigstore/cosign"},
	{"gcr.io/projectsigstore/cosign-x/y", "gcr.io/projectsigstore/cosign-x/y", "gcr.io/projectsigstore/cosign-x/y"},
	{"cgr.dev/chainguard/nginx", "cgr.dev/chainguard/nginx", "cgr.dev/chainguard/nginx"},
	{"cgr.dev/chainguard/sub/tool", "cgr.dev/chainguard/sub/tool", "cgr.dev/chainguard/sub/tool"},
}

// pcMatches is policy-controller's glob semantics: "**" → ".*", "*" →
// "[^/]*", anchored, against name@sha256:<hex>.
func pcMatches(glob, name string) bool {
	switch glob {
	case "*":
		glob = "index.docker.io/library/*"
	case "*/*":
		glob = "index.docker.io/*/*"
	}
	var b strings.Builder
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(".*")
			i++
		case glob[i] == '*':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	return regexp.MustCompile("^" + b.String() + "$").MatchString(name + "@sha256:" + hex64)
}

// wildMatches is "*" any run of characters (Kyverno, Tanzu).
func wildMatches(pat, s string) bool {
	re := strings.ReplaceAll(regexp.QuoteMeta(pat), `\*`, ".*")
	return regexp.MustCompile("^" + re + "$").MatchString(s)
}

func signetMatches(t *testing.T, globs []string, image string) bool {
	t.Helper()
	if len(globs) == 0 {
		return false
	}
	spec := v1alpha1.ImagePolicySpec{Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}
	for _, g := range globs {
		spec.Images = append(spec.Images, v1alpha1.ImageMatcher{Glob: g})
	}
	p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "p", Spec: spec}, nil)
	if p.Err != nil {
		t.Fatalf("globs %q do not compile: %v", globs, p.Err)
	}
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := reference.Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	return len(snap.Match(ref, policy.Target{})) > 0
}

// TestGlobTranslation: each source pattern selects, in signet, exactly the
// images it selects in its source system (checked on every sample, by tag
// and by digest), or is refused or reported dead.
func TestGlobTranslation(t *testing.T) {
	type outcome int
	const (
		exact outcome = iota
		dead
		refused
	)
	for _, tc := range []struct {
		format  string
		pattern string
		want    outcome
	}{
		// policy-controller: seed 004 and the b1 rules.
		{"pc", "**.stackable.tech/**", exact},
		{"pc", "ghcr.io/acme/*", exact},
		{"pc", "ghcr.io/acme/**", exact},
		{"pc", "ghcr.io/acme/app*", exact},
		{"pc", "ghcr.io/acme**", exact},
		{"pc", "ghcr.io/*/app*", exact},
		{"pc", "ghcr.io/acme/app", dead}, // policy-controller compares name@digest
		{"pc", "ghcr.io/acme/app:*", refused},
		{"pc", "ghcr.io/acme/*a", refused}, // depends on the digest
		{"pc", "*", exact},
		{"pc", "*/*", exact},
		{"pc", "index.docker.io/library/*", exact},
		{"pc", "docker.io/library/*", dead}, // never seen by policy-controller
		{"pc", "**", exact},
		{"pc", "*/**", exact},
		{"pc", "localhost*/**", exact},
		{"pc", "registry.example.org/myproject/**", exact},
		// Kyverno: seed 002 and b2.
		{"kyverno", "cgr.dev/chainguard/*", exact},
		{"kyverno", "ghcr.io/acme/*", exact},
		{"kyverno", "ghcr.io/acme/app", dead}, // Kyverno compares name:tag
		{"kyverno", "ghcr.io/acme/app:*", refused},
		{"kyverno", "ghcr.io/*-evil/*", exact},
		{"kyverno", "ghcr.io/acme/*-x*", refused}, // "-x" may lie in the tag
		{"kyverno", "*", exact},
		{"kyverno", "docker.io/*", exact},
		{"kyverno", "docker.io/nginx*", refused}, // docker.io/nginx vs docker.io/library/nginx
		{"kyverno", "*.example.org/*", exact},
		// Tanzu: the documented name pattern table.
		{"tanzu", "registry.example.org/myproject/my-image", exact},
		{"tanzu", "registry.example.org/myproject/*", exact},
		{"tanzu", "registry.example.org/*/my-image", exact},
		{"tanzu", "registry.example.org/*", exact},
		{"tanzu", "*.example.org/*", exact},
		{"tanzu", "gcr.io/projectsigstore/cosign*", exact},
		{"tanzu", "*", exact},
		// Crossplane: raw string prefixes.
		{"crossplane", "xpkg.upbound.io/upbound", exact},
		{"crossplane", "xpkg.upbound.io/upbound/", exact},
		{"crossplane", "ghcr.io", exact},
		{"crossplane", "xpkg.upbound.io/upbound/provider-aws:", refused},
	} {
		t.Run(tc.format+" "+tc.pattern, func(t *testing.T) {
			var toks []tok
			var d dialect
			switch tc.format {
			case "pc":
				g := tc.pattern
				switch g {
				case "*":
					g = "index.docker.io/library/*"
				case "*/*":
					g = "index.docker.io/*/*"
				}
				toks, d = pcTokens(g), pcDialect
			case "kyverno":
				toks, d = starTokens(tc.pattern), kyvernoDialect
			case "tanzu":
				toks, d = starTokens(tc.pattern), tanzuDialect
			case "crossplane":
				toks, d = []tok{{tLit, tc.pattern}, {kind: tAnyStar}}, crossplaneDialect
			}
			globs, isDead, reason := translate(toks, d)
			got := exact
			switch {
			case reason != "":
				got = refused
			case isDead:
				got = dead
			}
			if got != tc.want {
				t.Fatalf("outcome %d, want %d (globs %q, reason %q)", got, tc.want, globs, reason)
			}
			if got == refused {
				return
			}
			for _, s := range samples {
				for _, suffix := range []string{":v1", "@sha256:" + hex64} {
					var src bool
					switch tc.format {
					case "pc":
						src = pcMatches(tc.pattern, s.pcName)
					case "kyverno":
						src = wildMatches(tc.pattern, s.kyName+suffix)
					case "tanzu":
						src = wildMatches(tc.pattern, s.kyName) // the name, any tag
					case "crossplane":
						src = strings.HasPrefix(s.written+suffix, tc.pattern)
					}
					if sig := signetMatches(t, globs, s.written+suffix); sig != src {
						t.Errorf("%s: source selects it: %v, signet (globs %q): %v", s.written+suffix, src, globs, sig)
					}
				}
			}
		})
	}
}

// FuzzPolicyJSON: any input is either converted into policies signet
// compiles, refused, or reported invalid; never a panic.
func FuzzPolicyJSON(f *testing.F) {
	f.Add([]byte(`{"default":[{"type":"reject"}],"transports":{"docker":{"quay.io/crio/signed":[{"type":"sigstoreSigned","keyData":"LS0tLQ==","signedIdentity":{"type":"matchRepository"}}]}}}`))
	f.Add([]byte(`{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{"*.example.com":[{"type":"reject"}],"example.com/a":[{"type":"insecureAcceptAnything"}]}}}`))
	f.Add([]byte(`{"default":[{"type":"sigstoreSigned","fulcio":{}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, lossy := range []bool{false, true} {
			c := newConv(Options{AllowLossy: lossy})
			res, err := c.run(t.Context(), &policyJSONFormat, []manifests.Document{{Source: "policy.json", JSON: data}})
			if err != nil {
				continue
			}
			for _, o := range res.Objects {
				if err := selfCheck(t.Context(), o); err != nil {
					t.Fatalf("%s: %v", data, err)
				}
			}
		}
	})
}

// TestExclusionTranslation: a source's include pattern minus its exclusion
// (Kyverno imageReferences minus skipImageReferences; Crossplane's shorter
// prefix minus a longer one, which wins there) governs, in signet
// (images and excludeImages), exactly the images it governs in the source,
// on every sample by tag and by digest.
func TestExclusionTranslation(t *testing.T) {
	for _, tc := range []struct {
		format, include, exclude string
	}{
		{"kyverno", "ghcr.io/*", "ghcr.io/acme/*"},
		{"kyverno", "ghcr.io/acme/*", "ghcr.io/acme/a/*"},
		{"kyverno", "*", "cgr.dev/chainguard/*"},
		{"kyverno", "registry.example.org/*", "registry.example.org/myproject*"},
		{"kyverno", "*.example.org/*", "my-registry.example.org/*"},
		{"crossplane", "xpkg.upbound.io/upbound", "xpkg.upbound.io/upbound/"},
		{"crossplane", "ghcr.io/", "ghcr.io/acme"},
		{"crossplane", "registry.example.org/myproject", "registry.example.org/myproject/deep"},
	} {
		t.Run(tc.format+" "+tc.include+" - "+tc.exclude, func(t *testing.T) {
			toks := func(p string) []tok {
				if tc.format == "crossplane" {
					return []tok{{tLit, p}, {kind: tAnyStar}}
				}
				return starTokens(p)
			}
			d := kyvernoDialect
			if tc.format == "crossplane" {
				d = crossplaneDialect
			}
			inc, _, why := translate(toks(tc.include), d)
			exc, _, why2 := translate(toks(tc.exclude), d)
			if why != "" || why2 != "" {
				t.Fatalf("refused: %s %s", why, why2)
			}
			spec := v1alpha1.ImagePolicySpec{Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}
			for _, g := range inc {
				spec.Images = append(spec.Images, v1alpha1.ImageMatcher{Glob: g})
			}
			for _, g := range exc {
				spec.ExcludeImages = append(spec.ExcludeImages, v1alpha1.ImageMatcher{Glob: g})
			}
			p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "p", Spec: spec}, nil)
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range samples {
				for _, suffix := range []string{":v1", "@sha256:" + hex64} {
					var src bool
					switch tc.format {
					case "kyverno":
						src = wildMatches(tc.include, s.kyName+suffix) && !wildMatches(tc.exclude, s.kyName+suffix)
					case "crossplane":
						src = strings.HasPrefix(s.written+suffix, tc.include) && !strings.HasPrefix(s.written+suffix, tc.exclude)
					}
					ref, err := reference.Parse(s.written + suffix)
					if err != nil {
						t.Fatal(err)
					}
					if sig := len(snap.Match(ref, policy.Target{})) > 0; sig != src {
						t.Errorf("%s: governed in the source: %v, in signet (images %q, excludeImages %q): %v", s.written+suffix, src, inc, exc, sig)
					}
				}
			}
		})
	}
}
