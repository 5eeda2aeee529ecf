package registry

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"regexp"
	"strings"
)

// Media types of manifests signet reads.
const (
	MediaTypeOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeOCIIndex       = "application/vnd.oci.image.index.v1+json"
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
)

var manifestAccept = []string{MediaTypeOCIManifest, MediaTypeOCIIndex, MediaTypeDockerManifest, MediaTypeDockerList}

// Manifest is a manifest or index as fetched, with the digest signet computed
// from its bytes.
type Manifest struct {
	// Digest is "sha256:<hex>" of Bytes.
	Digest string
	// MediaType is the manifest's own mediaType field, or the Content-Type
	// the registry sent when the manifest has none.
	MediaType string
	// Bytes are the manifest exactly as served.
	Bytes []byte
}

// IsIndex reports whether the manifest is an image index or manifest list.
func (m Manifest) IsIndex() bool {
	return m.MediaType == MediaTypeOCIIndex || m.MediaType == MediaTypeDockerList
}

// Descriptor is the part of an OCI descriptor signet reads.
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Platform is the platform of an index entry.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
}

// ImageManifest is the part of an image manifest signet reads.
type ImageManifest struct {
	MediaType    string            `json:"mediaType"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Config       Descriptor        `json:"config"`
	Layers       []Descriptor      `json:"layers"`
	Subject      *Descriptor       `json:"subject,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
}

// Index is the part of an image index signet reads.
type Index struct {
	MediaType string       `json:"mediaType"`
	Manifests []Descriptor `json:"manifests"`
}

// tagPattern is the OCI distribution grammar of a tag, without its length
// bound: cosign's tags for sha512 digests (sha512-<128 hex>.sig) exceed it.
// What matters here is that a tag cannot change the request path or query.
var tagPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// Resolve fetches the manifest that ref (a tag, or a "sha256:..." digest)
// names in repo. For a tag, the digest is computed from the bytes served; for a
// digest, the bytes must hash to it. Call it once per decision and use the
// returned digest from then on.
func (c *Client) Resolve(ctx context.Context, repo Repository, ref string) (Manifest, error) {
	isDigest := strings.Contains(ref, ":")
	if isDigest {
		if err := checkDigestSyntax(ref); err != nil {
			return Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, ref, err)
		}
	} else if !tagPattern.MatchString(ref) {
		return Manifest{}, fmt.Errorf("manifest %s: malformed tag %q", repo, ref)
	}
	body, ctype, err := c.get(ctx, repo, "manifests/"+ref, manifestAccept, c.opts.limits.MaxManifestBytes)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Bytes: body}
	if isDigest {
		if err := checkDigest(ref, body); err != nil {
			return Manifest{}, fmt.Errorf("manifest %s@%s: %w", repo, ref, err)
		}
		m.Digest = ref
	} else {
		sum := sha256.Sum256(body)
		m.Digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	var head struct {
		MediaType string `json:"mediaType"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return Manifest{}, withKind(ErrMalformed, fmt.Errorf("manifest %s@%s is not JSON: %w", repo, m.Digest, err))
	}
	m.MediaType = head.MediaType
	if m.MediaType == "" {
		m.MediaType, _, _ = strings.Cut(ctype, ";")
	}
	return m, nil
}

// Blob fetches a blob by digest, at most MaxBlobBytes, and checks its digest.
func (c *Client) Blob(ctx context.Context, repo Repository, digest string) ([]byte, error) {
	if err := checkDigestSyntax(digest); err != nil {
		return nil, fmt.Errorf("blob %s@%s: %w", repo, digest, err)
	}
	body, _, err := c.get(ctx, repo, "blobs/"+digest, nil, c.opts.limits.MaxBlobBytes)
	if err != nil {
		return nil, err
	}
	if err := checkDigest(digest, body); err != nil {
		return nil, fmt.Errorf("blob %s@%s: %w", repo, digest, err)
	}
	return body, nil
}

// checkDigest verifies that data hashes to digest ("sha256:<hex>" or
// "sha512:<hex>").
func checkDigest(digest string, data []byte) error {
	alg, want, ok := strings.Cut(digest, ":")
	if !ok {
		return fmt.Errorf("malformed digest %q", digest)
	}
	var h hash.Hash
	switch alg {
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		return fmt.Errorf("unsupported digest algorithm %q", alg)
	}
	h.Write(data)
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: content hashes to %s:%s, not %s", ErrDigestMismatch, alg, got, digest)
	}
	return nil
}
