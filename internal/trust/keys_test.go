package trust_test

import (
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/sigstoretest"
)

func pemCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

func pemKey(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// keysOf gives a Sigstore's material as a TrustRoot's keys would.
func keysOf(t *testing.T, s *sigstoretest.Sigstore) trust.Keys {
	t.Helper()
	tr := s.TrustedRoot()
	var k trust.Keys
	k.CertificateAuthorities = []trust.CertificateAuthority{{URI: sigstoretest.FulcioURL, CertChain: pemCerts(s.Chain()...)}}
	for _, l := range tr.RekorLogs() {
		// No Start: given keys often have no validity window.
		k.TransparencyLogs = append(k.TransparencyLogs, trust.LogKey{BaseURL: l.BaseURL, PublicKey: pemKey(t, l.PublicKey)})
	}
	for _, l := range tr.CTLogs() {
		k.CTLogs = append(k.CTLogs, trust.LogKey{BaseURL: l.BaseURL, PublicKey: pemKey(t, l.PublicKey)})
	}
	for _, a := range tr.TimestampingAuthorities() {
		tsa := a.(*root.SigstoreTimestampingAuthority)
		chain := append([]*x509.Certificate{tsa.Leaf}, tsa.Intermediates...)
		k.TimestampAuthorities = append(k.TimestampAuthorities, trust.CertificateAuthority{URI: tsa.URI, CertChain: pemCerts(append(chain, tsa.Root)...)})
	}
	return k
}

// TestKeysVerify: material given as keys verifies what the Sigstore signed,
// with every check (chain, SCT, tlog, TSA); another Sigstore's does not.
func TestKeysVerify(t *testing.T) {
	s := sigstoretest.New(t)
	m, err := keysOf(t, s).Material()
	if err != nil {
		t.Fatal(err)
	}
	sum := trust.Describe(m.TrustedRoot, s.TrustedRoot().FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority).Root.NotBefore.Add(1))
	if sum.Current != (trust.Counts{CertificateAuthorities: 1, TransparencyLogs: 1, CTLogs: 1, TimestampAuthorities: 1}) {
		t.Errorf("current: %+v, want one of each", sum.Current)
	}
	const digest = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
	o := sigstoretest.Release()
	bjson := s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, "registry.example/acme/app", digest), o)
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bjson); err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	id, err := sgverify.NewShortCertificateIdentity(o.Issuer, "", o.Identity, "")
	if err != nil {
		t.Fatal(err)
	}
	policy := sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", raw), sgverify.WithCertificateIdentity(id))
	verifyWith := func(tm root.TrustedMaterial) error {
		v, err := sgverify.NewVerifier(tm, sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1), sgverify.WithSignedCertificateTimestamps(1))
		if err != nil {
			return err
		}
		_, err = v.Verify(&b, policy)
		return err
	}
	if err := verifyWith(m.TrustedRoot); err != nil {
		t.Fatalf("verifying with keys: %v", err)
	}
	other, err := keysOf(t, sigstoretest.New(t)).Material()
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyWith(other.TrustedRoot); err == nil {
		t.Fatal("another Sigstore's keys verified the bundle")
	}
}

func TestKeysInvalid(t *testing.T) {
	tests := []struct {
		name string
		keys trust.Keys
		want string
	}{
		{"empty", trust.Keys{}, "no keys"},
		{"bad chain", trust.Keys{CertificateAuthorities: []trust.CertificateAuthority{{CertChain: []byte("nope")}}}, "certificateAuthorities[0]: certChain: not PEM"},
		{"key as chain", trust.Keys{TimestampAuthorities: []trust.CertificateAuthority{{CertChain: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})}}}, "timestampAuthorities[0]: certChain: a PUBLIC KEY PEM block"},
		{"bad log key", trust.Keys{CTLogs: []trust.LogKey{{PublicKey: []byte("x")}}}, "ctLogs[0].publicKey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.keys.Material()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
