package bench

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/pkitest"
)

// inProcessPKI: signet's whole check of an image the real cosign signed
// with an enterprise-CA certificate (bundle format; chain, identity,
// digest binding) under a certificate authority, against sigstore-go
// parsing and verifying the same bundle with the same CA alone.
func (w *world) inProcessPKI(tb testing.TB, full bool) Entry {
	root := pkitest.NewRoot(tb, "Bench Root CA")
	inter := root.Intermediate(tb, "Bench Code Signing CA")
	dir := tb.TempDir()
	leaf := filepath.Join(dir, "leaf.pem")
	chain := filepath.Join(dir, "chain.pem")
	for path, pem := range map[string]string{
		leaf:  pkitest.PEM(inter.Issue(tb, w.pub.Key, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}})),
		chain: pkitest.PEM(inter.Cert, root.Cert),
	} {
		if err := os.WriteFile(path, []byte(pem), 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	img := w.reg.PushRandomImage(tb, "bench-pki", "v1")
	w.cosign.Sign(tb, img.Ref, w.key, harness.Bundle, "--certificate", leaf, "--certificate-chain", chain)
	policy, err := verify.Compile(verify.Policy{Name: "bench-pki", Authorities: []verify.Authority{{Name: "corp-ca", InsecureIgnoreTlog: true,
		Certificate: &verify.Certificate{Roots: []*x509.Certificate{root.Cert}, Intermediates: []*x509.Certificate{inter.Cert},
			Identities: []verify.CertIdentity{{Email: "release@example.com"}}}}}})
	if err != nil {
		tb.Fatal(err)
	}
	fetched := fetchImage(tb, img.Ref)
	if len(fetched.Evidence) != 1 || fetched.Evidence[0].Kind != registry.SigstoreBundle {
		tb.Fatalf("want one bundle, found %v", fetched.Evidence)
	}
	signet := func(b *testing.B) {
		for b.Loop() {
			if res := check.Evaluate(b.Context(), fetched, policy); !res.Verified {
				b.Fatal(res.Err)
			}
		}
	}
	r, bare := interleaved(tb, full, signet, func(b *testing.B) { barePKIVerify(b, fetched.Evidence[0].Content, img.Digest, root.Cert, inter.Cert) })
	e := newEntry("verify enterprise-CA certificate bundle in process", "ns/op", float64(r.NsPerOp()), float64(bare.NsPerOp()), "sigstore-go parse + Verify of the same bundle with the same CA", 1.2)
	e.Allocs = r.AllocsPerOp()
	return e
}

// barePKIVerify is the floor: sigstore-go parsing the bundle and verifying
// it against the CA and the image digest. cosign writes the chain into a
// v0.3 bundle, which sigstore-go refuses; the leaf is moved to the
// certificate field once, before timing, as signet does.
func barePKIVerify(b *testing.B, content []byte, digest string, rootCert, interCert *x509.Certificate) {
	pb := new(protobundle.Bundle)
	if err := protojson.Unmarshal(content, pb); err != nil {
		b.Fatal(err)
	}
	if chain := pb.GetVerificationMaterial().GetX509CertificateChain(); chain != nil {
		pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_Certificate{Certificate: chain.GetCertificates()[0]}
	}
	fixed, err := protojson.Marshal(pb)
	if err != nil {
		b.Fatal(err)
	}
	tm := &caMaterial{cas: []root.CertificateAuthority{&root.FulcioCertificateAuthority{Root: rootCert, Intermediates: []*x509.Certificate{interCert}}}}
	v, err := sgverify.NewVerifier(tm, sgverify.WithCurrentTime())
	if err != nil {
		b.Fatal(err)
	}
	raw, err := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		var bn bundle.Bundle
		if err := bn.UnmarshalJSON(fixed); err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(&bn, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", raw), sgverify.WithoutIdentitiesUnsafe())); err != nil {
			b.Fatal(err)
		}
	}
}

// caMaterial trusts certificate authorities alone.
type caMaterial struct {
	root.BaseTrustedMaterial
	cas []root.CertificateAuthority
}

func (m *caMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority { return m.cas }

// fetchImage resolves ref in a plain-HTTP registry and fetches its
// evidence, for benchmarks that verify in process.
func fetchImage(tb testing.TB, ref string) *check.Image {
	tb.Helper()
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		tb.Fatal(err)
	}
	r, err := reference.Parse(ref)
	if err != nil {
		tb.Fatal(err)
	}
	img, err := check.Fetch(context.Background(), rc, r, check.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return img
}
