package verify

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

// Certificate trusts signatures whose signing certificate chains, through
// Intermediates, to one of Roots (an enterprise PKI: cosign sign
// --certificate, no Fulcio), issued to one of Identities. The chain is
// checked as sigstore-go checks Fulcio's: the code-signing extended key
// usage, every certificate valid at the time of signing (a verified log
// entry or RFC 3161 timestamp, else the current time).
type Certificate struct {
	Roots []*x509.Certificate
	// Intermediates may stand between a root and a signing certificate;
	// they are never trusted alone. A signature's own chain is not used.
	Intermediates []*x509.Certificate
	Identities    []CertIdentity
}

// CertIdentity is an accepted signing certificate: every field given must
// match, at least one is given. Regular expressions match the whole value.
type CertIdentity struct {
	// Email and EmailRegExp: one of the certificate's email SANs.
	Email, EmailRegExp string
	// URI and URIRegExp: one of its URI SANs.
	URI, URIRegExp string
	// Hostname: a DNS SAN that matches it as TLS matches host names
	// (x509.Certificate.VerifyHostname, wildcards included).
	Hostname string
	// Subject and SubjectRegExp: its subject distinguished name as RFC 2253
	// writes it ("CN=release,O=Example Corp,C=US").
	Subject, SubjectRegExp string
}

func (id CertIdentity) String() string {
	var parts []string
	add := func(name, exact, re string) {
		switch {
		case exact != "":
			parts = append(parts, name+" "+exact)
		case re != "":
			parts = append(parts, name+" ~"+re)
		}
	}
	add("email", id.Email, id.EmailRegExp)
	add("URI", id.URI, id.URIRegExp)
	add("hostname", id.Hostname, "")
	add("subject", id.Subject, id.SubjectRegExp)
	return strings.Join(parts, ", ")
}

// certMatcher is a compiled CertIdentity.
type certMatcher struct {
	id                  CertIdentity
	email, uri, subject *regexp.Regexp
}

func compileCertIdentity(id CertIdentity) (certMatcher, error) {
	m := certMatcher{id: id}
	given := false
	for _, f := range []struct {
		name, exact, re string
		into            **regexp.Regexp
	}{
		{"email", id.Email, id.EmailRegExp, &m.email},
		{"uri", id.URI, id.URIRegExp, &m.uri},
		{"subject", id.Subject, id.SubjectRegExp, &m.subject},
	} {
		switch {
		case f.exact != "" && f.re != "":
			return m, fmt.Errorf("%s and %sRegExp are both set: give one", f.name, f.name)
		case f.re != "":
			re, err := wholeString(f.re)
			if err != nil {
				return m, fmt.Errorf("%sRegExp: %w", f.name, err)
			}
			*f.into = re
		}
		given = given || f.exact != "" || f.re != ""
	}
	if !given && id.Hostname == "" {
		return m, errors.New("no identity: give at least one of email, uri, hostname or subject (or their RegExp)")
	}
	return m, nil
}

// matches reports whether the signing certificate cert has the identity.
func (m certMatcher) matches(cert *x509.Certificate) bool {
	one := func(values []string, exact string, re *regexp.Regexp) bool {
		switch {
		case re != nil:
			return slices.ContainsFunc(values, re.MatchString)
		case exact != "":
			return slices.Contains(values, exact)
		}
		return true
	}
	uris := make([]string, len(cert.URIs))
	for i, u := range cert.URIs {
		uris[i] = u.String()
	}
	if !one(cert.EmailAddresses, m.id.Email, m.email) || !one(uris, m.id.URI, m.uri) ||
		!one([]string{cert.Subject.String()}, m.id.Subject, m.subject) {
		return false
	}
	return m.id.Hostname == "" || cert.VerifyHostname(m.id.Hostname) == nil
}

// CheckCertIdentity reports whether id is complete and its regular
// expressions compile.
func CheckCertIdentity(id CertIdentity) error {
	_, err := compileCertIdentity(id)
	return err
}

// pkiMaterial is what a certificate authority verifies with: its roots,
// each with the intermediates, as certificate authorities; the transparency
// logs and timestamp authorities of base (a TrustRoot; nil under
// insecureIgnoreTlog), never base's Fulcio CAs or CT logs.
type pkiMaterial struct {
	root.BaseTrustedMaterial
	cas  []root.CertificateAuthority
	base root.TrustedMaterial
}

func newPKIMaterial(c *Certificate, base root.TrustedMaterial) *pkiMaterial {
	m := &pkiMaterial{base: base}
	for _, r := range c.Roots {
		m.cas = append(m.cas, &root.FulcioCertificateAuthority{Root: r, Intermediates: c.Intermediates})
	}
	return m
}

func (m *pkiMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority { return m.cas }

func (m *pkiMaterial) TimestampingAuthorities() []root.TimestampingAuthority {
	if m.base == nil {
		return nil
	}
	return m.base.TimestampingAuthorities()
}

func (m *pkiMaterial) RekorLogs() map[string]*root.TransparencyLog {
	if m.base == nil {
		return nil
	}
	return m.base.RekorLogs()
}

// describeCertificate says what a certificate authority trusts, for
// messages: its roots' subjects and its identities.
func describeCertificate(c *Certificate) string {
	roots := make([]string, len(c.Roots))
	for i, r := range c.Roots {
		roots[i] = r.Subject.String()
	}
	ids := make([]string, len(c.Identities))
	for i, id := range c.Identities {
		ids[i] = id.String()
	}
	return fmt.Sprintf("certificates issued under %s to %s", strings.Join(roots, " or "), strings.Join(ids, " or "))
}

// certSANs lists a certificate's email, URI and DNS names, for messages.
func certSANs(c *x509.Certificate) string {
	var out []string
	out = append(out, c.EmailAddresses...)
	for _, u := range c.URIs {
		out = append(out, u.String())
	}
	out = append(out, c.DNSNames...)
	if len(out) == 0 {
		return "no subject alternative names"
	}
	return "SANs " + strings.Join(out, ", ")
}

// untrustedReason says why a certificate authority does not trust leaf,
// in x509's words: the chain is checked again, with the authority's roots
// and intermediates, at each verified time of signing (the current time
// when there is none), as sigstore-go checked it. verifyErr is
// sigstore-go's answer, said when the chain verifies here.
func untrustedReason(c *Certificate, leaf *x509.Certificate, signedAt []sgverify.TimestampVerificationResult, verifyErr error) string {
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, r := range c.Roots {
		roots.AddCert(r)
	}
	for _, i := range c.Intermediates {
		intermediates.AddCert(i)
	}
	times := []time.Time{time.Now()}
	if len(signedAt) > 0 {
		times = times[:0]
		for _, ts := range signedAt {
			times = append(times, ts.Timestamp)
		}
	}
	for _, at := range times {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
		if err != nil {
			return fmt.Sprintf("certificate (subject %s, issued by %s) is not trusted at %s: %v", leaf.Subject, leaf.Issuer, at.UTC().Format(time.RFC3339), err)
		}
	}
	return verifyErr.Error()
}

// ParseCACertificates parses one or more PEM CA certificates (roots or
// intermediates of a certificate authority).
func ParseCACertificates(data []byte) ([]*x509.Certificate, error) {
	return parseCertificates(data, func(cert *x509.Certificate) error {
		if !cert.IsCA || !cert.BasicConstraintsValid {
			return errors.New("is not a CA certificate")
		}
		return nil
	})
}

// parseCertificates parses one or more PEM certificates, each of which
// accept must take (its error completes "certificate N (subject) ...").
func parseCertificates(data []byte, accept func(*x509.Certificate) error) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := data
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %s, not a CERTIFICATE", len(out)+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(out)+1, err)
		}
		if err := accept(cert); err != nil {
			return nil, fmt.Errorf("certificate %d (%s) %w", len(out)+1, cert.Subject, err)
		}
		out = append(out, cert)
		rest = r
	}
	if len(out) == 0 {
		return nil, errors.New("not a PEM certificate")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("text after the last PEM block")
	}
	return out, nil
}
