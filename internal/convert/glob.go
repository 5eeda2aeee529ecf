package convert

import (
	"fmt"
	"sort"
	"strings"

	"github.com/signet-dev/signet/internal/policy"
)

// Image patterns of the source systems are translated into signet globs
// that select exactly the repositories some image of which the source
// pattern selects. A source pattern is a sequence of tokens over the string
// the source matches (the image name, plus a tag or digest for some
// sources): literals, "*" within a path segment (segStar), "*" across
// segments (anyStar).

type tokKind int

const (
	tLit     tokKind = iota
	tStar            // any run of characters within one path segment
	tAnyStar         // any run of characters, "/" included
)

type tok struct {
	kind tokKind
	s    string
}

// suffixKind says what follows the repository name in the string a source
// matches its patterns against.
type suffixKind int

const (
	// suffixNone: the name alone (Tanzu, whose patterns imply ":*").
	suffixNone suffixKind = iota
	// suffixDigest: name@sha256:<hex> (policy-controller drops the tag).
	suffixDigest
	// suffixTagOrDigest: name:tag, or name@sha256:<hex> when a digest is
	// given (Kyverno, Crossplane).
	suffixTagOrDigest
)

// dialect describes how a source matches image patterns.
type dialect struct {
	// dockerHost is the registry name the source gives Docker Hub images.
	dockerHost string
	// hubAmbiguous: the source names official Docker Hub images differently
	// from signet (docker.io/nginx rather than docker.io/library/nginx), or
	// does not document it; patterns that could tell the two apart are
	// refused.
	hubAmbiguous bool
	suffix       suffixKind
	// what the source compares, for messages ("name@digest").
	subject string
}

const maxAlternatives = 16

// maxPatternLength is signet's limit on a glob (internal/policy refuses
// longer ones): a longer source pattern is refused before it is read.
const maxPatternLength = 512

// seg is one path segment of an expanded pattern; dstar is "**".
type seg struct {
	toks  []tok
	dstar bool
}

// translate returns the signet globs equivalent to toks. dead reports a
// pattern that selects no image in the source (it is dropped, with a note);
// reason is set when the pattern cannot be expressed.
func translate(toks []tok, d dialect) (globs []string, dead bool, reason string) {
	if n := len(renderToks(toks)); n > maxPatternLength {
		return nil, false, fmt.Sprintf("it has %d characters, over the limit of %d of a signet pattern", n, maxPatternLength)
	}
	toks = mergeToks(toks)
	if len(toks) == 1 && toks[0].kind == tAnyStar {
		return []string{"**"}, false, ""
	}
	segs := splitSegments(toks)
	final := segs[len(segs)-1]
	for _, t := range final {
		if t.kind == tLit && strings.ContainsAny(t.s, ":@") {
			return nil, false, "the pattern names a tag or digest; this system's patterns convert to repository globs only (a tag is converted from Tanzu name patterns)"
		}
	}
	if d.suffix != suffixNone {
		chars := digestChars
		what := "digest"
		if d.suffix == suffixTagOrDigest {
			chars, what = tagChars, "tag or digest"
		}
		starSeen := false
		for _, t := range final {
			if t.kind != tLit {
				starSeen = true
				continue
			}
			if starSeen && onlyChars(t.s, chars) {
				// After a wildcard, a literal made of characters a tag or
				// digest can hold may match there rather than in the name.
				return nil, false, "whether it matches depends on the image's " + what + " (the source compares " + d.subject + ")"
			}
		}
		if final[len(final)-1].kind == tLit {
			// No wildcard can absorb the tag or digest.
			return nil, true, ""
		}
	}
	alts, ok := expand(segs)
	if !ok {
		return nil, false, "too many \"**\"-like wildcards to translate exactly"
	}
	hubRest := [][]seg{}
	for _, alt := range alts {
		if len(alt) < 2 {
			continue // a registry without a repository
		}
		hosts, dd, why := translateHost(alt[0].toks, d)
		if why != "" {
			return nil, false, why
		}
		if dd {
			continue
		}
		rest := renderSegs(alt[1:])
		if rest == "" {
			continue // a path that no repository has (upper case)
		}
		for _, h := range hosts {
			if globMatch(h, "docker.io") {
				hubRest = append(hubRest, alt[1:])
			}
			globs = append(globs, h+"/"+rest)
		}
	}
	if d.hubAmbiguous && len(hubRest) > 0 && !hubConsistent(hubRest, toks) {
		return nil, false, "it could select official Docker Hub images, which the source names without library/ (docker.io/nginx) while signet names them docker.io/library/nginx"
	}
	if len(globs) == 0 {
		return nil, true, ""
	}
	globs = simplify(globs)
	sort.Strings(globs)
	out := globs[:1]
	for _, g := range globs[1:] {
		if g != out[len(out)-1] {
			out = append(out, g)
		}
	}
	return out, false, ""
}

const (
	digestChars = "@sha256:0123456789abcdef"
	tagChars    = digestChars + "ABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz_.-"
)

func onlyChars(s, chars string) bool {
	for _, r := range s {
		if !strings.ContainsRune(chars, r) {
			return false
		}
	}
	return true
}

func mergeToks(toks []tok) []tok {
	var out []tok
	for _, t := range toks {
		if t.kind == tLit && t.s == "" {
			continue
		}
		if n := len(out); n > 0 {
			prev := &out[n-1]
			switch {
			case t.kind == tLit && prev.kind == tLit:
				prev.s += t.s
				continue
			case t.kind != tLit && prev.kind != tLit:
				if t.kind == tAnyStar {
					prev.kind = tAnyStar
				}
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// splitSegments splits tokens on the "/" of literals.
func splitSegments(toks []tok) [][]tok {
	segs := [][]tok{{}}
	for _, t := range toks {
		if t.kind != tLit {
			segs[len(segs)-1] = append(segs[len(segs)-1], t)
			continue
		}
		parts := strings.Split(t.s, "/")
		for i, p := range parts {
			if i > 0 {
				segs = append(segs, []tok{})
			}
			if p != "" {
				segs[len(segs)-1] = append(segs[len(segs)-1], tok{tLit, p})
			}
		}
	}
	return segs
}

// expand replaces every anyStar by its two readings: within one segment
// ("X*Y"), or across segments ("X*/**/*Y").
func expand(rest [][]tok) ([][]seg, bool) {
	var out [][]seg
	var walk func(prefix []seg, rest [][]tok) bool
	walk = func(prefix []seg, rest [][]tok) bool {
		if len(out) > maxAlternatives {
			return false
		}
		if len(rest) == 0 {
			out = append(out, append([]seg(nil), prefix...))
			return true
		}
		cur := rest[0]
		j := -1
		for i, t := range cur {
			if t.kind == tAnyStar {
				j = i
				break
			}
		}
		if j < 0 {
			return walk(append(prefix, seg{toks: cur}), rest[1:])
		}
		x, y := cur[:j], cur[j+1:]
		within := mergeToks(append(append(append([]tok(nil), x...), tok{kind: tStar}), y...))
		if !walk(prefix, append([][]tok{within}, rest[1:]...)) {
			return false
		}
		left := mergeToks(append(append([]tok(nil), x...), tok{kind: tStar}))
		right := mergeToks(append([]tok{{kind: tStar}}, y...))
		p := append(append([]seg(nil), prefix...), seg{toks: left}, seg{dstar: true})
		return walk(p, append([][]tok{right}, rest[1:]...))
	}
	ok := walk(nil, rest)
	return out, ok && len(out) <= maxAlternatives
}

func renderToks(toks []tok) string {
	var b strings.Builder
	for _, t := range toks {
		if t.kind == tLit {
			b.WriteString(t.s)
		} else {
			b.WriteByte('*')
		}
	}
	return b.String()
}

// renderSegs renders path segments as a signet glob path; "" when a segment
// can match no repository path (repository paths are lower case).
func renderSegs(segs []seg) string {
	var parts []string
	for _, s := range segs {
		if s.dstar {
			if len(parts) > 0 && parts[len(parts)-1] == "**" {
				continue
			}
			parts = append(parts, "**")
			continue
		}
		r := renderToks(s.toks)
		if r != strings.ToLower(r) {
			return ""
		}
		parts = append(parts, r)
	}
	return strings.Join(parts, "/")
}

func isDockerHubName(h string) bool {
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return true
	}
	return false
}

// translateHost returns the signet host patterns for the first segment.
func translateHost(toks []tok, d dialect) (hosts []string, dead bool, reason string) {
	h := strings.ToLower(renderToks(toks))
	if !strings.Contains(h, "*") {
		switch {
		case h == d.dockerHost:
			return []string{"docker.io"}, false, ""
		case isDockerHubName(h):
			return nil, true, "" // the source never sees this name for Docker Hub
		case !validHost(h):
			return nil, true, "" // not a registry: the source's names always start with one
		}
		return []string{h}, false, ""
	}
	if strings.ContainsAny(h, ".:") {
		hosts = []string{h}
	} else {
		// signet reads a first segment as a registry when it holds "." or
		// ":" (or is localhost): every registry name does.
		for i := 0; i < len(h); i++ {
			if h[i] == '*' {
				hosts = append(hosts, h[:i]+"*.*"+h[i+1:], h[:i]+"*:*"+h[i+1:])
			}
		}
		if globMatch(h, "localhost") {
			hosts = append(hosts, "localhost")
		}
		if len(hosts) > maxAlternatives {
			return nil, false, "too many wildcards in its registry name to translate exactly"
		}
	}
	src := globMatch(h, d.dockerHost)
	sig := false
	for _, c := range hosts {
		sig = sig || globMatch(c, "docker.io")
	}
	switch {
	case src && !sig:
		hosts = append(hosts, "docker.io")
	case !src && sig:
		return nil, false, "its registry wildcard would select Docker Hub (docker.io) in signet but not in the source, which names Docker Hub " + d.dockerHost
	}
	return hosts, false, ""
}

func validHost(h string) bool {
	return h == "localhost" || strings.ContainsAny(h, ".:")
}

// globMatch matches s against a pattern where "*" matches any run of
// characters.
func globMatch(pat, s string) bool {
	ok, _ := globMatchSteps(pat, s)
	return ok
}

// globMatchSteps is globMatch, also counting its steps: at most
// (len(s)+1)·(len(pat)+1)+len(pat) (policy.MatchWildcard).
func globMatchSteps(pat, s string) (bool, int) {
	return policy.MatchWildcard(pat, s)
}

// segsMatch matches path segments against glob segments ("**" any number
// of whole segments, "*" within one), as signet does.
func segsMatch(pat []seg, path []string) bool {
	ok, _ := segsMatchSteps(pat, path)
	return ok
}

// segsMatchSteps is segsMatch, also counting its steps: globMatchSteps one
// level up, "**" as the star, so each (pattern segment, path segment) pair
// is compared at most once.
func segsMatchSteps(pat []seg, path []string) (bool, int) {
	steps := 0
	p, i := 0, 0
	star, next := -1, 0
	for i < len(path) {
		steps++
		if p < len(pat) && pat[p].dstar {
			star, next = p, i
			p++
			continue
		}
		if p < len(pat) {
			ok, n := globMatchSteps(renderToks(pat[p].toks), path[i])
			steps += n
			if ok {
				p++
				i++
				continue
			}
		}
		if star < 0 {
			return false, steps
		}
		next++
		p, i = star+1, next
	}
	for p < len(pat) && pat[p].dstar {
		steps++
		p++
	}
	return p == len(pat), steps
}

// hubConsistent reports whether the translated Docker Hub paths select an
// official image alike under both names, docker.io/NAME (the source's) and
// docker.io/library/NAME (signet's), for every NAME the pattern can tell
// apart: names built from its literals, and ordinary ones.
func hubConsistent(rests [][]seg, toks []tok) bool {
	probes := []string{"nginx", "library", "x"}
	for _, t := range toks {
		if t.kind != tLit {
			continue
		}
		for _, p := range strings.Split(t.s, "/") {
			if p != "" {
				probes = append(probes, p, p+"x", "x"+p)
			}
		}
	}
	any := func(path []string) bool {
		for _, r := range rests {
			if segsMatch(r, path) {
				return true
			}
		}
		return false
	}
	for _, n := range probes {
		if any([]string{n}) != any([]string{"library", n}) {
			return false
		}
	}
	return true
}

// simplify merges "P/*" and "P/*/**/*" (one segment, or two and more) into
// "P/*/**".
func simplify(globs []string) []string {
	set := map[string]bool{}
	for _, g := range globs {
		set[g] = true
	}
	merged, drop := map[string]bool{}, map[string]bool{}
	for _, g := range globs {
		if strings.HasSuffix(g, "/*") && set[g+"/**/*"] {
			merged[g], drop[g+"/**/*"] = true, true
		}
	}
	var out []string
	for _, g := range globs {
		switch {
		case drop[g]:
		case merged[g]:
			out = append(out, g+"/**")
		default:
			out = append(out, g)
		}
	}
	return out
}

// starTokens reads a pattern where "*" matches anything, "/" included.
func starTokens(s string) []tok {
	var toks []tok
	for i, part := range strings.Split(s, "*") {
		if i > 0 {
			toks = append(toks, tok{kind: tAnyStar})
		}
		toks = append(toks, tok{tLit, part})
	}
	return toks
}
