package sigstoretest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// The URLs the trusted root names. Nothing listens on them.
const (
	FulcioURL = "https://fulcio.sigstore.test"
	RekorURL  = "https://rekor.sigstore.test"
	CTLogURL  = "https://ctfe.sigstore.test/test"
	TSAURL    = "https://tsa.sigstore.test/api/v1/timestamp"
)

// rekorHost is the origin of the log's checkpoints ("<host> - <tree ID>").
const (
	rekorHost   = "rekor.sigstore.test"
	rekorTreeID = 1193050959916656506
)

// Sigstore is a local Fulcio, CT log, Rekor and timestamping authority. It is
// safe for concurrent use.
type Sigstore struct {
	fulcioRoot         *x509.Certificate
	fulcioIntermediate *x509.Certificate
	fulcioKey          *ecdsa.PrivateKey // the intermediate's

	ctKey   *ecdsa.PrivateKey
	ctLogID [32]byte

	rekorKey   *ecdsa.PrivateKey
	rekorLogID [32]byte

	rekorV2 *rekorV2Log // nil unless WithRekorV2

	tsaRoot *x509.Certificate
	tsaLeaf *x509.Certificate
	tsaKey  *ecdsa.PrivateKey

	rootJSON []byte
	root     *root.TrustedRoot

	mu       sync.Mutex
	serial   int64
	logIndex int64
}

// Option configures New.
type Option func(*options)

type options struct {
	intermediateNotBefore, intermediateNotAfter time.Time
	rekorV2                                     bool
}

// WithRekorV2 adds a Rekor v2 (tile-based) log to the Sigstore and its
// trusted root, next to the Rekor v1 log: an Ed25519 key whose log ID is its
// signed-note key ID, with base URL RekorV2URL. Signatures are logged in it
// with SignOptions.RekorV2.
func WithRekorV2() Option {
	return func(o *options) { o.rekorV2 = true }
}

// WithIntermediateValidity sets the validity of the Fulcio intermediate
// certificate, by default the Sigstore's (a day either side of New): for
// example a chain that had expired when a leaf it issued signed.
func WithIntermediateValidity(notBefore, notAfter time.Time) Option {
	return func(o *options) { o.intermediateNotBefore, o.intermediateNotAfter = notBefore, notAfter }
}

// New starts a local Sigstore whose CA and TSA certificates are valid from a
// day before now until a day after, and whose keys the trusted root trusts
// from a day before now on.
func New(t testing.TB, opts ...Option) *Sigstore {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	start, end := now.Add(-24*time.Hour), now.Add(24*time.Hour)
	o := options{intermediateNotBefore: start, intermediateNotAfter: end}
	for _, opt := range opts {
		opt(&o)
	}
	s := &Sigstore{serial: 1, logIndex: 1000}

	rootKey := NewKey(t)
	s.fulcioRoot = s.caCert(t, "sigstore-test-root", nil, rootKey, rootKey, start, end, nil)
	s.fulcioKey = NewKey(t)
	s.fulcioIntermediate = s.caCert(t, "sigstore-test-intermediate", s.fulcioRoot, s.fulcioKey, rootKey,
		o.intermediateNotBefore, o.intermediateNotAfter, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning})

	s.ctKey = NewKey(t)
	s.ctLogID = keyID(t, &s.ctKey.PublicKey)
	s.rekorKey = NewKey(t)
	s.rekorLogID = keyID(t, &s.rekorKey.PublicKey)

	rekorLogs := map[string]*root.TransparencyLog{hex.EncodeToString(s.rekorLogID[:]): transparencyLog(RekorURL, s.rekorLogID, &s.rekorKey.PublicKey, start)}
	if o.rekorV2 {
		s.rekorV2 = newRekorV2Log(t)
		rekorLogs[hex.EncodeToString(s.rekorV2.id[:])] = transparencyLog(RekorV2URL, s.rekorV2.id, s.rekorV2.key.Public(), start)
	}
	tsaRootKey := NewKey(t)
	s.tsaRoot = s.caCert(t, "sigstore-test-tsa-root", nil, tsaRootKey, tsaRootKey, start, end, nil)
	s.tsaKey = NewKey(t)
	s.tsaLeaf = s.tsaLeafCert(t, tsaRootKey, start, end)

	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01,
		[]root.CertificateAuthority{&root.FulcioCertificateAuthority{
			Root: s.fulcioRoot, Intermediates: []*x509.Certificate{s.fulcioIntermediate},
			ValidityPeriodStart: start, URI: FulcioURL,
		}},
		map[string]*root.TransparencyLog{hex.EncodeToString(s.ctLogID[:]): transparencyLog(CTLogURL, s.ctLogID, &s.ctKey.PublicKey, start)},
		[]root.TimestampingAuthority{&root.SigstoreTimestampingAuthority{
			Root: s.tsaRoot, Leaf: s.tsaLeaf, ValidityPeriodStart: start, URI: TSAURL,
		}},
		rekorLogs,
	)
	if err != nil {
		t.Fatalf("sigstoretest: building the trusted root: %v", err)
	}
	if s.rootJSON, err = tr.MarshalJSON(); err != nil {
		t.Fatalf("sigstoretest: encoding the trusted root: %v", err)
	}
	// Hand out the root as a user's file would be read.
	if s.root, err = root.NewTrustedRootFromJSON(s.rootJSON); err != nil {
		t.Fatalf("sigstoretest: the trusted root does not parse: %v", err)
	}
	return s
}

// TrustedRoot is the trusted root of this Sigstore, parsed from
// TrustedRootJSON as a user's file would be.
func (s *Sigstore) TrustedRoot() *root.TrustedRoot { return s.root }

// TrustedRootJSON is a sigstore trusted_root.json
// (application/vnd.dev.sigstore.trustedroot+json;version=0.1) for this
// Sigstore: the Fulcio chain, the CT log, the Rekor log and the TSA.
func (s *Sigstore) TrustedRootJSON() []byte { return append([]byte(nil), s.rootJSON...) }

// RekorLogID is the log ID of the Rekor log: the hex SHA-256 of its public
// key's DER SubjectPublicKeyInfo.
func (s *Sigstore) RekorLogID() string { return hex.EncodeToString(s.rekorLogID[:]) }

// RekorV2LogID is the log ID of the Rekor v2 log (WithRekorV2): the hex
// signed-note key ID of its Ed25519 key. Empty without WithRekorV2.
func (s *Sigstore) RekorV2LogID() string {
	if s.rekorV2 == nil {
		return ""
	}
	return hex.EncodeToString(s.rekorV2.id[:])
}

// Chain is the Fulcio intermediate and root certificates, leaf side first.
func (s *Sigstore) Chain() []*x509.Certificate {
	return []*x509.Certificate{s.fulcioIntermediate, s.fulcioRoot}
}

func transparencyLog(url string, id [32]byte, key crypto.PublicKey, start time.Time) *root.TransparencyLog {
	return &root.TransparencyLog{
		BaseURL: url, ID: id[:], ValidityPeriodStart: start,
		HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256, PublicKey: key,
	}
}

func (s *Sigstore) nextSerial() *big.Int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.serial++
	return big.NewInt(s.serial)
}

func (s *Sigstore) nextLogIndex() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logIndex++
	return s.logIndex
}

// caCert issues a CA certificate for key, signed by signer as parent (self-signed when parent is nil).
func (s *Sigstore) caCert(t testing.TB, cn string, parent *x509.Certificate, key, signer *ecdsa.PrivateKey, notBefore, notAfter time.Time, eku []x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          s.nextSerial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"sigstore.test"}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage:           eku,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	if parent == nil {
		parent = tmpl
	}
	return createCert(t, tmpl, parent, &key.PublicKey, signer)
}

// tsaLeafCert issues the timestamping leaf, with the critical timestamping
// extended key usage RFC 3161 requires.
func (s *Sigstore) tsaLeafCert(t testing.TB, rootKey *ecdsa.PrivateKey, notBefore, notAfter time.Time) *x509.Certificate {
	t.Helper()
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 8}})
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    s.nextSerial(),
		Subject:         pkix.Name{CommonName: "sigstore-test-tsa", Organization: []string{"sigstore.test"}},
		NotBefore:       notBefore,
		NotAfter:        notAfter,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 37}, Critical: true, Value: eku}},
	}
	return createCert(t, tmpl, s.tsaRoot, &s.tsaKey.PublicKey, rootKey)
}

func createCert(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) *x509.Certificate {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		t.Fatalf("sigstoretest: issuing a certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("sigstoretest: parsing an issued certificate: %v", err)
	}
	return cert
}

// NewKey makes an ECDSA P-256 key, the kind cosign generate-key-pair makes:
// for SignOptions.Key, or for a test's own signatures.
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// PublicKeyPEM is key's public half as a PEM "PUBLIC KEY" block (DER
// SubjectPublicKeyInfo), the form of a cosign .pub file and of a key in a
// signet policy.
func PublicKeyPEM(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// keyID is how Rekor and CT logs name themselves: the SHA-256 of the DER
// SubjectPublicKeyInfo of their key.
func keyID(t testing.TB, pub crypto.PublicKey) [32]byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(der)
}
