// Package pkitest makes a small enterprise PKI for tests: a root CA, an
// intermediate CA and code-signing certificates for given public keys, as
// a company CA issues them for cosign sign --certificate or notation sign
// (the leaves meet the Notary Project's certificate requirements), and
// RFC 3161 time-stamping certificates.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"math/big"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// parent is the CA that issued this one; nil for a root.
	parent *CA
}

// Chain is the CA's certificate followed by those of the CAs above it, up to
// and including the root.
func (c *CA) Chain() []*x509.Certificate {
	var chain []*x509.Certificate
	for ca := c; ca != nil; ca = ca.parent {
		chain = append(chain, ca.Cert)
	}
	return chain
}

// PEM is the CA's certificate in PEM.
func (c *CA) PEM() string { return PEM(c.Cert) }

// PEM encodes certificates in PEM, in order.
func PEM(certs ...*x509.Certificate) string {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return string(out)
}

var serial atomic.Int64

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl.SerialNumber = big.NewInt(serial.Add(1))
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// NewRoot makes a self-signed root CA named cn, valid for a day around now.
func NewRoot(t testing.TB, cn string) *CA {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}}, NotBefore: time.Now().Add(-24 * time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return &CA{Cert: sign(t, tmpl, nil, k.Public(), k), Key: k}
}

// Intermediate makes an intermediate CA named cn under c.
func (c *CA) Intermediate(t testing.TB, cn string) *CA {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}}, NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter,
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return &CA{Cert: sign(t, tmpl, c.Cert, k.Public(), c.Key), Key: k, parent: c}
}

// Leaf describes a signing certificate.
type Leaf struct {
	CommonName string
	Emails     []string
	URIs       []string
	DNSNames   []string
	// NotBefore, NotAfter: default an hour either side of now.
	NotBefore, NotAfter time.Time
	// NoCodeSigning leaves out the code-signing extended key usage.
	NoCodeSigning bool
	// Country and Province, when set, add the subject's C and ST attributes
	// (Notary Project trusted identities name at least C, ST and O).
	Country, Province string
	// CRLs are the certificate's CRL distribution points (URLs).
	CRLs []string
	// OCSP are the certificate's OCSP responders (URLs).
	OCSP []string
}

// Issue signs a certificate for pub as l describes.
func (c *CA) Issue(t testing.TB, pub crypto.PublicKey, l Leaf) *x509.Certificate {
	t.Helper()
	if l.NotBefore.IsZero() {
		l.NotBefore = time.Now().Add(-time.Hour)
	}
	if l.NotAfter.IsZero() {
		l.NotAfter = time.Now().Add(time.Hour)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: l.CommonName, Organization: []string{"Example Corp"}}, NotBefore: l.NotBefore, NotAfter: l.NotAfter,
		EmailAddresses: l.Emails, DNSNames: l.DNSNames, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	if l.Country != "" {
		tmpl.Subject.Country = []string{l.Country}
	}
	if l.Province != "" {
		tmpl.Subject.Province = []string{l.Province}
	}
	if l.NoCodeSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	tmpl.CRLDistributionPoints = l.CRLs
	tmpl.OCSPServer = l.OCSP
	for _, u := range l.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	return sign(t, tmpl, c.Cert, pub, c.Key)
}

// IssueTimestamping signs an RFC 3161 time-stamping certificate for pub named
// cn, valid as long as c: digital signature key usage and the time-stamping
// extended key usage alone, marked critical as RFC 3161 requires.
func (c *CA) IssueTimestamping(t testing.TB, pub crypto.PublicKey, cn string) *x509.Certificate {
	t.Helper()
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		Subject: pkix.Name{CommonName: cn, Organization: []string{"Example Corp"}}, NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	return sign(t, tmpl, c.Cert, pub, c.Key)
}

// CRL is a certificate revocation list of c revoking the given
// certificates, valid for an hour, in DER.
func (c *CA) CRL(t testing.TB, revoked ...*x509.Certificate) []byte {
	t.Helper()
	list := &x509.RevocationList{Number: big.NewInt(serial.Add(1)), ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
	for _, r := range revoked {
		list.RevokedCertificateEntries = append(list.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: r.SerialNumber, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, list, c.Cert, c.Key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// SelfSigned makes a self-signed signing certificate (not a CA) for key,
// as l describes: a signer trusted as it is, as Notary trust stores and
// Kyverno's samples trust one.
func SelfSigned(t testing.TB, key crypto.Signer, l Leaf) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: l.CommonName, Organization: []string{"Example Corp"}, Country: []string{l.Country}, Province: []string{l.Province}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
	}
	return sign(t, tmpl, nil, key.Public(), key)
}
