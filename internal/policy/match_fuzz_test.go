package policy

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// globRegexp is the reference matcher: the glob translated into an anchored
// RE2 expression over "host/seg/seg", "*" as [^/]* and a "**" segment as
// any number of whole segments.
func globRegexp(host string, segs []string) (*regexp.Regexp, error) {
	segment := func(s string) string {
		parts := strings.Split(s, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		return strings.Join(parts, `[^/]*`)
	}
	var b strings.Builder
	b.WriteString(`^` + segment(host))
	for _, s := range segs {
		if s == "**" {
			b.WriteString(`(?:/[^/]*)*`)
			continue
		}
		b.WriteString(`/` + segment(s))
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}

// FuzzGlobMatch: the linear matcher agrees with the regular expression a
// glob stands for, on the segments as given and on compiled patterns, and
// stays within its linear bound.
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"registry.example.org/team/*", "registry.example.org/team/app"},
		{"registry.example.org/team/**", "registry.example.org/team"},
		{"registry.example.org/**/app", "registry.example.org/x/y/app"},
		{"*.example.org/app-*", "a.example.org/app-1"},
		{"registry.example.org/**/*a*/**/b", "registry.example.org/a/ba/b/b"},
		{"registry.example.org/*a*a*a*a*b", "registry.example.org/aaaaaaaaaaaaaaaaaaab"},
		{"registry.example.org/**/**/**/x", "registry.example.org/a/a/a/a/y"},
		{"nginx", "docker.io/library/nginx"},
		{"*/**", "h"},
		{"**", "a/b"},
		{"v1.*", "v1.2.3"},
		{"*-rc*", "v2-rc1"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, glob, name string) {
		if !utf8.ValidString(glob) || !utf8.ValidString(name) {
			// Regular expressions work on runes, the matcher on bytes; they
			// agree on valid UTF-8, and repository names are ASCII.
			return
		}
		nparts := strings.Split(name, "/")
		host, segs := nparts[0], nparts[1:]
		check := func(phost string, psegs []string, p *pattern) {
			re, err := globRegexp(phost, psegs)
			if err != nil {
				t.Fatalf("reference for %q: %v", glob, err)
			}
			got, steps := p.match(host, segs)
			if want := re.MatchString(name); got != want {
				t.Fatalf("glob %q (host %q, segments %q) on %q: matched %v, the regular expression %s says %v", glob, phost, psegs, name, got, re, want)
			}
			if bound := linearBound(phost, psegs, host, segs); steps > bound {
				t.Fatalf("glob %q on %q: %d steps, over the linear bound %d", glob, name, steps, bound)
			}
		}
		// The matcher on the segments as given, whatever they hold.
		gparts := strings.Split(glob, "/")
		check(gparts[0], gparts[1:], &pattern{glob: true, host: gparts[0], segs: gparts[1:]})
		// And on the pattern compilePattern makes of it.
		if p, err := compilePattern(glob, true); err == nil && !p.all {
			check(p.host, p.segs, p)
		}
		// The glob as a tag pattern, on the name as a tag: "*" is any run
		// of characters, checked after the repository matched (a tag holds
		// no "/", which the reference's "*" does not match).
		if tag, err := compileTag(glob); err == nil && tag != "" && name != anyTag && !strings.Contains(name, "/") {
			re, err := globRegexp(tag, nil)
			if err != nil {
				t.Fatalf("reference for tag %q: %v", tag, err)
			}
			got, steps := (&pattern{tag: tag}).matchTag(name)
			if want := re.MatchString(name); got != want {
				t.Fatalf("tag pattern %q on %q: matched %v, the regular expression %s says %v", tag, name, got, re, want)
			}
			if bound := linearBound(tag, nil, name, nil); steps > bound {
				t.Fatalf("tag pattern %q on %q: %d steps, over the linear bound %d", tag, name, steps, bound)
			}
		}
	})
}
