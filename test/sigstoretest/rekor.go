package sigstoretest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	"github.com/digitorus/timestamp"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/rekor/pkg/types"
	dssetype "github.com/sigstore/rekor/pkg/types/dsse"
	_ "github.com/sigstore/rekor/pkg/types/dsse/v0.0.1" // registers dsse v0.0.1
	"github.com/sigstore/rekor/pkg/types/hashedrekord"
	_ "github.com/sigstore/rekor/pkg/types/hashedrekord/v0.0.1" // registers hashedrekord v0.0.1
	"github.com/sigstore/rekor/pkg/util"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/transparency-dev/merkle/rfc6962"
)

// logEntry is one entry of the local Rekor log.
type logEntry struct {
	body           []byte // canonicalized entry body
	kind, version  string
	logIndex       int64
	integratedTime int64
	set            []byte // signed entry timestamp
	signer         *ecdsa.PrivateKey
}

// hashedRekord logs a signature over artifact (SHA-256) by verifier (a PEM
// certificate or public key).
func (s *Sigstore) hashedRekord(t testing.TB, artifact, sig, verifier []byte, o SignOptions) logEntry {
	t.Helper()
	sum := sha256.Sum256(artifact)
	return s.logEntry(t, hashedrekord.KIND, types.ArtifactProperties{
		ArtifactHash:   hex.EncodeToString(sum[:]),
		SignatureBytes: sig,
		PublicKeyBytes: [][]byte{verifier},
		PKIFormat:      "x509",
	}, o)
}

// dsseEntry logs a DSSE envelope signed by verifier (a PEM certificate or
// public key).
func (s *Sigstore) dsseEntry(t testing.TB, envelope, verifier []byte, o SignOptions) logEntry {
	t.Helper()
	return s.logEntry(t, dssetype.KIND, types.ArtifactProperties{
		ArtifactBytes:  envelope,
		PublicKeyBytes: [][]byte{verifier},
		PKIFormat:      "x509",
	}, o)
}

// logEntry canonicalizes a proposed entry as Rekor does, gives it the next
// index and signs its entry timestamp.
func (s *Sigstore) logEntry(t testing.TB, kind string, props types.ArtifactProperties, o SignOptions) logEntry {
	t.Helper()
	ctx := context.Background()
	proposed, err := types.NewProposedEntry(ctx, kind, "0.0.1", props)
	if err != nil {
		t.Fatalf("sigstoretest: proposing a %s entry: %v", kind, err)
	}
	impl, err := types.CreateVersionedEntry(proposed)
	if err != nil {
		t.Fatalf("sigstoretest: validating a %s entry: %v", kind, err)
	}
	body, err := types.CanonicalizeEntry(ctx, impl)
	if err != nil {
		t.Fatalf("sigstoretest: canonicalizing a %s entry: %v", kind, err)
	}
	e := logEntry{
		body: body, kind: kind, version: impl.APIVersion(),
		logIndex: s.nextLogIndex(), integratedTime: o.signedAt().Unix(),
		signer: s.rekorKey,
	}
	if o.UntrustedRekorKey {
		e.signer = NewKey(t)
	}
	// The SET is the log key's signature over the canonical JSON of the
	// entry's body, integrated time, index and log ID (what
	// sigstore-go's tlog.VerifySET and cosign check).
	payload, err := json.Marshal(struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}{base64.StdEncoding.EncodeToString(body), e.integratedTime, e.logIndex, s.RekorLogID()})
	if err != nil {
		t.Fatal(err)
	}
	canonical, err := jsoncanonicalizer.Transform(payload)
	if err != nil {
		t.Fatal(err)
	}
	e.set = sign(t, e.signer, canonical)
	return e
}

// proto is the entry as a bundle carries it: with its inclusion promise
// and, when proof is set, an inclusion proof in a one-leaf tree whose root
// hash is the leaf hash, with a checkpoint signed by the log key.
func (e logEntry) proto(t testing.TB, s *Sigstore, proof bool) *protorekor.TransparencyLogEntry {
	t.Helper()
	tle := &protorekor.TransparencyLogEntry{
		LogIndex:          e.logIndex,
		LogId:             &protocommon.LogId{KeyId: append([]byte(nil), s.rekorLogID[:]...)},
		KindVersion:       &protorekor.KindVersion{Kind: e.kind, Version: e.version},
		IntegratedTime:    e.integratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: e.set},
		CanonicalizedBody: e.body,
	}
	if proof {
		rootHash := rfc6962.DefaultHasher.HashLeaf(e.body)
		signer, err := signature.LoadECDSASignerVerifier(e.signer, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		checkpoint, err := util.CreateAndSignCheckpoint(context.Background(), rekorHost, rekorTreeID, 1, rootHash, signer)
		if err != nil {
			t.Fatalf("sigstoretest: signing a checkpoint: %v", err)
		}
		tle.InclusionProof = &protorekor.InclusionProof{
			LogIndex:   0,
			RootHash:   rootHash,
			TreeSize:   1,
			Checkpoint: &protorekor.Checkpoint{Envelope: string(checkpoint)},
		}
	}
	return tle
}

// legacyAnnotation is cosign's dev.sigstore.cosign/bundle annotation.
func (e logEntry) legacyAnnotation(t testing.TB, s *Sigstore) string {
	t.Helper()
	type payload struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	}
	raw, err := json.Marshal(struct {
		SignedEntryTimestamp []byte  `json:"SignedEntryTimestamp"`
		Payload              payload `json:"Payload"`
	}{e.set, payload{base64.StdEncoding.EncodeToString(e.body), e.integratedTime, e.logIndex, s.RekorLogID()}})
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// timestamp is an RFC 3161 timestamp response over msg, dated at.
func (s *Sigstore) timestamp(t testing.TB, msg []byte, at time.Time) []byte {
	t.Helper()
	sum := sha256.Sum256(msg)
	ts := timestamp.Timestamp{
		HashAlgorithm:     crypto.SHA256,
		HashedMessage:     sum[:],
		Time:              at,
		SerialNumber:      s.nextSerial(),
		Policy:            asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 2},
		AddTSACertificate: true,
	}
	resp, err := ts.CreateResponseWithOpts(s.tsaLeaf, s.tsaKey, crypto.SHA256)
	if err != nil {
		t.Fatalf("sigstoretest: making an RFC 3161 timestamp: %v", err)
	}
	return resp
}

// sign is an ECDSA signature (ASN.1) over the SHA-256 of msg.
func sign(t testing.TB, key *ecdsa.PrivateKey, msg []byte) []byte {
	t.Helper()
	signer, err := signature.LoadECDSASigner(key, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.SignMessage(bytes.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func certPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
}
