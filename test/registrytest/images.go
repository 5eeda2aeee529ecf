package registrytest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Image is an image a test pushed.
type Image struct {
	// Tag is the tagged reference it was pushed to, e.g. 127.0.0.1:5000/app:v1.
	Tag string
	// Digest is the manifest digest, "sha256:<hex>".
	Digest string
	// Ref is the reference by digest, repository@sha256:<hex>.
	Ref string
}

// PushRandomImage pushes a small random single-platform image to repo:tag in r.
func (r *Registry) PushRandomImage(t testing.TB, repo, tag string) Image {
	t.Helper()
	img, err := random.Image(256, 2)
	if err != nil {
		t.Fatalf("making a random image: %v", err)
	}
	return r.PushImage(t, repo, tag, img)
}

// PushImage pushes img to repo:tag in r.
func (r *Registry) PushImage(t testing.TB, repo, tag string, img v1.Image, opts ...remote.Option) Image {
	t.Helper()
	ref, err := name.NewTag(r.Repo(repo)+":"+tag, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %s: %v", r.Repo(repo)+":"+tag, err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("pushing %s to the %s registry: %v", ref, r.Kind, err)
	}
	digest, err := img.Digest()
	if err != nil {
		t.Fatalf("computing the digest of %s: %v", ref, err)
	}
	return Image{Tag: ref.String(), Digest: digest.String(), Ref: r.Repo(repo) + "@" + digest.String()}
}

// PushRandomIndex pushes a random multi-platform image index with n platform
// manifests to repo:tag in r.
func (r *Registry) PushRandomIndex(t testing.TB, repo, tag string, n int) Image {
	t.Helper()
	idx, err := random.Index(256, 1, int64(n))
	if err != nil {
		t.Fatalf("making a random index: %v", err)
	}
	ref, err := name.NewTag(r.Repo(repo)+":"+tag, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %s: %v", r.Repo(repo)+":"+tag, err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("pushing index %s to the %s registry: %v", ref, r.Kind, err)
	}
	digest, err := idx.Digest()
	if err != nil {
		t.Fatalf("computing the digest of %s: %v", ref, err)
	}
	return Image{Tag: ref.String(), Digest: digest.String(), Ref: r.Repo(repo) + "@" + digest.String()}
}
