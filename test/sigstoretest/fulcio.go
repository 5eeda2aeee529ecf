package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"net/url"
	"strings"
	"testing"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"github.com/google/certificate-transparency-go/x509util"
)

// Extensions of Fulcio certificates and of RFC 6962.
var (
	oidIssuerV1 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 1}
	oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}
	oidCTPoison = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 3}
	oidSCTList  = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}
)

// SignOptions describe the signer and the log entry of one signature.
type SignOptions struct {
	// Identity is the certificate's subject alternative name: a URI when it
	// has a scheme (https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main),
	// otherwise an email address. Required.
	Identity string
	// Issuer is the OIDC issuer, written in the Fulcio issuer extensions
	// 1.3.6.1.4.1.57264.1.1 (raw) and 1.3.6.1.4.1.57264.1.8 (DER UTF8String).
	// Empty writes neither.
	Issuer string
	// NoSCT issues the certificate without an embedded SCT.
	NoSCT bool
	// CertNotBefore and CertNotAfter override the certificate's validity,
	// by default from a minute before IntegratedTime for ten minutes, as
	// Fulcio does. The SCT is dated CertNotBefore.
	CertNotBefore, CertNotAfter time.Time
	// IntegratedTime is when the log integrated the entry and when the TSA
	// stamped the signature. Default: now.
	IntegratedTime time.Time
	// NoTimestamp omits the RFC 3161 timestamp.
	NoTimestamp bool
	// UntrustedRekorKey signs the SET and the checkpoint with a key the
	// trusted root does not hold, while the entry still names the trusted
	// log's ID: a forged log entry.
	UntrustedRekorKey bool
	// RekorV2 logs a bundle's signature in the Rekor v2 log (the Sigstore
	// must be made WithRekorV2) instead of the v1 log: a hashedrekord
	// v0.0.2 entry with an inclusion proof and a signed checkpoint, no SET
	// and no integrated time, so only the RFC 3161 timestamp dates it.
	// Bundles only (bundle version 0.2 or later).
	RekorV2 bool
	// BundleVersion is the media type version of a bundle: "0.1" (the
	// certificate as a one-element chain, the log entry with its SET and
	// no inclusion proof), "0.2" (chain, SET and inclusion proof) or "0.3"
	// (the certificate alone; the default).
	BundleVersion string
	// Key signs instead of a Fulcio certificate: the bundle carries a
	// public key hint (KeyHint of the key) and the log entry the PEM public
	// key. Identity, Issuer and NoSCT are then ignored. Bundles only.
	Key *ecdsa.PrivateKey
	// Certificate signs with a certificate this Sigstore did not issue
	// (an enterprise CA's, for example one of package pkitest), as cosign
	// sign --key --certificate --certificate-chain does: the signature
	// carries it and the log entry names it, in the Sigstore's log like a
	// Fulcio certificate. Identity, Issuer, NoSCT, CertNotBefore and
	// CertNotAfter are then ignored; IntegratedTime still dates the entry
	// and the timestamp. Legacy layers and bundles; not with Key.
	Certificate *CertificateSigner
}

// CertificateSigner is a signing certificate issued elsewhere, the private
// key of its public key, and the chain a legacy layer carries with it. The
// certificate is used as it is: nothing checks that it certifies Key or
// chains to Chain, so a test can make either wrong on purpose.
type CertificateSigner struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// Chain is the content of a legacy layer's chain annotation
	// (intermediates, then the root); none when empty. Bundles v0.3 carry
	// the leaf alone and v0.1 and v0.2 a one-element chain, as Fulcio
	// bundles do.
	Chain []*x509.Certificate
}

func (o SignOptions) signedAt() time.Time {
	if o.IntegratedTime.IsZero() {
		return time.Now()
	}
	return o.IntegratedTime
}

// signer is who signs one signature: a certificate (Fulcio's or
// o.Certificate's) and its key, or a bare key (cert nil). chain is what a
// legacy layer's chain annotation holds.
type signer struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	chain []*x509.Certificate
}

// signerFor issues a Fulcio certificate for o, or takes o.Key or
// o.Certificate.
func (s *Sigstore) signerFor(t testing.TB, o SignOptions) signer {
	t.Helper()
	switch c := o.Certificate; {
	case c != nil && o.Key != nil:
		t.Fatal("sigstoretest: SignOptions.Key and SignOptions.Certificate are both set: give one")
	case c != nil && (c.Cert == nil || c.Key == nil):
		t.Fatal("sigstoretest: SignOptions.Certificate needs both Cert and Key")
	case c != nil:
		return signer{cert: c.Cert, key: c.Key, chain: c.Chain}
	case o.Key != nil:
		return signer{key: o.Key}
	}
	cert, key := s.issue(t, o)
	return signer{cert: cert, key: key, chain: s.Chain()}
}

// verifierPEM is what the log records as the verifier: the certificate or
// the public key, PEM.
func (sg signer) verifierPEM(t testing.TB) []byte {
	t.Helper()
	if sg.cert != nil {
		return certPEM(sg.cert)
	}
	return PublicKeyPEM(t, sg.key)
}

// KeyHint is the hint a key-signed bundle gives for key: the hex SHA-256
// of its DER SubjectPublicKeyInfo.
func KeyHint(t testing.TB, key *ecdsa.PublicKey) string {
	t.Helper()
	id := keyID(t, key)
	return hex.EncodeToString(id[:])
}

// issue makes a signing key and a Fulcio certificate for it.
func (s *Sigstore) issue(t testing.TB, o SignOptions) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	if o.Identity == "" {
		t.Fatal("sigstoretest: SignOptions.Identity is required")
	}
	key := NewKey(t)
	notBefore, notAfter := o.CertNotBefore, o.CertNotAfter
	if notBefore.IsZero() {
		notBefore = o.signedAt().Add(-time.Minute)
	}
	if notAfter.IsZero() {
		notAfter = notBefore.Add(10 * time.Minute)
	}
	tmpl := &x509.Certificate{
		SerialNumber: s.nextSerial(),
		NotBefore:    notBefore.Truncate(time.Second),
		NotAfter:     notAfter.Truncate(time.Second),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		SubjectKeyId: subjectKeyID(t, key),
	}
	if strings.Contains(o.Identity, "://") {
		u, err := url.Parse(o.Identity)
		if err != nil {
			t.Fatalf("sigstoretest: identity %q: %v", o.Identity, err)
		}
		tmpl.URIs = []*url.URL{u}
	} else {
		tmpl.EmailAddresses = []string{o.Identity}
	}
	if o.Issuer != "" {
		v2, err := asn1.MarshalWithParams(o.Issuer, "utf8")
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{
			{Id: oidIssuerV1, Value: []byte(o.Issuer)},
			{Id: oidIssuerV2, Value: v2},
		}
	}
	if o.NoSCT {
		return createCert(t, tmpl, s.fulcioIntermediate, &key.PublicKey, s.fulcioKey), key
	}

	// RFC 6962 §3.1: the log signs a precertificate, which carries the
	// critical poison extension where the final certificate carries the SCT
	// list; everything else in the two TBSCertificates is identical.
	extensions := tmpl.ExtraExtensions
	tmpl.ExtraExtensions = append(append([]pkix.Extension(nil), extensions...), pkix.Extension{Id: oidCTPoison, Critical: true, Value: asn1.NullBytes})
	precert := createCert(t, tmpl, s.fulcioIntermediate, &key.PublicKey, s.fulcioKey)
	sct := s.sct(t, precert, tmpl.NotBefore)
	tmpl.ExtraExtensions = append(append([]pkix.Extension(nil), extensions...), pkix.Extension{Id: oidSCTList, Value: sct})
	return createCert(t, tmpl, s.fulcioIntermediate, &key.PublicKey, s.fulcioKey), key
}

// sct is the value of the SCT list extension: one SCT by the CT log key over
// precert, dated at.
func (s *Sigstore) sct(t testing.TB, precert *x509.Certificate, at time.Time) []byte {
	t.Helper()
	chain := make([]*ctx509.Certificate, 0, 2)
	for _, der := range [][]byte{precert.Raw, s.fulcioIntermediate.Raw} {
		c, err := ctx509.ParseCertificate(der)
		if err != nil && ctx509.IsFatal(err) {
			t.Fatalf("sigstoretest: parsing the precertificate chain: %v", err)
		}
		chain = append(chain, c)
	}
	ts := uint64(at.UnixMilli())
	leaf, err := ct.MerkleTreeLeafFromChain(chain, ct.PrecertLogEntryType, ts)
	if err != nil {
		t.Fatalf("sigstoretest: building the precertificate log entry: %v", err)
	}
	sct := ct.SignedCertificateTimestamp{SCTVersion: ct.V1, LogID: ct.LogID{KeyID: s.ctLogID}, Timestamp: ts}
	input, err := ct.SerializeSCTSignatureInput(sct, ct.LogEntry{Leaf: *leaf})
	if err != nil {
		t.Fatalf("sigstoretest: serializing the SCT input: %v", err)
	}
	digest := sha256.Sum256(input)
	sig, err := ecdsa.SignASN1(rand.Reader, s.ctKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sct.Signature = ct.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	}
	list, err := x509util.MarshalSCTsIntoSCTList([]*ct.SignedCertificateTimestamp{&sct})
	if err != nil {
		t.Fatalf("sigstoretest: encoding the SCT list: %v", err)
	}
	tlsList, err := cttls.Marshal(*list)
	if err != nil {
		t.Fatalf("sigstoretest: encoding the SCT list: %v", err)
	}
	ext, err := asn1.Marshal(tlsList) // an OCTET STRING holding the TLS-encoded list
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

func subjectKeyID(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}
