package sigstoretest_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

const (
	digest = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"
)

// verifier is sigstore-go's own, with every check signet asks for.
func verifier(t *testing.T, tm root.TrustedMaterial, withSCT bool) *sgverify.Verifier {
	t.Helper()
	opts := []sgverify.VerifierOption{sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1)}
	if withSCT {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	v, err := sgverify.NewVerifier(tm, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func identityPolicy(t *testing.T, artifact sgverify.ArtifactPolicyOption, iss, san string) sgverify.PolicyBuilder {
	t.Helper()
	id, err := sgverify.NewShortCertificateIdentity(iss, "", san, "")
	if err != nil {
		t.Fatal(err)
	}
	return sgverify.NewPolicy(artifact, sgverify.WithCertificateIdentity(id))
}

func TestTrustedRootJSON(t *testing.T) {
	s := sigstoretest.New(t)
	tr, err := root.NewTrustedRootFromJSON(s.TrustedRootJSON())
	if err != nil {
		t.Fatalf("the trusted root does not parse: %v", err)
	}
	if n := len(tr.FulcioCertificateAuthorities()); n != 1 {
		t.Errorf("%d certificate authorities, want 1", n)
	}
	if n := len(tr.TimestampingAuthorities()); n != 1 {
		t.Errorf("%d timestamping authorities, want 1", n)
	}
	if n := len(tr.CTLogs()); n != 1 {
		t.Errorf("%d CT logs, want 1", n)
	}
	logs := tr.RekorLogs()
	tl, ok := logs[s.RekorLogID()]
	if !ok || len(logs) != 1 {
		t.Fatalf("Rekor logs %v, want only %s", logs, s.RekorLogID())
	}
	der, err := x509.MarshalPKIXPublicKey(tl.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(der); hex.EncodeToString(sum[:]) != s.RekorLogID() {
		t.Errorf("log ID %s is not the SHA-256 of the log key", s.RekorLogID())
	}
	if now := time.Now(); tl.ValidityPeriodStart.After(now.Add(-time.Hour)) {
		t.Errorf("the log key is valid from %s, want a window around now", tl.ValidityPeriodStart)
	}
}

// TestCertificates: Fulcio-like leaves with both issuer extensions, the SAN
// as an email or a URI, and an embedded SCT that sigstore-go verifies.
func TestCertificates(t *testing.T) {
	s := sigstoretest.New(t)
	tr := s.TrustedRoot()
	for _, tc := range []struct {
		name  string
		o     sigstoretest.SignOptions
		sctOK bool
	}{
		{"uri", sigstoretest.Release(), true},
		{"email", sigstoretest.Mail(), true},
		{"no SCT", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, NoSCT: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ann := s.SignLegacy(t, []byte("payload"), tc.o)
			leaf := parseCert(t, ann[sigstoretest.AnnotationCertificate])
			chain := []*x509.Certificate{leaf}
			rest := []byte(ann[sigstoretest.AnnotationChain])
			for {
				var block *pem.Block
				if block, rest = pem.Decode(rest); block == nil {
					break
				}
				c, err := x509.ParseCertificate(block.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				chain = append(chain, c)
			}
			if len(chain) != 3 {
				t.Fatalf("chain of %d certificates, want leaf, intermediate and root", len(chain))
			}
			err := sgverify.VerifySignedCertificateTimestamp([][]*x509.Certificate{chain}, 1, tr)
			if tc.sctOK && err != nil {
				t.Errorf("the embedded SCT does not verify: %v", err)
			}
			if !tc.sctOK && err == nil {
				t.Errorf("a certificate without an SCT passed the SCT check")
			}
			if _, err := leaf.Verify(x509.VerifyOptions{
				Roots: pool(chain[2]), Intermediates: pool(chain[1]), CurrentTime: leaf.NotBefore.Add(time.Second),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
			}); err != nil {
				t.Errorf("the leaf does not chain to the root: %v", err)
			}
			var v1, v2 bool
			for _, e := range leaf.Extensions {
				switch e.Id.String() {
				case "1.3.6.1.4.1.57264.1.1":
					v1 = string(e.Value) == tc.o.Issuer
				case "1.3.6.1.4.1.57264.1.8":
					v2 = bytes.HasSuffix(e.Value, []byte(tc.o.Issuer)) && e.Value[0] == 0x0c // UTF8String
				}
			}
			if !v1 || !v2 {
				t.Errorf("issuer extensions v1 %t, v2 %t; want both to say %s", v1, v2, tc.o.Issuer)
			}
			if d := leaf.NotAfter.Sub(leaf.NotBefore); d != 10*time.Minute {
				t.Errorf("certificate valid for %s, want Fulcio's 10 minutes", d)
			}
		})
	}
}

// TestSignLegacy: the annotations, converted to a bundle v0.1 the way a
// cosign-compatible verifier does, pass sigstore-go's verifier.
func TestSignLegacy(t *testing.T) {
	s := sigstoretest.New(t)
	payload := sigstoretest.SimpleSigning("registry.example/acme/app", digest)
	for _, tc := range []struct {
		name    string
		o       sigstoretest.SignOptions
		wantErr string
		wantTS  int
	}{
		{"uri", sigstoretest.Release(), "", 2},
		{"email, no timestamp", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, NoTimestamp: true}, "", 1},
		{"in the past", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, IntegratedTime: time.Now().Add(-3 * time.Hour)}, "", 2},
		{"no SCT", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, NoSCT: true}, "signed certificate timestamp", 0},
		{"SET by another key", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, UntrustedRekorKey: true}, "not enough verified log entries", 0},
		{"expired certificate", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer,
			CertNotBefore: time.Now().Add(-2 * time.Hour), CertNotAfter: time.Now().Add(-110 * time.Minute)}, "outside certificate validity", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ann := s.SignLegacy(t, payload, tc.o)
			if _, ok := ann[sigstoretest.AnnotationRFC3161]; ok == tc.o.NoTimestamp {
				t.Errorf("RFC 3161 annotation present: %t, NoTimestamp %t", ok, tc.o.NoTimestamp)
			}
			sig, err := base64.StdEncoding.DecodeString(ann[sigstoretest.AnnotationSignature])
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(payload)
			pb := legacyBundle(t, ann)
			pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
				MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
				Signature:     sig,
			}}
			b, err := bundle.NewBundle(pb)
			if err != nil {
				t.Fatal(err)
			}
			res, err := verifier(t, s.TrustedRoot(), true).Verify(b, identityPolicy(t, sgverify.WithArtifact(bytes.NewReader(payload)), tc.o.Issuer, tc.o.Identity))
			checkResult(t, res, err, tc.wantErr, tc.wantTS)
		})
	}
}

func TestAttestLegacy(t *testing.T) {
	s := sigstoretest.New(t)
	o := sigstoretest.Release()
	statement := sigstoretest.Statement(t, "https://slsa.dev/provenance/v1", map[string]any{"builder": "ci"}, "registry.example/acme/app", digest)
	envJSON, ann := s.AttestLegacy(t, statement, o)
	var env struct {
		PayloadType string `json:"payloadType"`
		Payload     []byte `json:"payload"`
		Signatures  []struct {
			Sig []byte `json:"sig"`
		} `json:"signatures"`
	}
	if err := json.Unmarshal(envJSON, &env); err != nil {
		t.Fatal(err)
	}
	if env.PayloadType != sigstoretest.InTotoPayloadType || !bytes.Equal(env.Payload, statement) || len(env.Signatures) != 1 {
		t.Fatalf("envelope %s does not carry the statement", envJSON)
	}
	pb := legacyBundle(t, ann)
	pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
		Payload: env.Payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: env.Signatures[0].Sig}},
	}}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	// The RFC 3161 timestamp of an attestation is over the envelope, not the
	// signature: sigstore-go does not see it; the log's time remains.
	res, err := verifier(t, s.TrustedRoot(), true).Verify(b, identityPolicy(t, sgverify.WithArtifactDigest("sha256", raw), o.Issuer, o.Identity))
	checkResult(t, res, err, "", 1)
	if res.Statement.GetPredicateType() != "https://slsa.dev/provenance/v1" {
		t.Errorf("statement predicate type %q", res.Statement.GetPredicateType())
	}
	// cosign verifies it over the layer content.
	var ts struct {
		SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
	}
	if err := json.Unmarshal([]byte(ann[sigstoretest.AnnotationRFC3161]), &ts); err != nil {
		t.Fatal(err)
	}
	tsa := s.TrustedRoot().TimestampingAuthorities()[0]
	if _, err := tsa.Verify(ts.SignedRFC3161Timestamp, envJSON); err != nil {
		t.Errorf("the timestamp does not verify over the envelope: %v", err)
	}
}

func TestBundle(t *testing.T) {
	s := sigstoretest.New(t)
	raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	statement := sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, "registry.example/acme/app", digest)
	for _, tc := range []struct {
		name    string
		o       sigstoretest.SignOptions
		wantErr string
		wantTS  int
	}{
		{"uri", sigstoretest.Release(), "", 2},
		{"no timestamp", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, NoTimestamp: true}, "", 1},
		{"no SCT", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, NoSCT: true}, "signed certificate timestamp", 0},
		{"forged log entry", sigstoretest.SignOptions{Identity: sigstoretest.MailSubject, Issuer: sigstoretest.MailIssuer, UntrustedRekorKey: true}, "not enough verified log entries", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bjson := s.Bundle(t, statement, tc.o)
			var b bundle.Bundle
			if err := b.UnmarshalJSON(bjson); err != nil {
				t.Fatalf("the bundle does not parse: %v", err)
			}
			if v, _ := b.Version(); v != "v0.3" {
				t.Errorf("bundle version %s, want v0.3", v)
			}
			if !b.HasInclusionProof() || !b.HasInclusionPromise() {
				t.Errorf("bundle has inclusion proof %t, promise %t; want both", b.HasInclusionProof(), b.HasInclusionPromise())
			}
			res, err := verifier(t, s.TrustedRoot(), true).Verify(&b, identityPolicy(t, sgverify.WithArtifactDigest("sha256", raw), tc.o.Issuer, tc.o.Identity))
			checkResult(t, res, err, tc.wantErr, tc.wantTS)
		})
	}
}

// TestInclusionProof: without its SET, a bundle's tlog entry verifies by its
// inclusion proof and checkpoint alone (the time then comes from the TSA);
// a checkpoint signed by another key does not.
func TestInclusionProof(t *testing.T) {
	s := sigstoretest.New(t)
	raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
	statement := sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, "registry.example/acme/app", digest)
	for _, tc := range []struct {
		name    string
		o       sigstoretest.SignOptions
		wantErr string
	}{
		{"checkpoint by the log key", sigstoretest.Release(), ""},
		{"checkpoint by another key", sigstoretest.SignOptions{Identity: sigstoretest.ReleaseWorkflow, Issuer: sigstoretest.GitHubIssuer, UntrustedRekorKey: true}, "signature on checkpoint did not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bundle.Bundle
			if err := b.UnmarshalJSON(s.Bundle(t, statement, tc.o)); err != nil {
				t.Fatal(err)
			}
			tle := b.VerificationMaterial.TlogEntries[0]
			if !strings.HasPrefix(tle.InclusionProof.Checkpoint.Envelope, "rekor.sigstore.test - ") {
				t.Errorf("checkpoint %q does not have a Rekor v1 origin", tle.InclusionProof.Checkpoint.Envelope)
			}
			tle.InclusionPromise = nil
			nb, err := bundle.NewBundle(b.Bundle)
			if err != nil {
				t.Fatal(err)
			}
			res, err := verifier(t, s.TrustedRoot(), true).Verify(nb, identityPolicy(t, sgverify.WithArtifactDigest("sha256", raw), tc.o.Issuer, tc.o.Identity))
			checkResult(t, res, err, tc.wantErr, 1)
		})
	}
}

func TestMessageBundle(t *testing.T) {
	s := sigstoretest.New(t)
	artifact := []byte("a release artifact\n")
	o := sigstoretest.Release()
	var b bundle.Bundle
	if err := b.UnmarshalJSON(s.MessageBundle(t, artifact, o)); err != nil {
		t.Fatalf("the bundle does not parse: %v", err)
	}
	res, err := verifier(t, s.TrustedRoot(), true).Verify(&b, identityPolicy(t, sgverify.WithArtifact(bytes.NewReader(artifact)), o.Issuer, o.Identity))
	checkResult(t, res, err, "", 2)
	_, err = verifier(t, s.TrustedRoot(), true).Verify(&b, identityPolicy(t, sgverify.WithArtifact(bytes.NewReader([]byte("another artifact"))), o.Issuer, o.Identity))
	if err == nil {
		t.Error("the bundle verified for another artifact")
	}
}

// A leaf issued by an intermediate that had expired does not chain at the
// time of signing.
func TestExpiredIntermediate(t *testing.T) {
	now := time.Now()
	s := sigstoretest.New(t, sigstoretest.WithIntermediateValidity(now.Add(-24*time.Hour), now.Add(-time.Hour)))
	o := sigstoretest.Mail()
	var b bundle.Bundle
	if err := b.UnmarshalJSON(s.MessageBundle(t, []byte("x"), o)); err != nil {
		t.Fatal(err)
	}
	_, err := verifier(t, s.TrustedRoot(), true).Verify(&b, identityPolicy(t, sgverify.WithArtifact(bytes.NewReader([]byte("x"))), o.Issuer, o.Identity))
	if err == nil || !strings.Contains(err.Error(), "failed to verify leaf certificate") {
		t.Fatalf("want the chain to be expired at signing time, got %v", err)
	}
	leaf, err := x509.ParseCertificate(b.VerificationMaterial.GetCertificate().GetRawBytes())
	if err != nil {
		t.Fatal(err)
	}
	chain := s.Chain()
	_, err = leaf.Verify(x509.VerifyOptions{Roots: pool(chain[1]), Intermediates: pool(chain[0]), CurrentTime: time.Now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}})
	var invalid x509.CertificateInvalidError
	if !errors.As(err, &invalid) || invalid.Reason != x509.Expired || invalid.Cert.Subject.CommonName != chain[0].Subject.CommonName {
		t.Errorf("want the intermediate to be expired now, got %v", err)
	}
}

// Two Sigstores trust nothing of each other.
func TestIndependentInstances(t *testing.T) {
	a, b := sigstoretest.New(t), sigstoretest.New(t)
	o := sigstoretest.Mail()
	var bb bundle.Bundle
	if err := bb.UnmarshalJSON(a.MessageBundle(t, []byte("x"), o)); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier(t, b.TrustedRoot(), false).Verify(&bb, identityPolicy(t, sgverify.WithArtifact(bytes.NewReader([]byte("x"))), o.Issuer, o.Identity)); err == nil {
		t.Error("a bundle from one local Sigstore verified with another's trusted root")
	}
}

func checkResult(t *testing.T, res *sgverify.VerificationResult, err error, wantErr string, wantTimestamps int) {
	t.Helper()
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("want an error saying %q, got %v", wantErr, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("sigstore-go does not verify it: %v", err)
	}
	if res.VerifiedIdentity == nil {
		t.Error("no verified identity")
	}
	if len(res.VerifiedTimestamps) != wantTimestamps {
		t.Errorf("%d verified timestamps %+v, want %d", len(res.VerifiedTimestamps), res.VerifiedTimestamps, wantTimestamps)
	}
}

// legacyBundle is what cosign's annotations mean as a bundle v0.1.
func legacyBundle(t *testing.T, ann map[string]string) *protobundle.Bundle {
	t.Helper()
	var rb struct {
		SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           []byte `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal([]byte(ann[sigstoretest.AnnotationBundle]), &rb); err != nil {
		t.Fatalf("Rekor bundle annotation: %v", err)
	}
	var kv struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(rb.Payload.Body, &kv); err != nil {
		t.Fatal(err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil {
		t.Fatal(err)
	}
	mt, _ := bundle.MediaTypeString("0.1")
	pb := &protobundle.Bundle{MediaType: mt, VerificationMaterial: &protobundle.VerificationMaterial{
		Content: &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: parseCert(t, ann[sigstoretest.AnnotationCertificate]).Raw}},
		}},
		TlogEntries: []*protorekor.TransparencyLogEntry{{
			LogIndex: rb.Payload.LogIndex, LogId: &protocommon.LogId{KeyId: logID},
			KindVersion:    &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
			IntegratedTime: rb.Payload.IntegratedTime, CanonicalizedBody: rb.Payload.Body,
			InclusionPromise: &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		}},
	}}
	if raw, ok := ann[sigstoretest.AnnotationRFC3161]; ok {
		var ts struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}
		if err := json.Unmarshal([]byte(raw), &ts); err != nil {
			t.Fatal(err)
		}
		pb.VerificationMaterial.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts.SignedRFC3161Timestamp}},
		}
	}
	return pb
}

func parseCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode([]byte(p))
	if block == nil {
		t.Fatalf("not PEM: %q", p)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}

// pkiMaterial trusts ca (an enterprise CA, no SCTs) for certificates and
// the logs and TSA of s, as a verifier of cosign sign --certificate does.
type pkiMaterial struct {
	root.BaseTrustedMaterial
	ca root.CertificateAuthority
	s  *sigstoretest.Sigstore
}

func (m *pkiMaterial) FulcioCertificateAuthorities() []root.CertificateAuthority {
	return []root.CertificateAuthority{m.ca}
}

func (m *pkiMaterial) RekorLogs() map[string]*root.TransparencyLog {
	return m.s.TrustedRoot().RekorLogs()
}

func (m *pkiMaterial) TimestampingAuthorities() []root.TimestampingAuthority {
	return m.s.TrustedRoot().TimestampingAuthorities()
}

// TestCertificateSigner: signatures made with a certificate of an
// enterprise CA carry it (legacy layers with the given chain), their log
// entry names it, and sigstore-go verifies them with that CA and the
// Sigstore's log, not with the Sigstore's own Fulcio.
func TestCertificateSigner(t *testing.T) {
	s := sigstoretest.New(t)
	corp := pkitest.NewRoot(t, "Example Root CA")
	inter := corp.Intermediate(t, "Example Code Signing CA")
	key := sigstoretest.NewKey(t)
	leaf := inter.Issue(t, &key.PublicKey, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}})
	signedAt := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	o := sigstoretest.SignOptions{IntegratedTime: signedAt,
		Certificate: &sigstoretest.CertificateSigner{Cert: leaf, Key: key, Chain: []*x509.Certificate{inter.Cert, corp.Cert}}}
	corpMaterial := &pkiMaterial{ca: &root.FulcioCertificateAuthority{Root: corp.Cert, Intermediates: []*x509.Certificate{inter.Cert}}, s: s}
	policy := func(artifact sgverify.ArtifactPolicyOption) sgverify.PolicyBuilder {
		return sgverify.NewPolicy(artifact, sgverify.WithoutIdentitiesUnsafe())
	}
	check := func(t *testing.T, b *bundle.Bundle, artifact sgverify.ArtifactPolicyOption) {
		t.Helper()
		entries, err := b.TlogEntries()
		if err != nil || len(entries) != 1 {
			t.Fatalf("log entries %v, %v", entries, err)
		}
		if c, ok := entries[0].PublicKey().(*x509.Certificate); !ok || !c.Equal(leaf) {
			t.Errorf("the log entry names %v, not the signing certificate", entries[0].PublicKey())
		}
		if !entries[0].IntegratedTime().Equal(signedAt) {
			t.Errorf("integrated time %s, want %s", entries[0].IntegratedTime(), signedAt)
		}
		res, err := verifier(t, corpMaterial, false).Verify(b, policy(artifact))
		if err != nil {
			t.Fatalf("sigstore-go does not verify it with the CA and the log: %v", err)
		}
		if n := len(res.VerifiedTimestamps); n != 2 { // the log's integrated time and the TSA's
			t.Errorf("%d verified timestamps %+v, want 2", n, res.VerifiedTimestamps)
		}
		if _, err := verifier(t, s.TrustedRoot(), false).Verify(b, policy(artifact)); err == nil {
			t.Error("verified with the Sigstore's Fulcio, which did not issue the certificate")
		}
	}

	t.Run("legacy", func(t *testing.T) {
		payload := sigstoretest.SimpleSigning("registry.example/acme/app", digest)
		ann := s.SignLegacy(t, payload, o)
		if got, want := ann[sigstoretest.AnnotationChain], pkitest.PEM(inter.Cert, corp.Cert); got != want {
			t.Errorf("chain annotation %q, want the given chain", got)
		}
		if got := parseCert(t, ann[sigstoretest.AnnotationCertificate]); !got.Equal(leaf) {
			t.Errorf("certificate annotation holds %s, not the given certificate", got.Subject)
		}
		sig, err := base64.StdEncoding.DecodeString(ann[sigstoretest.AnnotationSignature])
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(payload)
		pb := legacyBundle(t, ann)
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}}
		b, err := bundle.NewBundle(pb)
		if err != nil {
			t.Fatal(err)
		}
		check(t, b, sgverify.WithArtifact(bytes.NewReader(payload)))

		noChain := o
		noChain.Certificate = &sigstoretest.CertificateSigner{Cert: leaf, Key: key}
		if ann, ok := s.SignLegacy(t, payload, noChain)[sigstoretest.AnnotationChain]; ok {
			t.Errorf("chain annotation %q without a chain", ann)
		}
	})
	t.Run("bundle", func(t *testing.T) {
		raw, _ := hex.DecodeString(strings.TrimPrefix(digest, "sha256:"))
		var b bundle.Bundle
		if err := b.UnmarshalJSON(s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, "registry.example/acme/app", digest), o)); err != nil {
			t.Fatal(err)
		}
		if got := b.GetVerificationMaterial().GetCertificate().GetRawBytes(); !bytes.Equal(got, leaf.Raw) {
			t.Error("the bundle does not carry the given certificate")
		}
		check(t, &b, sgverify.WithArtifactDigest("sha256", raw))
	})
}
