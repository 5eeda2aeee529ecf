package policy

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxPatternLength bounds a glob or prefix, as the CRD's maxLength does for
// the objects the API server admits (policy files read by the CLI or by
// signet serve --policies pass no CRD validation). Matching costs at most
// a few steps per (pattern character, name character) pair, and names have
// at most 255 characters.
const maxPatternLength = 512

// maxTagPatternLength bounds a tag pattern, as the CRD's maxLength does: a
// tag has at most 128 characters.
const maxTagPatternLength = 128

// tooLongError is a pattern over its limit of characters.
type tooLongError struct{ length, limit int }

func (e *tooLongError) Error() string {
	return fmt.Sprintf("has %d characters, over the limit of %d", e.length, e.limit)
}

// pattern is a compiled image matcher: a glob or a prefix over the
// normalized repository name ("registry/path").
type pattern struct {
	text   string // as written
	glob   bool
	all    bool     // "**": every image
	host   string   // normalized host, or a host glob
	segs   []string // path segments (glob segments may hold * and **)
	prefix bool
	// tag is the tag pattern ("*" any run of characters); "" selects
	// every tag. It is checked after the repository matches (matchesTag).
	tag string
}

// anyTag is what a reference given by digest alone offers a tag pattern: no
// tag to compare, so every tag pattern selects it.
const anyTag = ""

// tagOf is the tag a reference offers tag patterns: the tag it names, latest
// when it names neither tag nor digest (what the runtime pulls), anyTag
// when it names a digest alone.
func tagOf(tag, digest string) string {
	switch {
	case tag != "":
		return tag
	case digest != "":
		return anyTag
	}
	return "latest"
}

// matchesTag reports whether the pattern's tag selects tag (from tagOf):
// always without a tag pattern or for anyTag, else a linear wildcard match
// (globSegment) of at most 129·129+128 steps.
func (p *pattern) matchesTag(tag string) bool {
	ok, _ := p.matchTag(tag)
	return ok
}

// matchTag is matchesTag, also counting the steps (for the linear bound).
func (p *pattern) matchTag(tag string) (bool, int) {
	if p.tag == "" || tag == anyTag {
		return true, 0
	}
	var w work
	ok := globSegment(p.tag, tag, &w)
	return ok, w.steps
}

// compileTag checks a tag pattern: the characters of a tag and "*", at most
// maxTagPatternLength of them. "*" alone is every tag ("").
func compileTag(text string) (string, error) {
	if n := utf8.RuneCountInString(text); n > maxTagPatternLength {
		return "", &tooLongError{n, maxTagPatternLength}
	}
	if text == "" {
		return "", errors.New("empty tag: leave tag out to select every tag")
	}
	for _, c := range text {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '*') {
			return "", fmt.Errorf("character %q cannot appear in a tag", c)
		}
	}
	if strings.Trim(text, "*") == "" {
		return "", nil
	}
	return text, nil
}

// literalPrefix is the host and the leading path segments without
// wildcards: where the pattern sits in the index.
func (p *pattern) literalPrefix() (host string, segs []string, ok bool) {
	if p.all || strings.Contains(p.host, "*") {
		return "", nil, false
	}
	for i, s := range p.segs {
		if strings.Contains(s, "*") {
			return p.host, p.segs[:i], true
		}
	}
	return p.host, p.segs, true
}

// CheckGlob reports whether text is a glob signet accepts in
// ImageMatcher.Glob, with the reason when it is not.
func CheckGlob(text string) error {
	_, err := compilePatterns(text, true)
	return err
}

// compilePatterns parses a glob or prefix into the patterns it stands for:
// one, except for a prefix naming a single Docker Hub path segment
// ("docker.io/bitnami", "nginx"), which selects both the official image
// below it (docker.io/library/nginx) and the organization of that name
// (docker.io/bitnami/redis): selecting more is the safe reading.
func compilePatterns(text string, glob bool) ([]*pattern, error) {
	if n := utf8.RuneCountInString(text); n > maxPatternLength {
		return nil, &tooLongError{n, maxPatternLength}
	}
	p, err := compilePattern(text, glob)
	if err != nil {
		return nil, err
	}
	if p.prefix && p.host == "docker.io" && len(p.segs) == 2 && p.segs[0] == "library" && !strings.Contains(text, "library/") {
		org := &pattern{text: text, prefix: true, host: p.host, segs: []string{p.segs[1]}}
		return []*pattern{p, org}, nil
	}
	return []*pattern{p}, nil
}

// compilePattern parses a glob or prefix. Patterns name repositories, never
// tags or digests, and are normalized like image references: "nginx" is
// docker.io/library/nginx, and hosts are spelled as in references (see
// patternHost).
func compilePattern(text string, glob bool) (*pattern, error) {
	p := &pattern{text: text, glob: glob, prefix: !glob}
	var err error
	if text == "" {
		return nil, errors.New("empty pattern")
	}
	if strings.TrimSpace(text) != text {
		return nil, errors.New("leading or trailing space")
	}
	if glob && text == "**" {
		p.all = true
		return p, nil
	}
	if strings.Contains(text, "@") {
		return nil, errors.New("patterns match repositories: remove the digest")
	}
	if strings.HasSuffix(text, "/") {
		return nil, errors.New("a trailing / matches nothing: write team/** (glob) or team (prefix)")
	}
	parts := strings.Split(text, "/")
	host := ""
	if len(parts) == 1 && (strings.ContainsAny(parts[0], ".:") || strings.EqualFold(parts[0], "localhost")) {
		if glob {
			return nil, fmt.Errorf("names a registry, not a repository: write %s/** to select every image in it", text)
		}
		// A prefix may be a whole registry.
		h, err := patternHost(parts[0])
		if err != nil {
			return nil, err
		}
		p.host = h
		return p, nil
	}
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || strings.EqualFold(parts[0], "localhost") || (glob && strings.Contains(parts[0], "*") && strings.Contains(parts[0], "."))) {
		host, parts = parts[0], parts[1:]
	}
	for i, s := range parts {
		if s == "" {
			return nil, errors.New("empty path segment")
		}
		if strings.Contains(s, ":") {
			return nil, fmt.Errorf("patterns match repositories: write the tag %q in tag", s[strings.Index(s, ":")+1:])
		}
		if !glob && strings.Contains(s, "*") {
			return nil, errors.New("a prefix has no wildcards: use glob")
		}
		if glob && strings.Contains(s, "**") && s != "**" {
			return nil, fmt.Errorf("segment %q: ** must be a whole path segment", s)
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '*') {
				if c >= 'A' && c <= 'Z' {
					return nil, fmt.Errorf("segment %q: repository paths are lower case; no image can match", s)
				}
				return nil, fmt.Errorf("segment %q: character %q cannot appear in a repository path", s, c)
			}
		}
		parts[i] = s
	}
	if host == "" {
		host = "docker.io"
	} else if host, err = patternHost(host); err != nil {
		return nil, err
	}
	if host == "docker.io" && len(parts) == 1 && !strings.Contains(parts[0], "*") {
		// "docker.io/nginx" is docker.io/library/nginx.
		parts = append([]string{"library"}, parts...)
	}
	p.host = host
	p.segs = parts
	return p, nil
}

// matches reports whether the normalized repository (host + path segments)
// is selected by the pattern.
func (p *pattern) matches(host string, segs []string) bool {
	ok, _ := p.match(host, segs)
	return ok
}

// match is matches, also counting the work done (steps), so that tests can
// hold the matcher to its linear bound.
func (p *pattern) match(host string, segs []string) (bool, int) {
	w := &work{}
	if p.all {
		return true, 0
	}
	if !globSegment(p.host, host, w) {
		return false, w.steps
	}
	if p.prefix {
		if len(segs) < len(p.segs) {
			return false, w.steps
		}
		for i, s := range p.segs {
			w.steps++
			if segs[i] != s {
				return false, w.steps
			}
		}
		return true, w.steps
	}
	return globPath(p.segs, segs, w), w.steps
}

// work counts the steps of one match: comparisons of a pattern character
// with a name character, and of a pattern segment with a name segment.
type work struct{ steps int }

// globPath matches path segments where "**" matches any number (including
// none) of whole segments, and every other pattern segment matches exactly
// one name segment (globSegment).
//
// It is globSegment's algorithm one level up, with "**" as the star and a
// segment glob as the character: each (pattern segment, name segment) pair
// is compared at most once, so the whole match costs at most
// O(len(pattern)·len(name)) character steps, whatever the wildcards.
func globPath(pat, segs []string, w *work) bool {
	p, i := 0, 0
	star, next := -1, 0 // the last "**" seen, and the first segment it has not absorbed
	for i < len(segs) {
		w.steps++
		switch {
		case p < len(pat) && pat[p] == "**":
			star, next = p, i
			p++
		case p < len(pat) && globSegment(pat[p], segs[i], w):
			p++
			i++
		case star >= 0:
			// What follows the last "**" failed here: let it absorb one
			// more segment and try again from there. Nothing before it
			// needs another try: a "**" absorbs any run of segments, so
			// the earliest place its prefix matched is as good as any.
			next++
			p, i = star+1, next
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == "**" {
		w.steps++
		p++ // a trailing "**" matches zero segments
	}
	return p == len(pat)
}

// MatchWildcard matches s against pat, where "*" matches any run of
// characters, in linear time (globSegment), and says how many steps it
// took: signet's one wildcard matcher, which policy convert uses too.
func MatchWildcard(pat, s string) (bool, int) {
	var w work
	ok := globSegment(pat, s, &w)
	return ok, w.steps
}

// globSegment matches one segment (or a host) where "*" matches any run of
// characters within it, in at most (len(s)+1)·(len(pat)+1)+len(pat) steps:
// the two-pointer algorithm that only ever backtracks to the last star
// (the classic linear wildcard match, not a recursion over every star).
func globSegment(pat, s string, w *work) bool {
	p, i := 0, 0
	star, next := -1, 0 // the last "*" seen, and the first character it has not absorbed
	for i < len(s) {
		w.steps++
		switch {
		case p < len(pat) && pat[p] == '*':
			star, next = p, i
			p++
		case p < len(pat) && pat[p] == s[i]:
			p++
			i++
		case star >= 0:
			next++
			p, i = star+1, next
		default:
			return false
		}
	}
	for p < len(pat) && pat[p] == '*' {
		w.steps++
		p++
	}
	return p == len(pat)
}

// index finds the patterns that can match a repository without trying
// every pattern: each pattern sits at the trie node of its literal host and
// leading literal segments; a lookup walks the repository's path and tries
// only the patterns met on the way (plus the few with a wildcard host).
type index struct {
	hosts    map[string]*node
	wildcard []entry // patterns whose host has a wildcard, and "**"
}

type node struct {
	children map[string]*node
	here     []entry
}

type entry struct {
	p      *pattern
	policy int
}

func newIndex() *index { return &index{hosts: map[string]*node{}} }

func (ix *index) add(p *pattern, policy int) {
	host, segs, ok := p.literalPrefix()
	if !ok {
		ix.wildcard = append(ix.wildcard, entry{p, policy})
		return
	}
	n := ix.hosts[host]
	if n == nil {
		n = &node{}
		ix.hosts[host] = n
	}
	for _, s := range segs {
		if n.children == nil {
			n.children = map[string]*node{}
		}
		c := n.children[s]
		if c == nil {
			c = &node{}
			n.children[s] = c
		}
		n = c
	}
	n.here = append(n.here, entry{p, policy})
}

// lookup calls f with the index of every policy with a pattern matching the
// repository; a policy may be reported more than once.
func (ix *index) lookup(host string, segs []string, f func(policy int)) {
	ix.lookupFor(host, segs, anyTag, nil, f)
}

// lookupFor is lookup for the policies want accepts (nil: all), asked before
// any of their patterns is matched, so a policy that cannot apply costs no
// matching, and for patterns whose tag selects tag (tagOf; anyTag: every
// pattern of the repository). It returns the number of patterns matched.
func (ix *index) lookupFor(host string, segs []string, tag string, want func(policy int) bool, f func(policy int)) (tried int) {
	try := func(es []entry) {
		for _, e := range es {
			if want != nil && !want(e.policy) {
				continue
			}
			tried++
			if e.p.matches(host, segs) && e.p.matchesTag(tag) {
				f(e.policy)
			}
		}
	}
	try(ix.wildcard)
	n := ix.hosts[host]
	for i := 0; n != nil; i++ {
		try(n.here)
		if i == len(segs) {
			break
		}
		n = n.children[segs[i]]
	}
	return tried
}
