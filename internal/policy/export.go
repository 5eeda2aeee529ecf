package policy

import (
	"context"
	"fmt"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/verify"
)

// Pattern is the shape of one image pattern of a policy, for exporters that
// translate patterns into another system's scopes.
type Pattern struct {
	// Field is the pattern's path in the policy: spec.images[0].glob.
	Field string
	// Text is the pattern as written.
	Text string
	// Glob is true for a glob, false for a prefix.
	Glob bool
	// All is true for the glob "**" (every image); Host and Segments are
	// then empty.
	All bool
	// Host is the normalized registry host (lower case, docker.io for
	// Docker Hub), or a host glob such as *.example.org.
	Host string
	// Segments are the normalized repository path segments (library/nginx
	// for nginx); glob segments may hold * and **. Empty for a prefix that
	// names a whole registry.
	Segments []string
	// Tag is the tag pattern ("*" any run of characters) the image's
	// reference must name, "" for every tag; TagField is its path
	// (spec.images[0].tag). Match selects a reference by digest alone
	// whatever the tag pattern.
	Tag, TagField string
}

// Patterns returns the policy's image patterns that compile, normalized as
// Match uses them. Patterns that do not compile are in Err.
func (p *Policy) Patterns() []Pattern {
	return patternsOf("spec.images", p.Object.Spec.Images)
}

// Exclusions returns the patterns of spec.excludeImages that compile, as
// Patterns does for spec.images.
func (p *Policy) Exclusions() []Pattern {
	return patternsOf("spec.excludeImages", p.Object.Spec.ExcludeImages)
}

// patternsOf returns the patterns of the list at path (spec.images) that
// compile.
func patternsOf(path string, ms []v1alpha1.ImageMatcher) []Pattern {
	var out []Pattern
	for i, m := range ms {
		text, glob, field := m.Prefix, false, fmt.Sprintf("%s[%d].prefix", path, i)
		if m.Glob != "" {
			text, glob, field = m.Glob, true, fmt.Sprintf("%s[%d].glob", path, i)
		}
		pats, _, err := compileMatcher(m)
		if err != nil {
			continue
		}
		for _, pat := range pats {
			x := Pattern{Field: field, Text: text, Glob: glob, All: pat.all, Host: pat.host, Segments: append([]string(nil), pat.segs...), Tag: pat.tag}
			if pat.tag != "" {
				x.TagField = fmt.Sprintf("%s[%d].tag", path, i)
			}
			out = append(out, x)
		}
	}
	return out
}

// Applies reports whether the policy governs images admitted in the target
// by its kind, namespace and namespace selector (Match's rules, without the
// image patterns): a cluster policy whose selector (if any) selects the
// namespace labels, or an ImagePolicy of the target's namespace; and
// match.kinds, when set, holds the target's kind.
func (p *Policy) Applies(t Target) bool {
	if p.Object.Kind == KindImagePolicy && p.Object.Namespace != t.Namespace {
		return false
	}
	if p.selector != nil && !p.selector.matches(t.NamespaceLabels) {
		return false
	}
	if p.kinds != nil && t.Kind != "" && !p.kinds[t.Kind] {
		return false
	}
	return true
}

// Authorities compiles the policy's authorities again with r within ctx,
// exactly as CompileObject does (keys parsed from key.data or the Secret,
// trusted material resolved), for exporters that need the key material. A
// policy with Err set, or whose authorities no longer compile, returns an
// *InvalidError.
func (p *Policy) Authorities(ctx context.Context, r Resolver) ([]verify.Authority, error) {
	if p.Err != nil {
		return nil, p.Err
	}
	c := &compiler{}
	out := make([]verify.Authority, 0, len(p.Object.Spec.Authorities))
	for i, a := range p.Object.Spec.Authorities {
		va, _ := c.authority(ctx, fmt.Sprintf("spec.authorities[%d]", i), a, i, p.Object, r)
		out = append(out, va)
	}
	if len(c.errs) > 0 {
		return nil, &InvalidError{Object: p.Object.ID(), Errors: c.errs}
	}
	return out, nil
}
