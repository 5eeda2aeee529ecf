package verify

import (
	"regexp/syntax"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestIdentityRegexpBounds: identity regular expressions are bounded in
// length and in the size of their compiled program (matching costs the
// input's length times that size); the error names the field and the limit,
// and does not repeat an over-long expression.
func TestIdentityRegexpBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   Identity
		want string // "" when valid
	}{
		{"ordinary", Identity{Issuer: "https://token.actions.githubusercontent.com", SubjectRegExp: `https://github\.com/acme/[a-z0-9-]{1,100}/\.github/workflows/.+@refs/tags/v.*`}, ""},
		{"literal at the length limit", Identity{IssuerRegExp: strings.Repeat("a", maxRegexpLength), Subject: "s"}, ""},
		{"one character over", Identity{IssuerRegExp: strings.Repeat("a", maxRegexpLength+1), Subject: "s"},
			"issuerRegExp: has 1025 characters, over the limit of 1024"},
		{"counted repetition within the limit", Identity{Issuer: "i", SubjectRegExp: `\pL{1000}`}, ""},
		{"host names within the limit", Identity{Issuer: "i", SubjectRegExp: `https://[a-z0-9]{1,63}(?:\.[a-z0-9]{1,63}){0,10}/.*`}, ""},
		{"counted repetitions over the limit", Identity{Issuer: "i", SubjectRegExp: `\pL{1000}-\pL{1000}-\pL{1000}`},
			"subjectRegExp: compiles to 3004 instructions, over the limit of 2048 (a counted repetition such as {100} repeats what it applies to: write a shorter count, or + or *)"},
		{"far over, not built", Identity{Issuer: "i", SubjectRegExp: strings.Repeat(`\pL{1000}`, 100)},
			"subjectRegExp: compiles to more than 4096 instructions, over the limit of 2048 (a counted repetition such as {100} repeats what it applies to: write a shorter count, or + or *)"},
		{"nested counts", Identity{Issuer: "i", SubjectRegExp: strings.Repeat(`(?:(?:[a-z]{10}){10}){10}`, 3)},
			"subjectRegExp: compiles to 3002 instructions, over the limit of 2048 (a counted repetition such as {100} repeats what it applies to: write a shorter count, or + or *)"},
		{"invalid", Identity{Issuer: "i", SubjectRegExp: "(unclosed"},
			"subjectRegExp: invalid regular expression \"(unclosed\": error parsing regexp: missing closing ): `(unclosed`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := CheckIdentity(tc.id); err != nil {
				got = err.Error()
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("error (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProgSize: the estimate that guards compilation is never below the
// size of the compiled program.
func TestProgSize(t *testing.T) {
	for _, expr := range []string{
		`a`, `abc`, `a|bc|def`, `(a)(b)`, `a*b+c?`, `a{3}`, `a{3,}`, `a{0,}`, `a{2,5}`, `(?:ab){2,5}`,
		`(?:(?:[a-z]{10}){10}){10}`, `\pL{1000}`, `^https://github\.com/[^/]+/.*$`, `(?i)abc`, `\b\B.`, `(?:\b\b){500}`,
		`x{0}`, `(?:a|b)*`, `(?:ab|cd){0,7}`, `()`, `(?:)`, `a{1000}b{1000}`, `(?:a+){5,9}`,
	} {
		re, err := syntax.Parse(expr, syntax.Perl)
		if err != nil {
			t.Fatal(err)
		}
		prog, err := syntax.Compile(re.Simplify())
		if err != nil {
			t.Fatal(err)
		}
		if est := progSize(re, 1<<20) + 2; est < len(prog.Inst) {
			t.Errorf("%s: estimated %d instructions, compiles to %d", expr, est, len(prog.Inst))
		}
	}
}
