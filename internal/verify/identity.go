package verify

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"unicode/utf8"

	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
)

// Identity is an accepted keyless signer: an OIDC issuer and a certificate
// subject (SAN), each given exactly or as a regular expression. Regular
// expressions must match the whole value: "https://github.com/acme/.+" does
// not accept "https://evil.example/https://github.com/acme/x".
type Identity struct {
	Issuer        string
	IssuerRegExp  string
	Subject       string
	SubjectRegExp string
}

func (id Identity) String() string {
	iss, sub := id.Issuer, id.Subject
	if id.IssuerRegExp != "" {
		iss = "~" + id.IssuerRegExp
	}
	if id.SubjectRegExp != "" {
		sub = "~" + id.SubjectRegExp
	}
	return fmt.Sprintf("issuer %s, subject %s", iss, sub)
}

// identityMatcher is a compiled Identity.
type identityMatcher struct {
	id        Identity
	issuerRE  *regexp.Regexp
	subjectRE *regexp.Regexp
}

func compileIdentity(id Identity) (identityMatcher, error) {
	m := identityMatcher{id: id}
	switch {
	case id.Issuer != "" && id.IssuerRegExp != "":
		return m, fmt.Errorf("issuer and issuerRegExp are both set: give one")
	case id.Issuer == "" && id.IssuerRegExp == "":
		return m, fmt.Errorf("no issuer: set issuer or issuerRegExp")
	case id.Subject != "" && id.SubjectRegExp != "":
		return m, fmt.Errorf("subject and subjectRegExp are both set: give one")
	case id.Subject == "" && id.SubjectRegExp == "":
		return m, fmt.Errorf("no subject: set subject or subjectRegExp")
	}
	var err error
	if id.IssuerRegExp != "" {
		if m.issuerRE, err = wholeString(id.IssuerRegExp); err != nil {
			return m, fmt.Errorf("issuerRegExp: %w", err)
		}
	}
	if id.SubjectRegExp != "" {
		if m.subjectRE, err = wholeString(id.SubjectRegExp); err != nil {
			return m, fmt.Errorf("subjectRegExp: %w", err)
		}
	}
	return m, nil
}

// Bounds of identity regular expressions. Go's regular expressions match
// in time linear in the input times the size of the compiled program, and a
// counted repetition multiplies that size: nine "\pL{1000}" are 9,000
// instructions and take a second to compile. Policies are compiled on every
// change of any of them, and an ImagePolicy is a tenant's to write, so both
// the text and the program are bounded.
const (
	maxRegexpLength = 1024
	maxRegexpInsts  = 2048
)

// wholeString compiles expr so that it matches only the entire input.
func wholeString(expr string) (*regexp.Regexp, error) {
	if n := utf8.RuneCountInString(expr); n > maxRegexpLength {
		return nil, fmt.Errorf("has %d characters, over the limit of %d", n, maxRegexpLength)
	}
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	tooLarge := "a counted repetition such as {100} repeats what it applies to: write a shorter count, or + or *"
	// Estimate first, so that a program far too large is never built.
	if progSize(re, 2*maxRegexpInsts) > 2*maxRegexpInsts {
		return nil, fmt.Errorf("compiles to more than %d instructions, over the limit of %d (%s)", 2*maxRegexpInsts, maxRegexpInsts, tooLarge)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	if n := len(prog.Inst); n > maxRegexpInsts {
		return nil, fmt.Errorf("compiles to %d instructions, over the limit of %d (%s)", n, maxRegexpInsts, tooLarge)
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

// progSize is an upper bound of the number of instructions re compiles to,
// found without expanding counted repetitions (Go's parser keeps their
// counts under 1000); any result over limit means "over limit".
func progSize(re *syntax.Regexp, limit int) int {
	sub := 0
	for _, s := range re.Sub {
		sub = min(sub+progSize(s, limit), limit+1)
	}
	var n int
	switch re.Op {
	case syntax.OpLiteral:
		n = len(re.Rune)
	case syntax.OpConcat:
		n = sub
	case syntax.OpAlternate:
		n = sub + len(re.Sub) // a split for each alternative
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		n = sub + 2
	case syntax.OpRepeat:
		// x{n,m} is n copies of x and m-n optional ones (a split each); x{n,}
		// is n copies and a loop.
		if re.Max < 0 {
			n = (re.Min+1)*sub + 1
		} else {
			n = re.Min*sub + (re.Max-re.Min)*(sub+1) + 1
		}
	default:
		n = 1 // one instruction: a character class, any character, an assertion
	}
	return min(n, limit+1)
}

func (m identityMatcher) matches(s certificate.Summary) bool {
	if m.issuerRE != nil {
		if !m.issuerRE.MatchString(s.Issuer) {
			return false
		}
	} else if s.Issuer != m.id.Issuer {
		return false
	}
	if m.subjectRE != nil {
		return m.subjectRE.MatchString(s.SubjectAlternativeName)
	}
	return s.SubjectAlternativeName == m.id.Subject
}

// CheckIdentity reports whether id is complete and its regular expressions
// compile.
func CheckIdentity(id Identity) error {
	_, err := compileIdentity(id)
	return err
}
