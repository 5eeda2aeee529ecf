package verify

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/registry"
)

// TestDistinctSignersByKey: a signature credited to a certificate and one
// credited to the key it certifies are one signer.
func TestDistinctSignersByKey(t *testing.T) {
	res := Result{Authorities: []AuthorityResult{
		{Signatures: []Signature{{Signer: "certificate CN=release issued by CN=CA", KeyFingerprint: "sha256:aa"}}},
		{Signatures: []Signature{{Signer: "key sha256:aa", KeyFingerprint: "sha256:aa"}}},
		{Signatures: []Signature{{Signer: "identity https://issuer me@example.com"}}},
	}}
	if n := distinctSignersOf(res); n != 2 {
		t.Errorf("distinct signers %d, want 2", n)
	}
}

// TestCertIdentityMatches: every field given must match; expressions
// match the whole value; the hostname as TLS matches it.
func TestCertIdentityMatches(t *testing.T) {
	u, _ := url.Parse("https://ci.example.com/pipelines/release")
	cert := &x509.Certificate{
		Subject:        pkix.Name{CommonName: "release", Organization: []string{"Example Corp"}},
		EmailAddresses: []string{"other@example.com", "release@example.com"},
		URIs:           []*url.URL{u},
		DNSNames:       []string{"*.build.example.com"},
	}
	for _, tc := range []struct {
		id   CertIdentity
		want bool
	}{
		{CertIdentity{Email: "release@example.com"}, true},
		{CertIdentity{Email: "Release@example.com"}, false},
		{CertIdentity{EmailRegExp: `release@example\.co`}, false},
		{CertIdentity{EmailRegExp: `[a-z]+@example\.com`}, true},
		{CertIdentity{URI: "https://ci.example.com/pipelines/release"}, true},
		{CertIdentity{URIRegExp: `https://ci\.example\.com/`}, false},
		{CertIdentity{Hostname: "eu.build.example.com"}, true},
		{CertIdentity{Hostname: "build.example.com"}, false},
		{CertIdentity{Subject: "CN=release,O=Example Corp"}, true},
		{CertIdentity{SubjectRegExp: `CN=release,.*`}, true},
		{CertIdentity{Email: "release@example.com", Subject: "CN=other"}, false},
		{CertIdentity{Email: "release@example.com", Hostname: "eu.build.example.com"}, true},
	} {
		m, err := compileCertIdentity(tc.id)
		if err != nil {
			t.Fatalf("%s: %v", tc.id, err)
		}
		if got := m.matches(cert); got != tc.want {
			t.Errorf("%s matches %v, want %v", tc.id, got, tc.want)
		}
	}
}

// TestPeekNotationTarget: malformed envelopes are errors, never panics.
func TestPeekNotationTarget(t *testing.T) {
	jws := func(payload string) []byte {
		return []byte(`{"payload":"` + payload + `","protected":"","signature":""}`)
	}
	good := base64.RawURLEncoding.EncodeToString([]byte(`{"targetArtifact":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":7}}`))
	if got, err := peekNotationTarget(registry.MediaTypeNotaryJWS, jws(good)); err != nil || got.TargetArtifact.Size != 7 {
		t.Fatalf("good JWS: %+v, %v", got, err)
	}
	for name, tc := range map[string]struct {
		mediaType string
		envelope  []byte
	}{
		"not JSON":           {registry.MediaTypeNotaryJWS, []byte("{")},
		"payload not base64": {registry.MediaTypeNotaryJWS, jws("!!")},
		"payload not JSON":   {registry.MediaTypeNotaryJWS, jws(base64.RawURLEncoding.EncodeToString([]byte("x")))},
		"COSE not CBOR":      {registry.MediaTypeNotaryCOSE, []byte{0xff}},
		"COSE untagged":      {registry.MediaTypeNotaryCOSE, []byte{0x84, 0x40, 0xa0, 0x40, 0x40}},
		"COSE wrong tag":     {registry.MediaTypeNotaryCOSE, []byte{0xd1, 0x84, 0x40, 0xa0, 0x40, 0x40}},
		"COSE short array":   {registry.MediaTypeNotaryCOSE, []byte{0xd2, 0x82, 0x40, 0xa0}},
		"other media type":   {"application/json", jws(good)},
	} {
		if _, err := peekNotationTarget(tc.mediaType, tc.envelope); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestNotationAuditChecksNoRevocation: under audit (authenticity not
// enforced) revocation URLs of untrusted certificates are never followed.
func TestNotationAuditChecksNoRevocation(t *testing.T) {
	ca := &x509.Certificate{IsCA: true, BasicConstraintsValid: true, Raw: []byte{1}}
	if _, err := newNotationVerifier("a", &Notation{CAs: []*x509.Certificate{ca}, TrustedIdentities: []string{"*"}, Level: "audit", Revocation: "enforce"}); err == nil || !strings.Contains(err.Error(), "audit level") {
		t.Errorf("audit with revocation enforced: %v", err)
	}
	if _, err := newNotationVerifier("a", &Notation{CAs: []*x509.Certificate{ca}, TrustedIdentities: []string{"*"}, Level: "audit"}); err != nil {
		t.Errorf("audit: %v", err)
	}
}
