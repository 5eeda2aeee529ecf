package verify

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"

	"github.com/signet-dev/signet/internal/registry"
)

// Artifact is what a bundle given to VerifyArtifact must be for: a file or
// blob, known by its content or only by its sha256 digest.
type Artifact struct {
	// content is read from the start for each check that needs it; nil
	// when only the digest is known.
	content io.ReaderAt
	size    int64
	digest  []byte // sha256; computed from content by VerifyArtifact
}

// ArtifactContent is the artifact of size bytes that r reads. VerifyArtifact
// reads it as many times as its checks need (at least twice: its digest,
// then the signature), so r must keep returning the same bytes.
func ArtifactContent(r io.ReaderAt, size int64) Artifact {
	return Artifact{content: r, size: size}
}

// ArtifactDigest is the artifact whose digest is "sha256:<hex>", for a
// bundle checked without the artifact itself. A message signature by an
// Ed25519 key signs the content, not its digest: it verifies only with
// ArtifactContent.
func ArtifactDigest(digest string) (Artifact, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	raw, err := hex.DecodeString(h)
	if !ok || err != nil || len(raw) != sha256.Size {
		return Artifact{}, fmt.Errorf("%q is not a sha256 digest", digest)
	}
	return Artifact{digest: raw}, nil
}

func (a *Artifact) reader() io.Reader {
	return io.NewSectionReader(a.content, 0, a.size)
}

// VerifyArtifact verifies one Sigstore bundle (a message signature or a
// DSSE statement) for an artifact rather than an image. The policy must
// have one authority, of keys or keyless identities, without
// attestations: a bundle has one signer, and what an artifact's statement
// must say is the caller's business.
//
// The bundle goes through the same steps as image evidence (see
// Compiled.Verify): sigstore-go with the authority's trusted material and
// the checks it requires of what the bundle carries (the transparency log
// entry, the time of signing, SCTs), the signer (a trusted key, or a
// certificate whose identity the authority accepts), each failure
// classified by the step that fails. A message signature must be over the
// artifact; a DSSE statement must name its digest among its subjects, with
// any predicate type. The steps of image evidence alone are not run: the
// simple-signing payload's docker-manifest-digest, the signed identity
// (docker-reference), the predicate type of an image signature, the
// RFC 3161 timestamp of a legacy attestation.
//
// The Signature names the signer, the verified times and log index, the
// predicate type of a statement, and the artifact's digest (Artifact). The
// error is a *Denial of the kind that says which check failed
// (errors.Is(err, ErrIdentityMismatch), ...), an *Undecided when the
// artifact's content could not be read, or another error when the policy
// cannot verify artifacts.
func (c *Compiled) VerifyArtifact(b *bundle.Bundle, artifact Artifact) (sig Signature, err error) {
	if len(c.authorities) != 1 || c.authorities[0].Static != nil || len(c.authorities[0].attestations) > 0 || c.threshold != 1 {
		return sig, fmt.Errorf("policy %s: verifying an artifact needs a policy of one key or keyless authority without attestations", c.name)
	}
	a := c.authorities[0]
	if artifact.content != nil {
		h := sha256.New()
		if _, err := io.Copy(h, artifact.reader()); err != nil {
			return sig, &Undecided{Err: fmt.Errorf("reading the artifact: %w", err)}
		}
		artifact.digest = h.Sum(nil)
	}
	if artifact.digest == nil {
		return sig, errors.New("no artifact: use ArtifactContent or ArtifactDigest")
	}
	defer func() {
		// As for image evidence (verifyCandidate): a panic on hostile
		// input is a bundle that does not verify.
		if r := recover(); r != nil {
			sig, err = Signature{}, deny(ErrMalformed, "malformed bundle: %v", r)
		}
	}()
	cand := candidate{ev: registry.Evidence{Kind: registry.SigstoreBundle}, bundle: b, artifact: &artifact}
	sig, _, err = verifyBundle(a, cand, artifact.digest)
	if err != nil {
		return Signature{}, err
	}
	sig.Format = registry.SigstoreBundle.String()
	sig.Artifact = "sha256:" + hex.EncodeToString(artifact.digest)
	return sig, nil
}
