package verify_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// BenchmarkVerify measures the success path of one image signature for
// each kind of authority and what the bundle carries: sigstore-go's
// verification, then signet's checks. Run alone with
// `go test -run '^$' -bench . ./internal/verify/`.
func BenchmarkVerify(b *testing.B) {
	s := sigstoretest.New(b)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	pk, err := verify.NewPublicKey(&key.PublicKey)
	if err != nil {
		b.Fatal(err)
	}
	statement := sigstoretest.Statement(b, sigstoretest.CosignSignPredicateType, nil, repoName, digest)
	bundled := func(o sigstoretest.SignOptions) registry.Evidence {
		return evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.Bundle(b, statement, o), nil)
	}
	payload := sigstoretest.SimpleSigning(repoName, digest)
	noTSA := func(o sigstoretest.SignOptions) sigstoretest.SignOptions { o.NoTimestamp = true; return o }
	keyless := verify.Authority{Name: "release", Keyless: &verify.Keyless{Identities: []verify.Identity{releaseID}}, TrustedMaterial: s.TrustedRoot()}
	logged := verify.Authority{Name: "ci", Keys: []verify.PublicKey{pk}, TrustedMaterial: s.TrustedRoot()}
	offline := verify.Authority{Name: "ci", Keys: []verify.PublicKey{pk}, InsecureIgnoreTlog: true}
	ref, err := reference.Parse(repoName + "@" + digest)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		a    verify.Authority
		ev   registry.Evidence
	}{
		{"keyless bundle, log and TSA", keyless, bundled(release)},
		{"keyless bundle, log", keyless, bundled(noTSA(release))},
		{"keyless legacy signature", keyless, evidence(registry.LegacySignature, sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(b, payload, release))},
		{"key bundle, log and TSA", logged, bundled(sigstoretest.SignOptions{Key: key})},
		{"key bundle, log", logged, bundled(sigstoretest.SignOptions{Key: key, NoTimestamp: true})},
		{"key bundle, insecureIgnoreTlog", offline, bundled(sigstoretest.SignOptions{Key: key, NoTimestamp: true})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := verify.Compile(verify.Policy{Name: "bench", Authorities: []verify.Authority{bc.a}})
			if err != nil {
				b.Fatal(err)
			}
			req := verify.Request{Image: ref, Digest: digest, Evidence: []registry.Evidence{bc.ev}, ImageRepository: &imageRepo}
			b.ReportAllocs()
			for b.Loop() {
				if res := p.Verify(b.Context(), req); !res.Verified {
					b.Fatal(res.Err)
				}
			}
		})
	}
}
