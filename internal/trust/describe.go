package trust

import (
	"cmp"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// Summary is what a trusted root trusts, as of At. It backs
// `signet trustroot inspect`.
type Summary struct {
	// At is the time validity was judged at, in UTC.
	At time.Time `json:"at"`
	// CertificateAuthorities are the Fulcio CAs, in trusted-root order.
	CertificateAuthorities []Authority `json:"certificateAuthorities"`
	// TransparencyLogs are the Rekor logs, oldest first.
	TransparencyLogs []Log `json:"transparencyLogs"`
	// CTLogs are the certificate-transparency logs, oldest first.
	CTLogs []Log `json:"ctLogs"`
	// TimestampAuthorities are the RFC 3161 timestamp authorities, in
	// trusted-root order.
	TimestampAuthorities []Authority `json:"timestampAuthorities"`
	// Current counts the entries of each kind valid at At. A zero count
	// means nothing of that kind can vouch for a signature made now; all
	// zeroes mean the root trusts nothing currently valid.
	Current Counts `json:"current"`
	// NextExpiry is the earliest moment after At at which an entry valid at
	// At stops being valid, or nil if none has an end.
	NextExpiry *Expiry `json:"nextExpiry,omitempty"`
}

// Counts counts trusted-root entries by kind.
type Counts struct {
	CertificateAuthorities int `json:"certificateAuthorities"`
	TransparencyLogs       int `json:"transparencyLogs"`
	CTLogs                 int `json:"ctLogs"`
	TimestampAuthorities   int `json:"timestampAuthorities"`
}

// Window is a validity window. A nil bound is unbounded.
type Window struct {
	Start *time.Time `json:"start,omitempty"`
	End   *time.Time `json:"end,omitempty"`
}

// Contains reports whether t is within w, bounds included.
func (w Window) Contains(t time.Time) bool {
	return (w.Start == nil || !t.Before(*w.Start)) && (w.End == nil || !t.After(*w.End))
}

// Authority is a Fulcio certificate authority or a timestamp authority.
type Authority struct {
	// URI is the authority's URI as the trusted root records it.
	URI string `json:"uri"`
	// Subject is the subject of the authority's root certificate.
	Subject string `json:"subject"`
	// Validity is the window the trusted root trusts the authority for:
	// certificates (timestamps) it issued in the window are accepted.
	Validity Window `json:"validity"`
	// Certificates is the chain from the trusted root, leaf first, root last.
	Certificates []Certificate `json:"certificates"`
	// ValidNow reports whether At is within Validity and within every
	// certificate's validity.
	ValidNow bool `json:"validNow"`
}

// Certificate is one certificate of an authority's chain.
type Certificate struct {
	Subject   string    `json:"subject"`
	NotBefore time.Time `json:"notBefore"`
	NotAfter  time.Time `json:"notAfter"`
	// SHA256 is the hex sha256 of the DER certificate.
	SHA256 string `json:"sha256"`
}

// Log is a Rekor transparency log or a certificate-transparency log.
type Log struct {
	BaseURL string `json:"baseURL"`
	// LogID is the hex log ID (the key ID) entries and SCTs refer to.
	LogID string `json:"logID"`
	// KeyType is the log's public key type, e.g. "ECDSA P-256", "Ed25519".
	KeyType string `json:"keyType"`
	// Validity is the window the trusted root trusts the log's key for.
	Validity Window `json:"validity"`
	// ValidNow reports whether At is within Validity.
	ValidNow bool `json:"validNow"`
}

// Expiry is the moment a trusted-root entry stops being valid.
type Expiry struct {
	At time.Time `json:"at"`
	// Kind is "certificateAuthority", "transparencyLog", "ctLog" or
	// "timestampAuthority".
	Kind string `json:"kind"`
	// Name is the entry's URI or base URL.
	Name string `json:"name"`
	// Reason says which bound ends: the trusted root's validity window or a
	// certificate's notAfter.
	Reason string `json:"reason"`
}

// Describe summarizes what tr trusts and judges validity at now.
func Describe(tr *root.TrustedRoot, now time.Time) Summary {
	now = now.UTC()
	s := Summary{At: now}
	d := describer{now: now, summary: &s}

	for _, ca := range tr.FulcioCertificateAuthorities() {
		var a Authority
		switch ca := ca.(type) {
		case *root.FulcioCertificateAuthority:
			a = d.authority("certificateAuthority", ca.URI, ca.ValidityPeriodStart, ca.ValidityPeriodEnd, nil, ca.Intermediates, ca.Root)
		default:
			a = Authority{Subject: fmt.Sprintf("(unsupported certificate authority type %T)", ca)}
		}
		if a.ValidNow {
			s.Current.CertificateAuthorities++
		}
		s.CertificateAuthorities = append(s.CertificateAuthorities, a)
	}
	for _, tsa := range tr.TimestampingAuthorities() {
		var a Authority
		switch tsa := tsa.(type) {
		case *root.SigstoreTimestampingAuthority:
			a = d.authority("timestampAuthority", tsa.URI, tsa.ValidityPeriodStart, tsa.ValidityPeriodEnd, tsa.Leaf, tsa.Intermediates, tsa.Root)
		default:
			a = Authority{Subject: fmt.Sprintf("(unsupported timestamp authority type %T)", tsa)}
		}
		if a.ValidNow {
			s.Current.TimestampAuthorities++
		}
		s.TimestampAuthorities = append(s.TimestampAuthorities, a)
	}
	s.TransparencyLogs, s.Current.TransparencyLogs = d.logs("transparencyLog", tr.RekorLogs())
	s.CTLogs, s.Current.CTLogs = d.logs("ctLog", tr.CTLogs())
	return s
}

type describer struct {
	now     time.Time
	summary *Summary
}

// expires records that an entry valid now stops being valid at t, if t is
// the earliest such moment seen so far.
func (d describer) expires(t time.Time, kind, name, reason string) {
	if next := d.summary.NextExpiry; next == nil || t.Before(next.At) {
		d.summary.NextExpiry = &Expiry{At: t, Kind: kind, Name: name, Reason: reason}
	}
}

func (d describer) authority(kind, uri string, start, end time.Time, leaf *x509.Certificate, intermediates []*x509.Certificate, rootCert *x509.Certificate) Authority {
	a := Authority{URI: uri, Validity: window(start, end)}
	var chain []*x509.Certificate
	if leaf != nil {
		chain = append(chain, leaf)
	}
	chain = append(chain, intermediates...)
	if rootCert != nil {
		chain = append(chain, rootCert)
		a.Subject = rootCert.Subject.String()
	}

	a.ValidNow = a.Validity.Contains(d.now) && len(chain) > 0
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		a.Certificates = append(a.Certificates, Certificate{
			Subject:   c.Subject.String(),
			NotBefore: c.NotBefore.UTC(),
			NotAfter:  c.NotAfter.UTC(),
			SHA256:    hex.EncodeToString(sum[:]),
		})
		if d.now.Before(c.NotBefore) || d.now.After(c.NotAfter) {
			a.ValidNow = false
		}
	}
	if a.ValidNow {
		if a.Validity.End != nil {
			d.expires(*a.Validity.End, kind, uri, "trusted root validity window ends")
		}
		for _, c := range a.Certificates {
			d.expires(c.NotAfter, kind, uri, "certificate "+c.Subject+" expires")
		}
	}
	return a
}

func (d describer) logs(kind string, logs map[string]*root.TransparencyLog) (out []Log, valid int) {
	for id, l := range logs {
		entry := Log{
			BaseURL:  l.BaseURL,
			LogID:    id,
			KeyType:  keyType(l.PublicKey),
			Validity: window(l.ValidityPeriodStart, l.ValidityPeriodEnd),
		}
		if len(l.ID) > 0 {
			entry.LogID = hex.EncodeToString(l.ID)
		}
		entry.ValidNow = entry.Validity.Contains(d.now)
		if entry.ValidNow {
			valid++
			if entry.Validity.End != nil {
				d.expires(*entry.Validity.End, kind, l.BaseURL, "trusted root validity window ends")
			}
		}
		out = append(out, entry)
	}
	slices.SortFunc(out, func(a, b Log) int {
		return cmp.Or(
			timeOrZero(a.Validity.Start).Compare(timeOrZero(b.Validity.Start)),
			cmp.Compare(a.BaseURL, b.BaseURL),
			cmp.Compare(a.LogID, b.LogID),
		)
	})
	return out, valid
}

func window(start, end time.Time) Window {
	var w Window
	if !start.IsZero() {
		s := start.UTC()
		w.Start = &s
	}
	if !end.IsZero() {
		e := end.UTC()
		w.End = &e
	}
	return w
}

func timeOrZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

func keyType(k any) string {
	switch k := k.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	default:
		return fmt.Sprintf("%T", k)
	}
}
