package sigstoretest_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/signet-dev/signet/test/sigstoretest"
)

func parseBundle(t *testing.T, raw []byte) *bundle.Bundle {
	t.Helper()
	var b bundle.Bundle
	if err := b.UnmarshalJSON(raw); err != nil {
		t.Fatalf("the bundle does not parse: %v", err)
	}
	return &b
}

// TestRekorV2 verifies bundles logged in the Rekor v2 log with sigstore-go:
// message signatures and DSSE envelopes, hashedrekord v0.0.2 entries whose
// inclusion proofs are real paths in a growing tree, dated only by the RFC
// 3161 timestamp; without it they have no verified time.
func TestRekorV2(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	tr := s.TrustedRoot()
	tl, ok := tr.RekorLogs()[s.RekorV2LogID()]
	if !ok || len(tr.RekorLogs()) != 2 || tl.BaseURL != sigstoretest.RekorV2URL {
		t.Fatalf("Rekor logs %v, want the v1 log and %s at %s", tr.RekorLogs(), s.RekorV2LogID(), sigstoretest.RekorV2URL)
	}
	if _, ok := tr.RekorLogs()[s.RekorLogID()]; !ok {
		t.Fatal("the v1 log is gone")
	}
	signedAt := time.Now().Add(-time.Hour).Truncate(time.Second)
	o := sigstoretest.SignOptions{Identity: sigstoretest.ReleaseWorkflow, Issuer: sigstoretest.GitHubIssuer, RekorV2: true, IntegratedTime: signedAt}
	artifact := []byte("a release artifact\n")
	statement := sigstoretest.Statement(t, "https://slsa.dev/provenance/v1", nil, "registry.example/acme/app", digest)
	raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))

	for range 3 { // the log grows: later entries have longer proofs
		for _, tc := range []struct {
			name     string
			bundle   func(o sigstoretest.SignOptions) []byte
			artifact sgverify.ArtifactPolicyOption
		}{
			{"message signature", func(o sigstoretest.SignOptions) []byte { return s.MessageBundle(t, artifact, o) }, sgverify.WithArtifact(bytes.NewReader(artifact))},
			{"DSSE", func(o sigstoretest.SignOptions) []byte { return s.Bundle(t, statement, o) }, sgverify.WithArtifactDigest("sha256", raw)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := parseBundle(t, tc.bundle(o))
				entries, err := b.TlogEntries()
				if err != nil || len(entries) != 1 {
					t.Fatalf("entries %v, %v", entries, err)
				}
				e := entries[0]
				tle := e.TransparencyLogEntry()
				if !e.IsRekorV2() || e.HasInclusionPromise() || !e.IntegratedTime().IsZero() || tle.KindVersion.Version != "0.0.2" || tle.KindVersion.Kind != "hashedrekord" {
					t.Fatalf("entry %v: want a hashedrekord v0.0.2 without SET or integrated time", tle)
				}
				if hex.EncodeToString(tle.LogId.KeyId) != s.RekorV2LogID() || tle.InclusionProof.TreeSize <= tle.LogIndex || tle.LogIndex < 5 {
					t.Errorf("log ID %x, index %d, tree size %d", tle.LogId.KeyId, tle.LogIndex, tle.InclusionProof.TreeSize)
				}
				if !strings.HasPrefix(tle.InclusionProof.Checkpoint.Envelope, "log2025-1.rekor.sigstore.test\n") {
					t.Errorf("checkpoint %q: want the log's host name as origin", tle.InclusionProof.Checkpoint.Envelope)
				}
				res, err := verifier(t, tr, true).Verify(b, identityPolicy(t, tc.artifact, o.Issuer, o.Identity))
				checkResult(t, res, err, "", 1)
				if ts := res.VerifiedTimestamps[0]; ts.Type != "TimestampAuthority" || !ts.Timestamp.Equal(signedAt) {
					t.Errorf("verified timestamp %+v, want the TSA's at %s", ts, signedAt)
				}

				noTSA := o
				noTSA.NoTimestamp = true
				_, err = verifier(t, tr, true).Verify(parseBundle(t, tc.bundle(noTSA)), identityPolicy(t, tc.artifact, o.Issuer, o.Identity))
				checkResult(t, nil, err, "threshold not met for verified signed & log entry integrated timestamps: 0 < 1", 0)

				forged := o
				forged.UntrustedRekorKey = true
				_, err = verifier(t, tr, true).Verify(parseBundle(t, tc.bundle(forged)), identityPolicy(t, tc.artifact, o.Issuer, o.Identity))
				checkResult(t, nil, err, "unverified checkpoint signature", 0)

				// Another Sigstore's trusted root does not know the log.
				_, err = verifier(t, sigstoretest.New(t, sigstoretest.WithRekorV2()).TrustedRoot(), false).Verify(parseBundle(t, tc.bundle(o)), identityPolicy(t, tc.artifact, o.Issuer, o.Identity))
				if err == nil {
					t.Error("verified with another Sigstore's trusted root")
				}
			})
		}
	}
}

// TestBundleKey: a bundle signed with a bare key carries its hint and
// verifies with the key, in either log.
func TestBundleKey(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSAVerifier(&key.PublicKey, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	keys := root.NewTrustedPublicKeyMaterial(func(hint string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
	})
	v, err := sgverify.NewVerifier(root.TrustedMaterialCollection{keys, s.TrustedRoot()}, sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	if err != nil {
		t.Fatal(err)
	}
	artifact := []byte("x")
	for _, v2 := range []bool{false, true} {
		b := parseBundle(t, s.MessageBundle(t, artifact, sigstoretest.SignOptions{Key: key, RekorV2: v2}))
		if hint := b.VerificationMaterial.GetPublicKey().GetHint(); hint != sigstoretest.KeyHint(t, &key.PublicKey) {
			t.Errorf("hint %q", hint)
		}
		if _, err := v.Verify(b, sgverify.NewPolicy(sgverify.WithArtifact(bytes.NewReader(artifact)), sgverify.WithKey())); err != nil {
			t.Errorf("Rekor v2 %t: %v", v2, err)
		}
	}
}

// TestBundleVersions: bundles v0.1 (chain, SET, no proof), v0.2 (chain, SET
// and proof) and v0.3 verify.
func TestBundleVersions(t *testing.T) {
	s := sigstoretest.New(t)
	artifact := []byte("x")
	sum := sha256.Sum256(artifact)
	for _, tc := range []struct{ version, mediaType string }{
		{"0.1", "application/vnd.dev.sigstore.bundle+json;version=0.1"},
		{"0.2", "application/vnd.dev.sigstore.bundle+json;version=0.2"},
		{"0.3", "application/vnd.dev.sigstore.bundle.v0.3+json"},
	} {
		t.Run(tc.version, func(t *testing.T) {
			o := sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, BundleVersion: tc.version}
			b := parseBundle(t, s.MessageBundle(t, artifact, o))
			if b.MediaType != tc.mediaType || b.HasInclusionProof() == (tc.version == "0.1") || !b.HasInclusionPromise() {
				t.Errorf("media type %s, proof %t, promise %t", b.MediaType, b.HasInclusionProof(), b.HasInclusionPromise())
			}
			if chain := b.VerificationMaterial.GetX509CertificateChain(); (chain != nil) == (tc.version == "0.3") {
				t.Errorf("certificate chain %v in a bundle %s", chain, tc.version)
			}
			res, err := verifier(t, s.TrustedRoot(), true).Verify(b, identityPolicy(t, sgverify.WithArtifactDigest("sha256", sum[:]), o.Issuer, o.Identity))
			checkResult(t, res, err, "", 2)
		})
	}
}
