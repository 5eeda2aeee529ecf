package verify

import (
	"fmt"
	"regexp"

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

// wholeString compiles expr so that it matches only the entire input.
func wholeString(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %w", expr, err)
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
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
