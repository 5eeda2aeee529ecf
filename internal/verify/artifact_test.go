package verify_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

func parseBundle(t *testing.T, raw []byte) *bundle.Bundle {
	t.Helper()
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		t.Fatal(err)
	}
	return &b
}

// editRaw rewrites a bundle's JSON with edit.
func editRaw(t *testing.T, raw []byte, edit func(*protobundle.Bundle)) []byte {
	t.Helper()
	return editBundle(t, evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, raw, nil), edit).Content
}

func content(b []byte) verify.Artifact {
	return verify.ArtifactContent(bytes.NewReader(b), int64(len(b)))
}

func artifactDigest(t *testing.T, b []byte) verify.Artifact {
	t.Helper()
	sum := sha256.Sum256(b)
	a, err := verify.ArtifactDigest("sha256:" + hex.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyAuthority(t *testing.T, k crypto.PublicKey, tm *sigstoretest.Sigstore, ignoreTlog bool) verify.Authority {
	t.Helper()
	pk, err := verify.NewPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	a := verify.Authority{Name: "ci", Keys: []verify.PublicKey{pk}, InsecureIgnoreTlog: ignoreTlog}
	if tm != nil {
		a.TrustedMaterial = tm.TrustedRoot()
	}
	return a
}

// withTimestampOf gives a bundle the RFC 3161 timestamps of another: they
// stamp another signature, by a timestamp authority that may not be
// trusted.
func withTimestampOf(t *testing.T, raw, donor []byte) []byte {
	t.Helper()
	var theirs protobundle.Bundle
	if err := protojson.Unmarshal(donor, &theirs); err != nil {
		t.Fatal(err)
	}
	return editRaw(t, raw, func(pb *protobundle.Bundle) {
		pb.VerificationMaterial.TimestampVerificationData = theirs.VerificationMaterial.TimestampVerificationData
	})
}

// TestVerifyArtifact: a bundle for a file or blob goes through the steps
// of image evidence, bound to the artifact's content or digest, and is
// denied with the kind of the step that fails.
func TestVerifyArtifact(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	other := sigstoretest.New(t) // a Sigstore nobody trusts
	file, otherFile := []byte("release 1.2.3\n"), []byte("release 1.2.4\n")
	sum := sha256.Sum256(file)
	fileDigest := "sha256:" + hex.EncodeToString(sum[:])
	key, otherKey := newECKey(t), newECKey(t)

	statement := sigstoretest.Statement(t, provenance, nil, "artifact.txt", fileDigest)
	message := s.MessageBundle(t, file, release)
	dsse := s.Bundle(t, statement, release)
	noSCT, v2NoTSA := release, release
	noSCT.NoSCT = true
	v2NoTSA.RekorV2, v2NoTSA.NoTimestamp = true, true
	byKey := s.MessageBundle(t, file, sigstoretest.SignOptions{Key: key})
	byKeyNoTSA := s.MessageBundle(t, file, sigstoretest.SignOptions{Key: key, NoTimestamp: true})
	offline := editRaw(t, byKeyNoTSA, func(pb *protobundle.Bundle) { pb.VerificationMaterial.TlogEntries = nil })

	keyless := keyless(s, "release", releaseID)
	logged := keyAuthority(t, &key.PublicKey, s, false)
	for _, tc := range []struct {
		name      string
		authority verify.Authority
		bundle    []byte
		artifact  verify.Artifact
		kind      error // nil: verified
		reason    string
	}{
		{"keyless message signature, content", keyless, message, content(file), nil, ""},
		{"keyless message signature, digest", keyless, message, artifactDigest(t, file), nil, ""},
		{"keyless DSSE, content", keyless, dsse, content(file), nil, ""},
		{"keyless DSSE, digest", keyless, dsse, artifactDigest(t, file), nil, ""},
		{"key, log and timestamp", logged, byKey, content(file), nil, ""},
		{"key, offline, insecureIgnoreTlog", keyAuthority(t, &key.PublicKey, s, true), offline, content(file), nil, ""},

		{"message signature of another artifact", keyless, message, content(otherFile), verify.ErrDigestMismatch,
			"signature is for " + fileDigest + ", not the artifact's sha256:"},
		{"message signature of another digest", keyless, message, artifactDigest(t, otherFile), verify.ErrDigestMismatch,
			"signature is for " + fileDigest + ", not the artifact's sha256:"},
		{"statement of another artifact", keyless, dsse, content(otherFile), verify.ErrDigestMismatch,
			"signed statement is for another artifact: no subject has the artifact's digest sha256:"},
		{"another identity", keyless, s.MessageBundle(t, file, mail), content(file), verify.ErrIdentityMismatch,
			"certificate identity (issuer " + sigstoretest.MailIssuer + ", subject " + sigstoretest.MailSubject + ") does not match identities [issuer " + sigstoretest.GitHubIssuer + ", subject " + sigstoretest.ReleaseWorkflow + "]"},
		{"no SCT", keyless, s.MessageBundle(t, file, noSCT), content(file), verify.ErrUntrustedCertificate, "failed to verify signed certificate timestamp"},
		{"keyless, no log entry", keyless, editRaw(t, message, func(pb *protobundle.Bundle) { pb.VerificationMaterial.TlogEntries = nil }), content(file),
			verify.ErrTransparencyLog, "no entry of a transparency log in the trusted root verified"},
		{"signed by another Sigstore", keyless, other.MessageBundle(t, file, release), content(file), verify.ErrTransparencyLog, "the log is not in the trusted root"},
		{"Rekor v2 without a timestamp", keyless, s.MessageBundle(t, file, v2NoTSA), content(file), verify.ErrTimestamp, "no verified time of signing: "},
		{"another key", keyAuthority(t, &otherKey.PublicKey, s, false), byKey, content(file), verify.ErrBadSignature,
			"signature does not verify with the trusted key (wrong key or tampered payload)"},
		{"key, no log entry", logged, offline, content(file), verify.ErrTransparencyLog, "no entry of a transparency log in the trusted root verified"},
		{"key, a timestamp that does not verify", logged, withTimestampOf(t, byKey, other.MessageBundle(t, file, sigstoretest.SignOptions{Key: key})), content(file),
			verify.ErrTimestamp, "RFC 3161 timestamp of the signature does not verify with a trusted timestamp authority: "},
		{"key, insecureIgnoreTlog, a log entry that does not verify", keyAuthority(t, &key.PublicKey, s, true),
			other.MessageBundle(t, file, sigstoretest.SignOptions{Key: key, NoTimestamp: true}), content(file), verify.ErrTransparencyLog, "the log is not in the trusted root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := verifytest.Compile(t, verify.Policy{Name: "artifact", Authorities: []verify.Authority{tc.authority}})
			sig, err := p.VerifyArtifact(parseBundle(t, tc.bundle), tc.artifact)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("want verified, got %v", err)
				}
				if sig.Signer == "" || sig.Artifact != fileDigest || sig.Format != "sigstore bundle" {
					t.Errorf("signature %+v", sig)
				}
				return
			}
			if err == nil {
				t.Fatalf("want a denial of kind %q, verified: %+v", tc.kind, sig)
			}
			var d *verify.Denial
			if !errors.As(err, &d) || !errors.Is(err, tc.kind) || !slices.Equal(verify.Codes(err), verify.Codes(tc.kind)) {
				t.Errorf("denial %q has kinds %v, want %v", err, verify.Codes(err), verify.Codes(tc.kind))
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("denial %q does not say %q", err, tc.reason)
			}
		})
	}
}

// TestVerifyArtifactSignature: what a verified bundle is credited with,
// as for an image signature.
func TestVerifyArtifactSignature(t *testing.T) {
	s := sigstoretest.New(t)
	file := []byte("release 1.2.3\n")
	sum := sha256.Sum256(file)
	statement := sigstoretest.Statement(t, provenance, nil, "artifact.txt", "sha256:"+hex.EncodeToString(sum[:]))
	p := verifytest.Compile(t, verify.Policy{Name: "artifact", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	sig, err := p.VerifyArtifact(parseBundle(t, s.Bundle(t, statement, release)), content(file))
	if err != nil {
		t.Fatal(err)
	}
	if sig.Issuer != sigstoretest.GitHubIssuer || sig.Subject != sigstoretest.ReleaseWorkflow || sig.PredicateType != provenance || sig.LogIndex == nil || len(sig.Timestamps) != 2 {
		t.Errorf("credited as %+v", sig)
	}
}

// TestVerifyArtifactSameReasons: a bundle that fails a step shared with
// images is denied for the same reason, word for word, whether it is
// image evidence or an artifact's.
func TestVerifyArtifactSameReasons(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	file := []byte("release 1.2.3\n")
	v2NoTSA := release
	v2NoTSA.RekorV2, v2NoTSA.NoTimestamp = true, true
	for _, tc := range []struct {
		name      string
		authority verify.Authority
		o         sigstoretest.SignOptions
	}{
		{"another identity", keyless(s, "mail", mailID), release},
		{"no verified time of signing", keyless(s, "release", releaseID), v2NoTSA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := verifytest.Compile(t, verify.Policy{Name: "p", Authorities: []verify.Authority{tc.authority}})
			res := run(t, p, signature(t, s, bundled, digest, tc.o))
			if res.Verified || len(res.Authorities[0].Failures) != 1 {
				t.Fatalf("image: %+v", res)
			}
			_, err := p.VerifyArtifact(parseBundle(t, s.MessageBundle(t, file, tc.o)), content(file))
			if image := res.Authorities[0].Failures[0].Reason; err == nil || err.Error() != image {
				t.Errorf("artifact denied with %q, image with %q", err, image)
			}
		})
	}
}

// messageBundle is a v0.3 bundle of a message signature with a public key
// hint, no log entry and no timestamp: a signature made offline.
func messageBundle(t *testing.T, alg protocommon.HashAlgorithm, digest, sig []byte) *bundle.Bundle {
	t.Helper()
	mediaType, err := bundle.MediaTypeString("0.3")
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.NewBundle(&protobundle.Bundle{
		MediaType: mediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{Content: &protobundle.VerificationMaterial_PublicKey{
			PublicKey: &protocommon.PublicKeyIdentifier{Hint: "offline"},
		}},
		Content: &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: alg, Digest: digest},
			Signature:     sig,
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyArtifactDigestOnly: what cannot be checked against the
// artifact's sha256 digest alone is denied saying so: a message signature
// by an Ed25519 key, which signs the content itself (and verifies with
// it), and one over a digest of another algorithm.
func TestVerifyArtifactDigestOnly(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	file := []byte("release 1.2.3\n")
	sum := sha256.Sum256(file)
	p := verifytest.Compile(t, verify.Policy{Name: "offline", Authorities: []verify.Authority{keyAuthority(t, pub, nil, true)}})
	b := messageBundle(t, protocommon.HashAlgorithm_SHA2_256, sum[:], ed25519.Sign(priv, file))
	if _, err := p.VerifyArtifact(b, content(file)); err != nil {
		t.Fatalf("with the content: %v", err)
	}
	_, err = p.VerifyArtifact(b, artifactDigest(t, file))
	if !errors.Is(err, verify.ErrMalformed) || !strings.Contains(err.Error(), "verifies only against the artifact itself, not its digest") {
		t.Errorf("Ed25519, with the digest: %v", err)
	}

	sum384 := sha512.Sum384(file)
	b = messageBundle(t, protocommon.HashAlgorithm_SHA2_384, sum384[:], []byte("signature"))
	_, err = p.VerifyArtifact(b, artifactDigest(t, file))
	if !errors.Is(err, verify.ErrMalformed) || !strings.Contains(err.Error(), "the bundle signs a SHA2_384 digest") {
		t.Errorf("SHA-384, with the digest: %v", err)
	}
}

// TestVerifyArtifactPolicy: only a policy of one key or keyless authority
// without attestations verifies artifacts; a malformed digest is refused.
func TestVerifyArtifactPolicy(t *testing.T) {
	s := sigstoretest.New(t)
	file := []byte("release 1.2.3\n")
	b := parseBundle(t, s.MessageBundle(t, file, release))
	att := keyless(s, "release", releaseID)
	att.Attestations = []verify.Attestation{{PredicateType: provenance}}
	for _, tc := range []struct {
		name string
		p    verify.Policy
	}{
		{"static", verify.Policy{Authorities: []verify.Authority{{Static: &verify.Static{Pass: true}}}}},
		{"attestations", verify.Policy{Authorities: []verify.Authority{att}}},
		{"two authorities", verify.Policy{Authorities: []verify.Authority{keyless(s, "a", releaseID), keyless(s, "b", mailID)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifytest.Compile(t, tc.p).VerifyArtifact(b, content(file))
			if err == nil || errors.Is(err, verify.ErrDenied) || !strings.Contains(err.Error(), "needs a policy of one key or keyless authority without attestations") {
				t.Errorf("got %v", err)
			}
		})
	}
	for _, d := range []string{"sha256:abc", "sha512:" + strings.Repeat("0", 128), strings.Repeat("0", 64)} {
		if _, err := verify.ArtifactDigest(d); err == nil || !strings.Contains(err.Error(), "is not a sha256 digest") {
			t.Errorf("ArtifactDigest(%q): %v", d, err)
		}
	}
}
