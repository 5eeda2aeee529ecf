package registrytest

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Media types of what the Attach methods write.
const (
	// bundleMediaType is the artifact and layer media type of a Sigstore bundle v0.3 referrer.
	bundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// emptyMediaType is the config of artifacts that have none (OCI 1.1).
	emptyMediaType = "application/vnd.oci.empty.v1+json"
)

// AttachLegacy appends a layer with content and annotations to img's legacy
// cosign manifest, tagged sha256-<hex><suffix> (suffix ".sig" or ".att"),
// creating the manifest if it is missing, as cosign does. The layer media
// type is "application/vnd.dev.cosign.simplesigning.v1+json" for signatures
// and "application/vnd.dsse.envelope.v1+json" for attestations.
func (r *Registry) AttachLegacy(t testing.TB, img Image, suffix, layerMediaType string, content []byte, annotations map[string]string) {
	t.Helper()
	if suffix != ".sig" && suffix != ".att" {
		t.Fatalf("AttachLegacy: suffix %q, want .sig or .att", suffix)
	}
	tag := r.digestTag(t, img, suffix)
	base, err := remote.Image(tag)
	if isNotFound(err) {
		base = mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	} else if err != nil {
		t.Fatalf("reading %s: %v", tag, err)
	}
	signed, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(content, types.MediaType(layerMediaType)),
		Annotations: annotations,
	})
	if err != nil {
		t.Fatalf("appending to %s: %v", tag, err)
	}
	if err := remote.Write(tag, signed); err != nil {
		t.Fatalf("pushing %s to the %s registry: %v", tag, r.Kind, err)
	}
}

// AttachBundle attaches a Sigstore bundle v0.3 (JSON) to img as an OCI 1.1
// referrer: a manifest with artifactType and one layer of the bundle media
// type, the empty config, and img as its subject. When the registry has no
// referrers API it also appends the referrer to the referrers tag-schema
// index tagged sha256-<hex>, as a pushing client must.
func (r *Registry) AttachBundle(t testing.TB, img Image, bundleJSON []byte) {
	t.Helper()
	repo := repoOf(t, img)
	subjectRef, err := name.NewDigest(img.Ref, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %s: %v", img.Ref, err)
	}
	subject, err := remote.Head(subjectRef)
	if err != nil {
		t.Fatalf("reading %s: %v", img.Ref, err)
	}
	layer := static.NewLayer(bundleJSON, bundleMediaType)
	config := static.NewLayer([]byte("{}"), emptyMediaType)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(repo, l); err != nil {
			t.Fatalf("pushing a blob to %s: %v", repo, err)
		}
	}
	annotations := map[string]string{"dev.sigstore.bundle.content": "dsse-envelope"}
	manifest := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  bundleMediaType,
		Config:        descriptorOf(t, config),
		Layers:        []v1.Descriptor{descriptorOf(t, layer)},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:   annotations,
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	desc := v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(raw)), ArtifactType: bundleMediaType, Annotations: annotations}
	if desc.Digest, _, err = v1.SHA256(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Digest(desc.Digest.String()), rawManifest{raw, types.OCIManifestSchema1}); err != nil {
		t.Fatalf("pushing a bundle referrer of %s to the %s registry: %v", img.Ref, r.Kind, err)
	}
	if !r.Referrers {
		r.appendFallbackReferrer(t, img, desc)
	}
}

// appendFallbackReferrer adds desc to the referrers tag-schema index of img,
// unless it is listed already.
func (r *Registry) appendFallbackReferrer(t testing.TB, img Image, desc v1.Descriptor) {
	t.Helper()
	tag := r.digestTag(t, img, "")
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	existing, err := remote.Get(tag)
	switch {
	case isNotFound(err):
	case err != nil:
		t.Fatalf("reading the referrers index %s: %v", tag, err)
	default:
		if err := json.Unmarshal(existing.Manifest, &idx); err != nil {
			t.Fatalf("the referrers index %s: %v", tag, err)
		}
	}
	for _, d := range idx.Manifests {
		if d.Digest == desc.Digest {
			return // go-containerregistry's writer maintains the index too
		}
	}
	idx.Manifests = append(idx.Manifests, desc)
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawManifest{raw, types.OCIImageIndex}); err != nil {
		t.Fatalf("pushing the referrers index %s to the %s registry: %v", tag, r.Kind, err)
	}
}

// digestTag is img's repository tagged sha256-<hex><suffix>.
func (r *Registry) digestTag(t testing.TB, img Image, suffix string) name.Tag {
	t.Helper()
	repo := repoOf(t, img)
	return repo.Tag(strings.Replace(img.Digest, ":", "-", 1) + suffix)
}

func repoOf(t testing.TB, img Image) name.Repository {
	t.Helper()
	repoName, _, _ := strings.Cut(img.Ref, "@")
	repo, err := name.NewRepository(repoName, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %s: %v", img.Ref, err)
	}
	return repo
}

func descriptorOf(t testing.TB, l v1.Layer) v1.Descriptor {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	size, err := l.Size()
	if err != nil {
		t.Fatal(err)
	}
	mt, err := l.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return v1.Descriptor{MediaType: mt, Digest: d, Size: size}
}

func isNotFound(err error) bool {
	var terr *transport.Error
	return errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound
}

// rawManifest is a manifest or index pushed byte for byte.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }
