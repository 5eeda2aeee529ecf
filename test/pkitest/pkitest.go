// Package pkitest makes a small enterprise PKI for tests: a root CA, an
// intermediate CA and code-signing certificates for given public keys, as
// a company CA issues them for cosign sign --certificate.
package pkitest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
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
	return &CA{Cert: sign(t, tmpl, c.Cert, k.Public(), c.Key), Key: k}
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
	if l.NoCodeSigning {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
	for _, u := range l.URIs {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, pu)
	}
	return sign(t, tmpl, c.Cert, pub, c.Key)
}
