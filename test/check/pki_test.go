package check_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// TestCosignCertificateSignatures verifies images the real cosign CLI
// signed with a certificate from an enterprise CA (cosign sign --key
// --certificate --certificate-chain), in both storage formats, with a
// certificate authority; and denies, saying which check failed, an
// untrusted CA, a missing intermediate, another identity, an expired
// certificate and a signature made with the key alone. (cosign refuses to
// sign with a certificate without the code-signing usage: the verify
// package's tests cover that one.)
func TestCosignCertificateSignatures(t *testing.T) {
	cosign := harness.NewCosign(t)
	key, other2 := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	pub := keyOf(t, key).Key
	reg := registrytest.StartInProcess(t, true)
	w := newWorld(t, reg, cosign, key, key)

	root := pkitest.NewRoot(t, "Example Root CA")
	inter := root.Intermediate(t, "Example Code Signing CA")
	other := pkitest.NewRoot(t, "Other Root CA")
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(pkitest.PEM(certs...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	chain := write("chain.pem", inter.Cert, root.Cert)
	leaf := write("leaf.pem", inter.Issue(t, pub, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}, URIs: []string{"https://ci.example.com/pipelines/release"}}))
	expired := write("expired.pem", inter.Issue(t, pub, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"},
		NotBefore: time.Now().Add(-3 * time.Hour), NotAfter: time.Now().Add(-2 * time.Hour)}))

	policy := func(roots []*x509.Certificate, intermediates []*x509.Certificate, ids ...verify.CertIdentity) *verify.Compiled {
		return verifytest.Compile(t, verify.Policy{Name: "pki", Authorities: []verify.Authority{{Name: "corp-ca", InsecureIgnoreTlog: true,
			Certificate: &verify.Certificate{Roots: roots, Intermediates: intermediates, Identities: ids}}}})
	}
	release := verify.CertIdentity{Email: "release@example.com"}
	good := policy([]*x509.Certificate{root.Cert}, []*x509.Certificate{inter.Cert}, release)

	for _, f := range harness.Formats {
		t.Run(f.String(), func(t *testing.T) {
			repo := "pki-" + f.String()
			sign := func(tag, cert string) registrytest.Image {
				img := reg.PushRandomImage(t, repo, tag)
				args := []string{}
				if cert != "" {
					args = append(args, "--certificate", cert, "--certificate-chain", chain)
				}
				cosign.Sign(t, img.Ref, key, f, args...)
				return img
			}
			signed := sign("signed", leaf)

			t.Run("trusted CA and identity", func(t *testing.T) {
				res := w.check(t, signed.Ref, good, check.Options{})
				verifytest.WantVerified(t, res)
				sig := res.Authorities[0].Signatures[0]
				if sig.Subject != "CN=release,O=Example Corp" || sig.Issuer != "CN=Example Code Signing CA,O=Example Corp" {
					t.Errorf("signature credited to subject %q issuer %q", sig.Subject, sig.Issuer)
				}
			})
			t.Run("any identity field, anchored expressions", func(t *testing.T) {
				verifytest.WantVerified(t, w.check(t, signed.Ref, policy([]*x509.Certificate{root.Cert}, []*x509.Certificate{inter.Cert},
					verify.CertIdentity{Email: "someone@example.com"},
					verify.CertIdentity{URIRegExp: `https://ci\.example\.com/pipelines/.+`, Subject: "CN=release,O=Example Corp"}), check.Options{}))
				verifytest.WantDenied(t, w.check(t, signed.Ref, policy([]*x509.Certificate{root.Cert}, []*x509.Certificate{inter.Cert},
					verify.CertIdentity{EmailRegExp: `release@example\.co`}), check.Options{}), "does not match", verify.ErrIdentityMismatch)
			})
			t.Run("another identity", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, signed.Ref, policy([]*x509.Certificate{root.Cert}, []*x509.Certificate{inter.Cert},
					verify.CertIdentity{Email: "release@example.com", URI: "https://ci.example.com/pipelines/other"}), check.Options{}),
					"certificate (subject CN=release,O=Example Corp, SANs release@example.com, https://ci.example.com/pipelines/release) does not match", verify.ErrIdentityMismatch)
			})
			t.Run("untrusted CA", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, signed.Ref, policy([]*x509.Certificate{other.Cert}, nil, release), check.Options{}),
					"certificate signed by unknown authority", verify.ErrUntrustedCertificate)
			})
			t.Run("intermediate not given", func(t *testing.T) {
				// The chain the signature carries is not trusted.
				verifytest.WantDenied(t, w.check(t, signed.Ref, policy([]*x509.Certificate{root.Cert}, nil, release), check.Options{}),
					"certificate signed by unknown authority", verify.ErrUntrustedCertificate)
			})
			t.Run("expired certificate, no time of signing", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, sign("expired", expired).Ref, good, check.Options{}), "expired", verify.ErrUntrustedCertificate)
			})
			t.Run("attestation", func(t *testing.T) {
				attested := reg.PushRandomImage(t, repo, "attested")
				cosign.Attest(t, attested.Ref, key, "https://slsa.dev/provenance/v1", []byte(`{"builder":{"id":"https://ci.example.com"}}`), f,
					"--certificate", leaf, "--certificate-chain", chain)
				p := func(cond string) *verify.Compiled {
					return verifytest.Compile(t, verify.Policy{Name: "pki", Authorities: []verify.Authority{{Name: "corp-ca", InsecureIgnoreTlog: true,
						Certificate:  &verify.Certificate{Roots: []*x509.Certificate{root.Cert}, Intermediates: []*x509.Certificate{inter.Cert}, Identities: []verify.CertIdentity{release}},
						Attestations: []verify.Attestation{{Name: "provenance", PredicateType: "https://slsa.dev/provenance/v1", Conditions: []string{cond}}}}}})
				}
				verifytest.WantVerified(t, w.check(t, attested.Ref, p(`predicate.builder.id == "https://ci.example.com"`), check.Options{}))
				verifytest.WantDenied(t, w.check(t, attested.Ref, p(`predicate.builder.id == "https://other.example.com"`), check.Options{}), "", verify.ErrConditionFailed)
			})
			t.Run("threshold with distinct signers", func(t *testing.T) {
				// The key the certificate certifies, trusted also as a key:
				// both authorities pass on one signature, one signer.
				both := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
					{Name: "corp-ca", InsecureIgnoreTlog: true, Certificate: &verify.Certificate{Roots: []*x509.Certificate{root.Cert}, Intermediates: []*x509.Certificate{inter.Cert}, Identities: []verify.CertIdentity{release}}},
					{Name: "ci-key", InsecureIgnoreTlog: true, Keys: []verify.PublicKey{keyOf(t, key)}},
				}})
				verifytest.WantDenied(t, w.check(t, signed.Ref, both, check.Options{}), "1 of 2 required authorities passed with distinct signers", verify.ErrThreshold)
				// Another key's signature as well: two signers.
				cosign.Sign(t, signed.Ref, other2, f)
				two := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
					{Name: "corp-ca", InsecureIgnoreTlog: true, Certificate: &verify.Certificate{Roots: []*x509.Certificate{root.Cert}, Intermediates: []*x509.Certificate{inter.Cert}, Identities: []verify.CertIdentity{release}}},
					{Name: "ci-key", InsecureIgnoreTlog: true, Keys: []verify.PublicKey{keyOf(t, other2)}},
				}})
				verifytest.WantVerified(t, w.check(t, signed.Ref, two, check.Options{}))
			})
			t.Run("the key alone", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, sign("key-only", "").Ref, good, check.Options{}), "", verify.ErrUntrustedCertificate)
			})
		})
	}
}

// TestKeyAuthorityCertificateSignatures: a key authority decides by its
// key alone images the real cosign signed with a certificate (cosign sign
// --key --certificate --certificate-chain), in both storage formats, as
// cosign verify --key does: the certificate is neither trusted (its CA is
// nowhere in the policy) nor required, an expired one included; another
// key's signature is denied. With the transparency log required, a
// signature made without one is denied for want of a log entry.
func TestKeyAuthorityCertificateSignatures(t *testing.T) {
	cosign := harness.NewCosign(t)
	key, other := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	reg := registrytest.StartInProcess(t, true)
	w := newWorld(t, reg, cosign, key, other)

	root := pkitest.NewRoot(t, "Example Root CA")
	inter := root.Intermediate(t, "Example Code Signing CA")
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(pkitest.PEM(certs...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	chain := write("chain.pem", inter.Cert, root.Cert)
	leafFor := func(kp harness.KeyPair, name string, l pkitest.Leaf) string {
		return write(name, inter.Issue(t, keyOf(t, kp).Key, l))
	}
	leaf := leafFor(key, "leaf.pem", pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}})
	expired := leafFor(key, "expired.pem", pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"},
		NotBefore: time.Now().Add(-3 * time.Hour), NotAfter: time.Now().Add(-2 * time.Hour)})
	otherLeaf := leafFor(other, "other.pem", pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}})

	offline := verifytest.Compile(t, verify.Policy{Name: "key", Authorities: []verify.Authority{{Name: "ci", InsecureIgnoreTlog: true, Keys: []verify.PublicKey{keyOf(t, key)}}}})
	logged := verifytest.Compile(t, verify.Policy{Name: "key", Authorities: []verify.Authority{{Name: "ci", Keys: []verify.PublicKey{keyOf(t, key)},
		TrustedMaterial: sigstoretest.New(t).TrustedRoot()}}})
	for _, f := range harness.Formats {
		t.Run(f.String(), func(t *testing.T) {
			sign := func(tag string, kp harness.KeyPair, cert string) registrytest.Image {
				img := reg.PushRandomImage(t, "key-cert-"+f.String(), tag)
				cosign.Sign(t, img.Ref, kp, f, "--certificate", cert, "--certificate-chain", chain)
				return img
			}
			signed := sign("signed", key, leaf)
			t.Run("the key's signature with its certificate", func(t *testing.T) {
				res := w.check(t, signed.Ref, offline, check.Options{})
				verifytest.WantVerified(t, res)
				if got, want := res.Authorities[0].Signatures[0].Signer, "key "+keyOf(t, key).Fingerprint; got != want {
					t.Errorf("signer %q, want %q", got, want)
				}
			})
			t.Run("an expired certificate", func(t *testing.T) {
				verifytest.WantVerified(t, w.check(t, sign("expired", key, expired).Ref, offline, check.Options{}))
			})
			t.Run("another key's signature", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, sign("other", other, otherLeaf).Ref, offline, check.Options{}),
					"signature does not verify with the trusted key", verify.ErrBadSignature)
			})
			t.Run("log required", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, signed.Ref, logged, check.Options{}), "no entry of a transparency log in the trusted root verified", verify.ErrTransparencyLog)
			})
		})
	}
}

// TestCertificateAuthorityLoggedImages: images signed with a certificate of
// an enterprise CA and logged in a local Sigstore's transparency log (what
// the real cosign does with --certificate and a Rekor; cosign here cannot
// reach one), stored in both formats in the registry, verify with a
// certificate authority that requires the log, the result naming the
// certificate and the log entry; logged in a log the trust root does not
// hold, they are denied for want of a verified entry.
func TestCertificateAuthorityLoggedImages(t *testing.T) {
	s, stranger := sigstoretest.New(t), sigstoretest.New(t)
	w := &keylessWorld{world: newWorld(t, registrytest.StartInProcess(t, true), nil, harness.KeyPair{}, harness.KeyPair{}), s: s}
	root := pkitest.NewRoot(t, "Example Root CA")
	inter := root.Intermediate(t, "Example Code Signing CA")
	key := sigstoretest.NewKey(t)
	signer := &sigstoretest.CertificateSigner{Key: key, Chain: inter.Chain(),
		Cert: inter.Issue(t, &key.PublicKey, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}})}
	policy := verifytest.Compile(t, verify.Policy{Name: "pki", Authorities: []verify.Authority{{Name: "corp-ca", TrustedMaterial: s.TrustedRoot(),
		Certificate: &verify.Certificate{Roots: []*x509.Certificate{root.Cert}, Intermediates: []*x509.Certificate{inter.Cert},
			Identities: []verify.CertIdentity{{Email: "release@example.com"}}}}}})
	for _, f := range harness.Formats {
		t.Run(f.String(), func(t *testing.T) {
			repo := "pki-logged-" + f.String()
			img := w.reg.PushRandomImage(t, repo, "logged")
			w.sign(t, img, f, sigstoretest.SignOptions{Certificate: signer})
			res := w.check(t, img.Tag, policy, check.Options{})
			verifytest.WantVerified(t, res)
			sig := res.Authorities[0].Signatures[0]
			if sig.Signer != "certificate CN=release,O=Example Corp issued by CN=Example Code Signing CA,O=Example Corp" || sig.LogIndex == nil || *sig.LogIndex <= 1000 {
				t.Errorf("signature credited to %q, log index %v", sig.Signer, sig.LogIndex)
			}
			if len(sig.Timestamps) != 2 {
				t.Errorf("timestamps %+v, want the log's and the TSA's", sig.Timestamps)
			}

			elsewhere := w.reg.PushRandomImage(t, repo, "elsewhere")
			(&keylessWorld{world: w.world, s: stranger}).sign(t, elsewhere, f, sigstoretest.SignOptions{Certificate: signer, NoTimestamp: true})
			verifytest.WantDenied(t, w.check(t, elsewhere.Ref, policy, check.Options{}), "no entry of a transparency log in the trusted root verified", verify.ErrTransparencyLog)
		})
	}
}
