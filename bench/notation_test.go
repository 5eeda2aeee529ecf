package bench

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"testing"

	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/truststore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/notationtest"
	"github.com/signet-dev/signet/test/pkitest"
)

// inProcessNotation: signet's whole check of an image signed by the Notary
// Project's library (JWS) under a notation authority, against notation-go's
// verifier verifying the same envelope with the same trust policy alone.
func (w *world) inProcessNotation(tb testing.TB, full bool) Entry {
	root := pkitest.NewRoot(tb, "Bench Notary Root")
	signer := notationtest.NewSigner(tb, root.Intermediate(tb, "Bench Notary CA"), pkitest.Leaf{CommonName: "release"})
	img := w.reg.PushRandomImage(tb, "bench-notary", "v1")
	sig := notationtest.Sign(tb, img.Ref, signer, notationtest.Options{Format: notationtest.JWS})
	policy, err := verify.Compile(verify.Policy{Name: "bench-notary", Authorities: []verify.Authority{{Name: "release",
		Notation: &verify.Notation{CAs: []*x509.Certificate{root.Cert}, TrustedIdentities: []string{signer.Identity()}}}}})
	if err != nil {
		tb.Fatal(err)
	}
	fetched := fetchImage(tb, img.Ref)
	signet := func(b *testing.B) {
		for b.Loop() {
			if res := check.Evaluate(b.Context(), fetched, policy); !res.Verified {
				b.Fatal(res.Err)
			}
		}
	}
	trust := notationtest.Trust{Roots: []*x509.Certificate{root.Cert}, Identities: []string{signer.Identity()}}
	bare := func(b *testing.B) { bareNotationVerify(b, trust, img.Ref, sig) }
	r, base := interleaved(tb, full, signet, bare)
	e := newEntry("verify Notary signature in process", "ns/op", float64(r.NsPerOp()), float64(base.NsPerOp()), "notation-go's verifier on the same envelope and trust policy", 1.2)
	e.Allocs = r.AllocsPerOp()
	return e
}

// bareNotationVerify is the floor: notation-go's verifier on the envelope,
// for the descriptor the signature names (read once, before timing).
func bareNotationVerify(b *testing.B, trust notationtest.Trust, ref string, sig notationtest.Signature) {
	env, err := signature.ParseEnvelope(sig.MediaType, sig.Envelope)
	if err != nil {
		b.Fatal(err)
	}
	content, err := env.Content()
	if err != nil {
		b.Fatal(err)
	}
	var payload struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}
	if err := json.Unmarshal(content.Payload.Content, &payload); err != nil {
		b.Fatal(err)
	}
	v, err := verifier.New(trust.Policy(), trustStore{"ca:test": trust.Roots}, nil)
	if err != nil {
		b.Fatal(err)
	}
	opts := notation.VerifierVerifyOptions{ArtifactReference: ref, SignatureMediaType: sig.MediaType}
	for b.Loop() {
		if _, err := v.Verify(b.Context(), payload.TargetArtifact, sig.Envelope, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// trustStore serves certificates by "type:name".
type trustStore map[string][]*x509.Certificate

func (s trustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	return s[string(t)+":"+name], nil
}
