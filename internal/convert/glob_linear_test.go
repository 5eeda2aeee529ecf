package convert

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGlobMatchLinear: the translator's own matchers (registry wildcards
// against docker.io, translated paths against probe names) take at most a
// few steps per (pattern character, name character) pair, however many
// stars the source pattern has.
func TestGlobMatchLinear(t *testing.T) {
	const stepsPerCell = 4
	stars := strings.Repeat("*a", 12) + "*b"
	for _, tc := range []struct {
		name string
		pat  string
		s    string
	}{
		{"stars against docker.io", stars, "docker.io"},
		{"stars against a long name", stars, strings.Repeat("a", 4096)},
		{"long literal after a star", "*" + strings.Repeat("a", 64) + "b", strings.Repeat("a", 4096)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, steps := globMatchSteps(tc.pat, tc.s)
			if bound := stepsPerCell * (len(tc.pat) + 1) * (len(tc.s) + 1); steps > bound {
				t.Errorf("%d steps, over the linear bound %d", steps, bound)
			}
		})
	}
	// Segments: many "**" between segment stars, against a long path.
	var pat []seg
	plen := 0
	for range 16 {
		pat = append(pat, seg{dstar: true}, seg{toks: []tok{{kind: tStar}, {tLit, "a"}, {kind: tStar}, {tLit, "a"}, {kind: tStar}}})
		plen += len("**/*a*a*/")
	}
	pat = append(pat, seg{toks: []tok{{tLit, "b"}}})
	plen++
	path := strings.Split(strings.Repeat("aaa/", 1024)+"c", "/")
	ok, steps := segsMatchSteps(pat, path)
	if ok {
		t.Error("matched, want no match")
	}
	if bound := stepsPerCell * (plen + 1) * (len(strings.Join(path, "/")) + 1); steps > bound {
		t.Errorf("segments: %d steps, over the linear bound %d", steps, bound)
	}
}

// TestTranslateBounds: source patterns that would cost the translator (or
// signet) more than their length are refused with a reason.
func TestTranslateBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		toks []tok
		d    dialect
		want string
	}{
		{"longer than a signet glob", starTokens("registry.example.org/" + strings.Repeat("a", 600) + "*"), kyvernoDialect,
			"it has 622 characters, over the limit of 512 of a signet pattern"},
		// Each "*" of a registry name without "." or ":" becomes two
		// registry globs (*.* and *:*): 25 stars would be 50 globs, for
		// every path alternative.
		{"stars in a registry name", pcTokens(strings.Repeat("*a", 12) + "*b/app**"), pcDialect,
			"too many wildcards in its registry name to translate exactly"},
		{"as many stars as alternatives", pcTokens(strings.Repeat("*a", 7) + "*b/app**"), pcDialect, ""},
		{"many stars, one segment each", starTokens(strings.Repeat("*a", 12) + "*b/app*"), kyvernoDialect,
			`too many "**"-like wildcards to translate exactly`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			globs, dead, reason := translate(tc.toks, tc.d)
			if diff := cmp.Diff(tc.want, reason); diff != "" {
				t.Errorf("reason (-want +got):\n%s\n(globs %q, dead %v)", diff, globs, dead)
			}
		})
	}
}
