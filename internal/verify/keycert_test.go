package verify_test

import (
	"crypto/x509"
	"encoding/pem"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// leafOf is the certificate a signature carries.
func leafOf(t *testing.T, ev registry.Evidence) *x509.Certificate {
	t.Helper()
	var der []byte
	if ev.Kind == registry.LegacySignature {
		b, _ := pem.Decode([]byte(ev.Annotations["dev.sigstore.cosign/certificate"]))
		if b == nil {
			t.Fatal("no certificate annotation")
		}
		der = b.Bytes
	} else {
		pb := new(protobundle.Bundle)
		if err := protojson.Unmarshal(ev.Content, pb); err != nil {
			t.Fatal(err)
		}
		der = pb.GetVerificationMaterial().GetCertificate().GetRawBytes()
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestKeyAuthorityCertificateCarryingSignatures: a key authority decides
// by its key alone whether a signature carries a certificate (cosign sign
// --key --certificate), as cosign verify --key does: the certificate is
// neither trusted (a certificate of a Fulcio the trust root does not
// hold) nor required. The
// log entry of such a signature names the certificate, which a key cannot
// be compared with: with the log required the denial says so and what to
// do; under insecureIgnoreTlog the entry goes with the certificate.
func TestKeyAuthorityCertificateCarryingSignatures(t *testing.T) {
	// The signatures are made and logged by signer; the trust root of the
	// authority is other's, unless the log is required.
	other, signer := sigstoretest.New(t), sigstoretest.New(t)
	o := release
	o.NoTimestamp = true // a timestamp must verify with the trust root; signer's TSA is not other's
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			ev := signature(t, signer, f, digest, o)
			key, err := verify.NewPublicKey(leafOf(t, ev).PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			another, err := verify.NewPublicKey(leafOf(t, signature(t, signer, f, digest, o)).PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			policy := func(k verify.PublicKey, ignoreTlog bool) *verify.Compiled {
				tm := signer.TrustedRoot()
				if ignoreTlog {
					tm = other.TrustedRoot()
				}
				return verifytest.Compile(t, verify.Policy{Name: "key", Authorities: []verify.Authority{{Name: "ci",
					Keys: []verify.PublicKey{k}, TrustedMaterial: tm, InsecureIgnoreTlog: ignoreTlog}}})
			}
			res := run(t, policy(key, true), ev)
			verifytest.WantVerified(t, res)
			if got := res.Authorities[0].Signatures[0].Signer; got != "key "+key.Fingerprint {
				t.Errorf("signer %q, want the key", got)
			}
			verifytest.WantDenied(t, run(t, policy(another, true), ev), "signature does not verify with the trusted key", verify.ErrBadSignature)
			verifytest.WantDenied(t, run(t, policy(key, false), ev),
				"its transparency log entry names that certificate, not the key, so a key authority cannot verify the entry: trust the certificate's CA with a certificate authority, or set insecureIgnoreTlog", verify.ErrTransparencyLog)
			verifytest.WantDenied(t, run(t, policy(another, false), ev), "signature does not verify with the trusted key", verify.ErrBadSignature)
			// Without a trust root (only under insecureIgnoreTlog) too.
			p := verifytest.Compile(t, verify.Policy{Name: "key", Authorities: []verify.Authority{{Name: "ci", Keys: []verify.PublicKey{key}, InsecureIgnoreTlog: true}}})
			verifytest.WantVerified(t, run(t, p, ev))
		})
	}
}
