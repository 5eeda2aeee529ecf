package trust

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Keys is trusted material given directly rather than as a trusted root:
// what a TrustRoot's `keys` holds. [Keys.Material] turns it into a trusted
// root, so it verifies, describes and versions like any other.
type Keys struct {
	// CertificateAuthorities are Fulcio CAs.
	CertificateAuthorities []CertificateAuthority
	// TransparencyLogs are Rekor logs.
	TransparencyLogs []LogKey
	// CTLogs are certificate-transparency logs.
	CTLogs []LogKey
	// TimestampAuthorities are RFC 3161 timestamp authorities.
	TimestampAuthorities []CertificateAuthority
}

// CertificateAuthority is a CA given as a PEM chain.
type CertificateAuthority struct {
	// URI names the authority (informational).
	URI string
	// CertChain is PEM: for a Fulcio CA, intermediates then the root; for
	// a TSA, its signing (leaf) certificate, intermediates, then the root.
	CertChain []byte
	// Start and End bound when certificates (timestamps) it issued are
	// trusted; zero values are unbounded.
	Start, End time.Time
}

// LogKey is a transparency log given by its public key.
type LogKey struct {
	// BaseURL is the log's URL (informational).
	BaseURL string
	// PublicKey is the log's PEM public key (PKIX). Its log ID is the
	// sha256 of the DER key, as Rekor and CT logs compute it.
	PublicKey []byte
	// Start and End bound when entries it signed are trusted. A zero
	// Start is the Unix epoch (a log must have a start).
	Start, End time.Time
}

// Material builds the trusted root the keys describe. Every problem is
// reported, with the field it concerns.
func (k Keys) Material() (*Material, error) {
	var errs []error
	var cas []root.CertificateAuthority
	for i, ca := range k.CertificateAuthorities {
		certs, err := parseChain(ca.CertChain)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificateAuthorities[%d]: %w", i, err))
			continue
		}
		fca := &root.FulcioCertificateAuthority{Root: certs[len(certs)-1], Intermediates: certs[:len(certs)-1], URI: ca.URI,
			ValidityPeriodStart: ca.Start, ValidityPeriodEnd: ca.End}
		cas = append(cas, fca)
	}
	var tsas []root.TimestampingAuthority
	for i, ca := range k.TimestampAuthorities {
		certs, err := parseChain(ca.CertChain)
		if err != nil {
			errs = append(errs, fmt.Errorf("timestampAuthorities[%d]: %w", i, err))
			continue
		}
		tsa := &root.SigstoreTimestampingAuthority{Root: certs[len(certs)-1], URI: ca.URI, ValidityPeriodStart: ca.Start, ValidityPeriodEnd: ca.End}
		if len(certs) > 1 {
			tsa.Leaf, tsa.Intermediates = certs[0], certs[1:len(certs)-1]
		}
		tsas = append(tsas, tsa)
	}
	tlogs, err := logKeys("transparencyLogs", k.TransparencyLogs)
	errs = append(errs, err)
	ctlogs, err := logKeys("ctLogs", k.CTLogs)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(cas)+len(tsas)+len(tlogs)+len(ctlogs) == 0 {
		return nil, errors.New("no keys: give at least one certificate authority, log or timestamp authority")
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, ctlogs, tsas, tlogs)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(tr)
	if err != nil {
		return nil, fmt.Errorf("encoding the trusted root: %w", err)
	}
	// Parse it back: the material is exactly what its JSON says.
	return NewMaterial(data)
}

func logKeys(field string, keys []LogKey) (map[string]*root.TransparencyLog, error) {
	out := map[string]*root.TransparencyLog{}
	var errs []error
	for i, l := range keys {
		block, rest := pem.Decode(l.PublicKey)
		if block == nil || len(trimSpace(rest)) != 0 {
			errs = append(errs, fmt.Errorf("%s[%d].publicKey: want exactly one PEM public key", field, i))
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d].publicKey: %w", field, i, err))
			continue
		}
		id := sha256.Sum256(block.Bytes)
		hexID := hex.EncodeToString(id[:])
		if _, dup := out[hexID]; dup {
			errs = append(errs, fmt.Errorf("%s[%d].publicKey: the same key is given twice", field, i))
			continue
		}
		start := l.Start
		if start.IsZero() {
			// sigstore-go trusts no log entry of a log without a start.
			start = time.Unix(0, 0).UTC()
		}
		out[hexID] = &root.TransparencyLog{BaseURL: l.BaseURL, ID: id[:], PublicKey: pub, HashFunc: crypto.SHA256, SignatureHashFunc: crypto.SHA256,
			ValidityPeriodStart: start, ValidityPeriodEnd: l.End}
	}
	return out, errors.Join(errs...)
}

func parseChain(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; len(trimSpace(rest)) > 0; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("certChain: not PEM")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certChain: a %s PEM block, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certChain: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("certChain: no certificates")
	}
	return certs, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}
