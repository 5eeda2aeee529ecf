package policy

import (
	"errors"
	"fmt"
	"strings"
)

// pattern is a compiled image matcher: a glob or a prefix over the
// normalized repository name ("registry/path").
type pattern struct {
	text   string // as written
	glob   bool
	all    bool     // "**": every image
	host   string   // normalized host, or a host glob
	segs   []string // path segments (glob segments may hold * and **)
	prefix bool
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

// compilePatterns parses a glob or prefix into the patterns it stands for:
// one, except for a prefix naming a single Docker Hub path segment
// ("docker.io/bitnami", "nginx"), which selects both the official image
// below it (docker.io/library/nginx) and the organization of that name
// (docker.io/bitnami/redis): selecting more is the safe reading.
func compilePatterns(text string, glob bool) ([]*pattern, error) {
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
			return nil, fmt.Errorf("patterns match repositories, not tags: remove %q", s[strings.Index(s, ":"):])
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
	if p.all {
		return true
	}
	if !globSegment(p.host, host) {
		return false
	}
	if p.prefix {
		if len(segs) < len(p.segs) {
			return false
		}
		for i, s := range p.segs {
			if segs[i] != s {
				return false
			}
		}
		return true
	}
	return globPath(p.segs, segs)
}

// globPath matches path segments where "**" matches any number (including
// none) of whole segments.
func globPath(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true // a trailing ** matches zero or more segments
			}
			for i := 0; i <= len(segs); i++ {
				if globPath(rest, segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || !globSegment(pat[0], segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// globSegment matches one segment where "*" matches any run of characters
// within it.
func globSegment(pat, s string) bool {
	star := strings.IndexByte(pat, '*')
	if star < 0 {
		return pat == s
	}
	if !strings.HasPrefix(s, pat[:star]) {
		return false
	}
	s = s[star:]
	rest := pat[star+1:]
	for i := 0; i <= len(s); i++ {
		if globSegment(rest, s[i:]) {
			return true
		}
	}
	return false
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
	try := func(es []entry) {
		for _, e := range es {
			if e.p.matches(host, segs) {
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
}
