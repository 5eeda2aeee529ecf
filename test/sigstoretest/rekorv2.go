package sigstoretest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/cyberphone/json-canonicalization/go/src/webpki.org/jsoncanonicalizer"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	rekortiles "github.com/sigstore/rekor-tiles/v2/pkg/generated/protobuf"
	"github.com/transparency-dev/merkle/rfc6962"
	"google.golang.org/protobuf/encoding/protojson"
)

// RekorV2URL is the base URL of the Rekor v2 (tile-based) log; its host
// name is the origin of the log's checkpoints, as for the public-good
// log2025-1.rekor.sigstore.dev.
const (
	RekorV2URL    = "https://log2025-1.rekor.sigstore.test"
	rekorV2Origin = "log2025-1.rekor.sigstore.test"
)

// rekorV2Prefill is how many entries the v2 log holds before the first
// signature, so that every inclusion proof has sibling hashes to check.
const rekorV2Prefill = 5

// rekorV2Log is a Rekor v2 log in memory: an Ed25519 key, as the public-good
// v2 logs use, and every leaf hash, so that inclusion proofs are real paths
// in an RFC 6962 tree of the log's current size.
type rekorV2Log struct {
	key    ed25519.PrivateKey
	id     [32]byte // the signed-note key ID: SHA-256(origin, "\n", 0x01, key)
	leaves [][]byte
}

func newRekorV2Log(t testing.TB) *rekorV2Log {
	t.Helper()
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l := &rekorV2Log{key: key}
	// C2SP signed-note: the key ID of an Ed25519 key is the SHA-256 of the
	// key name, a newline, the signature type byte 0x01 and the public key;
	// checkpoints carry its first four bytes, trusted roots the whole hash.
	h := sha256.New()
	h.Write([]byte(rekorV2Origin + "\n"))
	h.Write([]byte{0x01})
	h.Write(pub)
	copy(l.id[:], h.Sum(nil))
	for i := range rekorV2Prefill {
		l.leaves = append(l.leaves, rfc6962.DefaultHasher.HashLeaf(fmt.Appendf(nil, "earlier entry %d", i)))
	}
	return l
}

// rekorV2Entry logs a hashedrekord v0.0.2 entry, as rekor-tiles stores it:
// the SHA-256 digest that was signed (of the artifact for a message
// signature, of the DSSE pre-authentication encoding for an envelope), the
// signature and the verifier (certificate or public key). It returns the
// entry as a bundle carries it: no integrated time, no inclusion promise,
// an inclusion proof against a checkpoint signed by the log key (by
// another key when o.UntrustedRekorKey).
func (s *Sigstore) rekorV2Entry(t testing.TB, digest, sig []byte, sg signer, o SignOptions) *protorekor.TransparencyLogEntry {
	t.Helper()
	if s.rekorV2 == nil {
		t.Fatal("sigstoretest: SignOptions.RekorV2 needs a Sigstore made with WithRekorV2")
	}
	v := &rekortiles.Verifier{KeyDetails: protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256}
	if sg.cert != nil {
		v.Verifier = &rekortiles.Verifier_X509Certificate{X509Certificate: &protocommon.X509Certificate{RawBytes: sg.cert.Raw}}
	} else {
		der, err := x509.MarshalPKIXPublicKey(&sg.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		v.Verifier = &rekortiles.Verifier_PublicKey{PublicKey: &rekortiles.PublicKey{RawBytes: der}}
	}
	entry := &rekortiles.Entry{
		Kind:       "hashedrekord",
		ApiVersion: "0.0.2",
		Spec: &rekortiles.Spec{Spec: &rekortiles.Spec_HashedRekordV002{HashedRekordV002: &rekortiles.HashedRekordLogEntryV002{
			Data:      &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: digest},
			Signature: &rekortiles.Signature{Content: sig, Verifier: v},
		}}},
	}
	raw, err := protojson.Marshal(entry)
	if err != nil {
		t.Fatalf("sigstoretest: encoding a Rekor v2 entry: %v", err)
	}
	body, err := jsoncanonicalizer.Transform(raw)
	if err != nil {
		t.Fatalf("sigstoretest: canonicalizing a Rekor v2 entry: %v", err)
	}

	s.mu.Lock()
	l := s.rekorV2
	index := len(l.leaves)
	l.leaves = append(l.leaves, rfc6962.DefaultHasher.HashLeaf(body))
	leaves := append([][]byte(nil), l.leaves...)
	s.mu.Unlock()

	rootHash := merkleRoot(leaves)
	key := l.key
	if o.UntrustedRekorKey {
		_, key, err = ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:    int64(index),
		LogId:       &protocommon.LogId{KeyId: append([]byte(nil), l.id[:]...)},
		KindVersion: &protorekor.KindVersion{Kind: "hashedrekord", Version: "0.0.2"},
		InclusionProof: &protorekor.InclusionProof{
			LogIndex:   int64(index),
			RootHash:   rootHash,
			TreeSize:   int64(len(leaves)),
			Hashes:     inclusionPath(index, leaves),
			Checkpoint: &protorekor.Checkpoint{Envelope: signedCheckpoint(key, l.id, uint64(len(leaves)), rootHash)},
		},
		CanonicalizedBody: body,
	}
}

// signedCheckpoint is a C2SP tlog-checkpoint in a signed note: the origin,
// the tree size and the base64 root hash, one per line, then a blank line
// and the signature line "— <origin> base64(<4-byte key ID><Ed25519 signature>)".
func signedCheckpoint(key ed25519.PrivateKey, id [32]byte, size uint64, rootHash []byte) string {
	text := fmt.Sprintf("%s\n%d\n%s\n", rekorV2Origin, size, base64.StdEncoding.EncodeToString(rootHash))
	sig := binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(id[:4]))
	sig = append(sig, ed25519.Sign(key, []byte(text))...)
	return text + "\n\u2014 " + rekorV2Origin + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
}

// merkleRoot is RFC 6962's MTH over leaf hashes.
func merkleRoot(leaves [][]byte) []byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return rfc6962.DefaultHasher.HashChildren(merkleRoot(leaves[:k]), merkleRoot(leaves[k:]))
}

// inclusionPath is RFC 6962's PATH(m, D[n]): the sibling hashes from the
// leaf up to the root.
func inclusionPath(m int, leaves [][]byte) [][]byte {
	if len(leaves) <= 1 {
		return [][]byte{}
	}
	k := splitPoint(len(leaves))
	if m < k {
		return append(inclusionPath(m, leaves[:k]), merkleRoot(leaves[k:]))
	}
	return append(inclusionPath(m-k, leaves[k:]), merkleRoot(leaves[:k]))
}

// splitPoint is the largest power of two smaller than n (n > 1).
func splitPoint(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}
