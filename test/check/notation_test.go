package check_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/notationtest"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/verifytest"
)

// TestNotationSignatures verifies images signed by the Notary Project's
// own library (as notation sign signs them), JWS and COSE, stored as
// referrers through the referrers API and the referrers tag schema, with a
// notation authority; and denies, saying which check failed, an untrusted
// CA, another identity, a tampered envelope, a signature for another
// image, an unknown critical attribute, an expired signature, an expired
// certificate without a timestamp, and a missing timestamp the policy
// requires.
func TestNotationSignatures(t *testing.T) {
	root := pkitest.NewRoot(t, "Notary Root CA")
	ca := root.Intermediate(t, "Notary Signing CA")
	good := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "release"})
	expired := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "release",
		NotBefore: time.Now().Add(-3 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	stranger := pkitest.NewRoot(t, "Other Root CA")
	tsa := notationtest.StartTSA(t)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)

	policy := func(edit func(*verify.Notation)) *verify.Compiled {
		n := &verify.Notation{CAs: []*x509.Certificate{root.Cert}, TrustedIdentities: []string{good.Identity()}}
		if edit != nil {
			edit(n)
		}
		return verifytest.Compile(t, verify.Policy{Name: "notary", Authorities: []verify.Authority{{Name: "release", Notation: n}}})
	}
	trusted := policy(nil)

	for regName, start := range map[string]func(t *testing.T) *registrytest.Registry{
		"referrers API":        func(t *testing.T) *registrytest.Registry { return registrytest.StartInProcess(t, true) },
		"referrers tag schema": func(t *testing.T) *registrytest.Registry { return harness.StartRegistry(t) },
	} {
		t.Run(regName, func(t *testing.T) {
			reg := start(t)
			w := newWorld(t, reg, nil, harness.KeyPair{}, harness.KeyPair{})
			for _, format := range []string{notationtest.JWS, notationtest.COSE} {
				name := map[string]string{notationtest.JWS: "jws", notationtest.COSE: "cose"}[format]
				t.Run(name, func(t *testing.T) {
					n := 0
					sign := func(s notationtest.Signer, opts notationtest.Options) registrytest.Image {
						n++
						img := reg.PushRandomImage(t, "notary-"+name, fmt.Sprintf("v%d", n))
						opts.Format = format
						notationtest.Sign(t, img.Ref, s, opts)
						return img
					}
					signed := sign(good, notationtest.Options{})

					t.Run("trusted", func(t *testing.T) {
						res := w.check(t, signed.Ref, trusted, check.Options{})
						verifytest.WantVerified(t, res)
						sig := res.Authorities[0].Signatures[0]
						if sig.Format != "notary signature" || !strings.Contains(sig.Signer, "CN=release") {
							t.Errorf("signature %+v", sig)
						}
						// By tag too: the digest is resolved first.
						verifytest.WantVerified(t, w.check(t, signed.Tag, trusted, check.Options{}))
					})
					t.Run("any identity the CA certifies", func(t *testing.T) {
						verifytest.WantVerified(t, w.check(t, signed.Ref, policy(func(n *verify.Notation) { n.TrustedIdentities = []string{"*"} }), check.Options{}))
					})
					t.Run("untrusted CA", func(t *testing.T) {
						verifytest.WantDenied(t, w.check(t, signed.Ref, policy(func(n *verify.Notation) { n.CAs = []*x509.Certificate{stranger.Cert} }), check.Options{}),
							"notary signature authenticity", verify.ErrUntrustedCertificate)
					})
					t.Run("another identity", func(t *testing.T) {
						verifytest.WantDenied(t, w.check(t, signed.Ref, policy(func(n *verify.Notation) {
							n.TrustedIdentities = []string{"x509.subject: C=US, ST=WA, O=Example Corp, CN=someone else"}
						}), check.Options{}), "notary signature authenticity", verify.ErrIdentityMismatch)
					})
					t.Run("tampered envelope", func(t *testing.T) {
						verifytest.WantDenied(t, w.check(t, sign(good, notationtest.Options{Tamper: true}).Ref, trusted, check.Options{}),
							"notary signature integrity", verify.ErrBadSignature)
					})
					t.Run("signature for another image", func(t *testing.T) {
						victim := reg.PushRandomImage(t, "notary-"+name, "victim")
						notationtest.Sign(t, signed.Ref, good, notationtest.Options{Format: format, AttachTo: victim.Ref})
						verifytest.WantDenied(t, w.check(t, victim.Ref, trusted, check.Options{}), "copied from another image", verify.ErrDigestMismatch)
					})
					t.Run("unknown critical attribute", func(t *testing.T) {
						verifytest.WantDenied(t, w.check(t, sign(good, notationtest.Options{UnknownCritical: true}).Ref, trusted, check.Options{}),
							"critical attribute "+notationtest.UnknownCriticalAttribute, verify.ErrBadSignature)
					})
					t.Run("expired signature", func(t *testing.T) {
						img := sign(good, notationtest.Options{SigningTime: time.Now().Add(-30 * time.Minute), Expiry: 10 * time.Minute})
						verifytest.WantDenied(t, w.check(t, img.Ref, trusted, check.Options{}), "notary signature expiry", verify.ErrUntrustedCertificate)
						// permissive only notes it.
						res := w.check(t, img.Ref, policy(func(n *verify.Notation) { n.Level = "permissive" }), check.Options{})
						verifytest.WantVerified(t, res)
						if notes := res.Authorities[0].Signatures[0].Notes; len(notes) != 1 || !strings.HasPrefix(notes[0], "expiry (logged by the permissive level, not enforced)") {
							t.Errorf("notes %q, want the expiry logged", notes)
						}
					})
					t.Run("expired certificate without a timestamp", func(t *testing.T) {
						verifytest.WantDenied(t, w.check(t, sign(expired, notationtest.Options{}).Ref, trusted, check.Options{}),
							"notary signature timestamp", verify.ErrTimestamp)
					})
					t.Run("timestamp authority", func(t *testing.T) {
						withTSA := policy(func(n *verify.Notation) { n.TSAs = []*x509.Certificate{tsa.Root.Cert} })
						res := w.check(t, sign(good, notationtest.Options{TSA: tsa}).Ref, withTSA, check.Options{})
						verifytest.WantVerified(t, res)
						verifytest.WantDenied(t, w.check(t, signed.Ref, withTSA, check.Options{}), "notary signature timestamp", verify.ErrTimestamp)
					})
					t.Run("threshold with a cosign key", func(t *testing.T) {
						// One image, signed by notation and by cosign: two
						// distinct signers meet threshold 2.
						img := sign(good, notationtest.Options{})
						cosign.Sign(t, img.Ref, key, harness.Legacy)
						both := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
							{Name: "release", Notation: &verify.Notation{CAs: []*x509.Certificate{root.Cert}, TrustedIdentities: []string{good.Identity()}}},
							{Name: "ci", Keys: []verify.PublicKey{keyOf(t, key)}, InsecureIgnoreTlog: true},
						}})
						res := w.check(t, img.Ref, both, check.Options{})
						verifytest.WantVerified(t, res)
						// The Notary signature alone does not.
						verifytest.WantDenied(t, w.check(t, signed.Ref, both, check.Options{}), "1 of 2 required authorities passed", verify.ErrNoSignature, verify.ErrThreshold)
					})
					t.Run("a self-signed signing certificate in the trust store", func(t *testing.T) {
						key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
						if err != nil {
							t.Fatal(err)
						}
						cert := pkitest.SelfSigned(t, key, pkitest.Leaf{CommonName: "self", Country: "US", Province: "WA"})
						img := sign(notationtest.Signer{Key: key, Chain: []*x509.Certificate{cert}}, notationtest.Options{})
						verifytest.WantVerified(t, w.check(t, img.Ref, policy(func(n *verify.Notation) {
							n.CAs, n.TrustedIdentities = []*x509.Certificate{cert}, []string{"*"}
						}), check.Options{}))
					})
					t.Run("unsigned", func(t *testing.T) {
						img := reg.PushRandomImage(t, "notary-"+name, "unsigned")
						verifytest.WantDenied(t, w.check(t, img.Ref, trusted, check.Options{}), "no signature found", verify.ErrNoSignature)
					})
				})
			}
		})
	}
}

// TestNotationRevocation: a signing certificate that names a CRL is
// checked against it, online (here a loopback CRL server of the issuing
// CA): revoked is denied under strict, an unreachable CRL is "unknown" and
// denied under strict, and the revocation override (log, skip) lets
// air-gapped clusters admit what the rest verifies.
func TestNotationRevocation(t *testing.T) {
	root := pkitest.NewRoot(t, "Notary Root CA")
	ca := root.Intermediate(t, "Notary Signing CA")
	var crl atomic.Pointer[[]byte]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b := crl.Load(); b != nil {
			w.Header().Set("Content-Type", "application/pkix-crl")
			_, _ = w.Write(*b)
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	leaf := pkitest.Leaf{CommonName: "release", CRLs: []string{srv.URL + "/ca.crl"}}
	kept := notationtest.NewSigner(t, ca, leaf)
	revoked := notationtest.NewSigner(t, ca, leaf)
	list := ca.CRL(t, revoked.Chain[0])
	crl.Store(&list)

	reg := registrytest.StartInProcess(t, true)
	w := newWorld(t, reg, nil, harness.KeyPair{}, harness.KeyPair{})
	sign := func(s notationtest.Signer, tag string) string {
		img := reg.PushRandomImage(t, "notary", tag)
		notationtest.Sign(t, img.Ref, s, notationtest.Options{})
		return img.Ref
	}
	keptImg, revokedImg := sign(kept, "kept"), sign(revoked, "revoked")
	policy := func(revocation string) *verify.Compiled {
		return verifytest.Compile(t, verify.Policy{Name: "notary", Authorities: []verify.Authority{{Name: "release",
			Notation: &verify.Notation{CAs: []*x509.Certificate{root.Cert}, TrustedIdentities: []string{"*"}, Revocation: revocation}}}})
	}

	verifytest.WantVerified(t, w.check(t, keptImg, policy(""), check.Options{}))
	verifytest.WantDenied(t, w.check(t, revokedImg, policy(""), check.Options{}), "notary signature revocation", verify.ErrUntrustedCertificate)
	res := w.check(t, revokedImg, policy("log"), check.Options{})
	verifytest.WantVerified(t, res)
	if notes := res.Authorities[0].Signatures[0].Notes; len(notes) != 1 || !strings.HasPrefix(notes[0], "revocation (logged") {
		t.Errorf("notes %q, want the revocation logged", notes)
	}
	verifytest.WantVerified(t, w.check(t, revokedImg, policy("skip"), check.Options{}))

	// The CRL cannot be fetched: the status is unknown.
	crl.Store(nil)
	verifytest.WantDenied(t, w.check(t, keptImg, policy(""), check.Options{}), "notary signature revocation", verify.ErrUntrustedCertificate)
	verifytest.WantVerified(t, w.check(t, keptImg, policy("skip"), check.Options{}))
}

// TestNotationRevocationOCSP: a signing certificate that names an OCSP
// responder is checked with it (here a loopback responder of the issuing
// CA): good is verified, revoked is denied.
func TestNotationRevocationOCSP(t *testing.T) {
	root := pkitest.NewRoot(t, "Notary Root CA")
	ca := root.Intermediate(t, "Notary Signing CA")
	var revokedSerial atomic.Pointer[big.Int]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// RFC 6960 A.1: a request by GET is base64 in the path; by POST,
		// the body.
		var body []byte
		var err error
		if r.Method == http.MethodGet {
			var p string
			if p, err = url.PathUnescape(strings.TrimPrefix(r.URL.EscapedPath(), "/")); err == nil {
				body, err = base64.StdEncoding.DecodeString(p)
			}
		} else {
			body, err = io.ReadAll(io.LimitReader(r.Body, 1<<16))
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req, err := ocsp.ParseRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		tmpl := ocsp.Response{Status: ocsp.Good, SerialNumber: req.SerialNumber, ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour)}
		if rs := revokedSerial.Load(); rs != nil && rs.Cmp(req.SerialNumber) == 0 {
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, time.Now().Add(-time.Minute), ocsp.KeyCompromise
		}
		resp, err := ocsp.CreateResponse(ca.Cert, ca.Cert, tmpl, ca.Key)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	leaf := pkitest.Leaf{CommonName: "release", OCSP: []string{srv.URL}}
	kept := notationtest.NewSigner(t, ca, leaf)
	revoked := notationtest.NewSigner(t, ca, leaf)
	revokedSerial.Store(revoked.Chain[0].SerialNumber)

	reg := registrytest.StartInProcess(t, true)
	w := newWorld(t, reg, nil, harness.KeyPair{}, harness.KeyPair{})
	sign := func(s notationtest.Signer, tag string) string {
		img := reg.PushRandomImage(t, "notary", tag)
		notationtest.Sign(t, img.Ref, s, notationtest.Options{})
		return img.Ref
	}
	policy := verifytest.Compile(t, verify.Policy{Name: "notary", Authorities: []verify.Authority{{Name: "release",
		Notation: &verify.Notation{CAs: []*x509.Certificate{root.Cert}, TrustedIdentities: []string{"*"}}}}})
	verifytest.WantVerified(t, w.check(t, sign(kept, "kept"), policy, check.Options{}))
	verifytest.WantDenied(t, w.check(t, sign(revoked, "revoked"), policy, check.Options{}), "notary signature revocation", verify.ErrUntrustedCertificate)
}
