package verify_test

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// corpPKI is an enterprise CA (a root and the intermediate that issues
// code-signing certificates) and the key of its signer, release@example.com.
type corpPKI struct {
	root, inter *pkitest.CA
	key         *ecdsa.PrivateKey
}

func newCorpPKI(t *testing.T) corpPKI {
	t.Helper()
	root := pkitest.NewRoot(t, "Example Root CA")
	return corpPKI{root: root, inter: root.Intermediate(t, "Example Code Signing CA"), key: sigstoretest.NewKey(t)}
}

// signer signs as release@example.com with a certificate of the CA valid
// from notBefore to notAfter (zero: an hour either side of now), carrying
// the CA's chain in legacy layers as cosign sign --certificate-chain does.
func (p corpPKI) signer(t *testing.T, notBefore, notAfter time.Time) *sigstoretest.CertificateSigner {
	t.Helper()
	cert := p.inter.Issue(t, &p.key.PublicKey, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}, NotBefore: notBefore, NotAfter: notAfter})
	return &sigstoretest.CertificateSigner{Cert: cert, Key: p.key, Chain: p.inter.Chain()}
}

// policy is a certificate authority trusting the CA for release@example.com,
// with tm's logs and timestamp authorities (a TrustRoot of trustRootRef).
func (p corpPKI) policy(t *testing.T, tm root.TrustedMaterial, ignoreTlog bool) *verify.Compiled {
	t.Helper()
	return verifytest.Compile(t, verify.Policy{Name: "pki", Authorities: []verify.Authority{{
		Name: "corp-ca", TrustedMaterial: tm, InsecureIgnoreTlog: ignoreTlog,
		Certificate: &verify.Certificate{
			Roots: []*x509.Certificate{p.root.Cert}, Intermediates: []*x509.Certificate{p.inter.Cert},
			Identities: []verify.CertIdentity{{Email: "release@example.com"}},
		},
	}}})
}

// loggedIndex is the log index the evidence's log entry gives.
func loggedIndex(t *testing.T, ev registry.Evidence) int64 {
	t.Helper()
	if ev.Kind != registry.LegacySignature {
		return logIndexOf(t, ev)
	}
	var rb struct {
		Payload struct {
			LogIndex int64 `json:"logIndex"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal([]byte(ev.Annotations[sigstoretest.AnnotationBundle]), &rb); err != nil {
		t.Fatal(err)
	}
	return rb.Payload.LogIndex
}

// withCertificate is ev carrying cert instead of the certificate it was
// signed and logged with.
func withCertificate(t *testing.T, ev registry.Evidence, cert *x509.Certificate) registry.Evidence {
	t.Helper()
	if ev.Kind == registry.LegacySignature {
		ann := map[string]string{}
		for k, v := range ev.Annotations {
			ann[k] = v
		}
		ann[sigstoretest.AnnotationCertificate] = pkitest.PEM(cert)
		return evidence(ev.Kind, ev.MediaType, ev.Content, ann)
	}
	return editBundle(t, ev, func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.GetCertificate().RawBytes = cert.Raw
	})
}

// withoutLogEntry is ev without its transparency log entry, as cosign
// sign --tlog-upload=false writes it.
func withoutLogEntry(t *testing.T, ev registry.Evidence) registry.Evidence {
	t.Helper()
	if ev.Kind == registry.LegacySignature {
		ann := map[string]string{}
		for k, v := range ev.Annotations {
			if k != sigstoretest.AnnotationBundle {
				ann[k] = v
			}
		}
		return evidence(ev.Kind, ev.MediaType, ev.Content, ann)
	}
	return editBundle(t, ev, func(pb *protobundle.Bundle) { pb.VerificationMaterial.TlogEntries = nil })
}

// TestCertificateAuthorityLogged: an image signed with a certificate of an
// enterprise CA (cosign sign --certificate, not Fulcio) and logged in a
// transparency log of the authority's trust root verifies with the log
// required, in both storage formats, with and without an RFC 3161
// timestamp; the result names the certificate, the entry's index and the
// log's integrated time. The log's time is the time of signing: a
// certificate that has expired since verifies.
func TestCertificateAuthorityLogged(t *testing.T) {
	s := sigstoretest.New(t)
	pki := newCorpPKI(t)
	p := pki.policy(t, s.TrustedRoot(), false)
	now := time.Now().Truncate(time.Second)
	for _, f := range formats {
		for _, tc := range []struct {
			name                string
			signedAt            time.Time
			notBefore, notAfter time.Time
			tsa                 bool
		}{
			{"valid now", now, time.Time{}, time.Time{}, false},
			{"valid now, timestamped", now, time.Time{}, time.Time{}, true},
			{"expired since the log integrated it", now.Add(-2 * time.Hour), now.Add(-3 * time.Hour), now.Add(-time.Hour), false},
			{"expired since the log integrated it and the TSA stamped it", now.Add(-2 * time.Hour), now.Add(-3 * time.Hour), now.Add(-time.Hour), true},
		} {
			t.Run(string(f)+", "+tc.name, func(t *testing.T) {
				o := sigstoretest.SignOptions{Certificate: pki.signer(t, tc.notBefore, tc.notAfter), IntegratedTime: tc.signedAt, NoTimestamp: !tc.tsa}
				ev := signature(t, s, f, digest, o)
				res := run(t, p, ev)
				verifytest.WantVerified(t, res)
				sig := res.Authorities[0].Signatures[0]
				if want := "certificate CN=release,O=Example Corp issued by CN=Example Code Signing CA,O=Example Corp"; sig.Signer != want {
					t.Errorf("signer %q, want %q", sig.Signer, want)
				}
				if want := loggedIndex(t, ev); sig.LogIndex == nil || *sig.LogIndex != want {
					t.Errorf("log index %v, want the entry's %d", sig.LogIndex, want)
				}
				want := map[string]string{"Tlog": sigstoretest.RekorURL}
				if tc.tsa {
					want["TimestampAuthority"] = sigstoretest.TSAURL
				}
				if len(sig.Timestamps) != len(want) {
					t.Errorf("timestamps %+v, want %v", sig.Timestamps, want)
				}
				for _, ts := range sig.Timestamps {
					if uri, ok := want[ts.Kind]; !ok || ts.URI != uri || !ts.Time.Equal(tc.signedAt) {
						t.Errorf("timestamp %+v, want one of %v at %s", ts, want, tc.signedAt)
					}
				}
			})
		}
	}
}

// TestCertificateAuthorityLogDenials: with the log required, a certificate
// authority denies, saying which check failed: a signature without a log
// entry, one logged in a log its trust root does not hold (or whose SET
// another key signed), one whose certificate was not valid when the log
// integrated it, and one whose entry names another certificate than the
// one it carries (same key, same identity, same CA: only the log tells
// them apart). The Fulcio of its trust root is not trusted for
// certificates. Under insecureIgnoreTlog with trusted material (as
// verify.Authority allows; package policy gives none then), an entry the
// signature carries must still verify, and none is needed.
func TestCertificateAuthorityLogDenials(t *testing.T) {
	s, other := sigstoretest.New(t), sigstoretest.New(t)
	pki := newCorpPKI(t)
	required, ignoring := pki.policy(t, s.TrustedRoot(), false), pki.policy(t, s.TrustedRoot(), true)
	now := time.Now()
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			good := sigstoretest.SignOptions{Certificate: pki.signer(t, time.Time{}, time.Time{}), NoTimestamp: true}
			forged := good
			forged.UntrustedRekorKey = true
			expired := good
			expired.Certificate = pki.signer(t, now.Add(-3*time.Hour), now.Add(-time.Hour))
			notYetValid := good
			notYetValid.Certificate = pki.signer(t, now.Add(time.Hour), now.Add(2*time.Hour))
			fulcio := sigstoretest.Release()
			fulcio.NoTimestamp = true
			for _, tc := range []struct {
				name   string
				ev     registry.Evidence
				policy *verify.Compiled
				kind   error
				denial string
			}{
				{"no log entry", withoutLogEntry(t, signature(t, s, f, digest, good)), required, verify.ErrTransparencyLog,
					"no entry of a transparency log in the trusted root verified: there is none, the log is not in the trusted root, or the entry's SET is signed by another key"},
				{"no log entry, a timestamp", withoutLogEntry(t, signature(t, s, f, digest, sigstoretest.SignOptions{Certificate: good.Certificate})), required, verify.ErrTransparencyLog,
					"no entry of a transparency log in the trusted root verified"},
				{"logged in a log not in the trust root", signature(t, other, f, digest, good), required, verify.ErrTransparencyLog,
					"no entry of a transparency log in the trusted root verified"},
				{"SET signed by another key", signature(t, s, f, digest, forged), required, verify.ErrTransparencyLog,
					"no entry of a transparency log in the trusted root verified"},
				{"certificate expired when logged", signature(t, s, f, digest, expired), required, verify.ErrTransparencyLog,
					"integrated time outside certificate validity"},
				{"certificate not yet valid when logged", signature(t, s, f, digest, notYetValid), required, verify.ErrTransparencyLog,
					"integrated time outside certificate validity"},
				{"entry names another certificate", withCertificate(t, signature(t, s, f, digest, good), pki.signer(t, time.Time{}, time.Time{}).Cert), required, verify.ErrTransparencyLog,
					"transparency log certificate does not match"},
				{"certificate of the trust root's Fulcio", signature(t, s, f, digest, fulcio), required, verify.ErrUntrustedCertificate,
					"certificate (subject , issued by CN=sigstore-test-intermediate,O=sigstore.test) is not trusted at "},
				{"insecureIgnoreTlog, logged in a log not in the trust root", signature(t, other, f, digest, good), ignoring, verify.ErrTransparencyLog,
					"no entry of a transparency log in the trusted root verified"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					res := run(t, tc.policy, tc.ev)
					verifytest.WantDenied(t, res, "denied by policy pki: authority corp-ca: ", tc.kind)
					verifytest.WantDenied(t, res, tc.denial, tc.kind)
					if ar := res.Authorities[0]; !errors.Is(ar.Err, tc.kind) {
						t.Errorf("authority %s: %v, want %q", ar.Name, ar.Err, tc.kind)
					}
				})
			}
			t.Run("insecureIgnoreTlog, no log entry", func(t *testing.T) {
				res := run(t, ignoring, withoutLogEntry(t, signature(t, s, f, digest, good)))
				verifytest.WantVerified(t, res)
				if sig := res.Authorities[0].Signatures[0]; sig.LogIndex != nil {
					t.Errorf("log index %d reported without a log entry", *sig.LogIndex)
				}
			})
		})
	}
}

// TestCertificateAuthorityRekorV2: a bundle signed with an enterprise CA's
// certificate and logged in a Rekor v2 log verifies by the entry's
// inclusion proof and checkpoint, dated by its RFC 3161 timestamp alone
// (a v2 entry has no integrated time): the result names the entry's index
// and the TSA's time. A certificate expired at the stamped time is not
// trusted; without a timestamp nothing dates the signature; an entry of
// another certificate does not verify.
func TestCertificateAuthorityRekorV2(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	pki := newCorpPKI(t)
	p := pki.policy(t, s.TrustedRoot(), false)
	now := time.Now().Truncate(time.Second)
	signedAt := now.Add(-2 * time.Hour)
	since := pki.signer(t, now.Add(-3*time.Hour), now.Add(-time.Hour)) // expired now, valid at signedAt

	ev := v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Certificate: since, IntegratedTime: signedAt})
	res := run(t, p, ev)
	verifytest.WantVerified(t, res)
	sig := res.Authorities[0].Signatures[0]
	if want := logIndexOf(t, ev); sig.LogIndex == nil || *sig.LogIndex != want {
		t.Errorf("log index %v, want the entry's %d", sig.LogIndex, want)
	}
	if len(sig.Timestamps) != 1 || sig.Timestamps[0].Kind != "TimestampAuthority" || sig.Timestamps[0].URI != sigstoretest.TSAURL || !sig.Timestamps[0].Time.Equal(signedAt) {
		t.Errorf("timestamps %+v, want only the TSA's at %s", sig.Timestamps, signedAt)
	}

	expired := v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Certificate: since})
	verifytest.WantDenied(t, run(t, p, expired), "certificate (subject CN=release,O=Example Corp, issued by CN=Example Code Signing CA,O=Example Corp) is not trusted at ", verify.ErrUntrustedCertificate)
	verifytest.WantDenied(t, run(t, p, expired), "x509: certificate has expired or is not yet valid", verify.ErrUntrustedCertificate)

	noTSA := v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Certificate: pki.signer(t, time.Time{}, time.Time{}), NoTimestamp: true})
	verifytest.WantDenied(t, run(t, p, noTSA), "no verified time of signing", verify.ErrTimestamp)

	swapped := withCertificate(t, v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Certificate: pki.signer(t, time.Time{}, time.Time{})}), pki.signer(t, time.Time{}, time.Time{}).Cert)
	verifytest.WantDenied(t, run(t, p, swapped), "transparency log inclusion proof does not lead to the root hash of the signed checkpoint", verify.ErrTransparencyLog)
}
