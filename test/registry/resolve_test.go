package registry_test

import (
	"errors"
	"testing"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

// Resolve computes the digest from the bytes it fetched, for images and
// indexes, by tag and by digest, in the real distribution registry and the
// in-process one.
func TestResolve(t *testing.T) {
	t.Parallel()
	for _, reg := range []*registrytest.Registry{harness.StartRegistry(t), registrytest.StartInProcess(t, true)} {
		t.Run(reg.Kind, func(t *testing.T) {
			t.Parallel()
			img := reg.PushRandomImage(t, "app", "v1")
			idx := reg.PushRandomIndex(t, "app", "multi", 3)
			c := newClient(t)
			for _, tc := range []struct {
				name      string
				ref       string
				want      registrytest.Image
				mediaType string
				index     bool
			}{
				{"image by tag", "v1", img, registry.MediaTypeDockerManifest, false},
				{"image by digest", img.Digest, img, registry.MediaTypeDockerManifest, false},
				{"index by tag", "multi", idx, registry.MediaTypeOCIIndex, true},
				{"index by digest", idx.Digest, idx, registry.MediaTypeOCIIndex, true},
			} {
				t.Run(tc.name, func(t *testing.T) {
					m, err := c.Resolve(t.Context(), registry.Repository{Host: reg.Host, Path: "app"}, tc.ref)
					if err != nil {
						t.Fatal(err)
					}
					if m.Digest != tc.want.Digest {
						t.Errorf("digest %s, want %s (the pushed manifest's)", m.Digest, tc.want.Digest)
					}
					if got := sha256Digest(m.Bytes); got != m.Digest {
						t.Errorf("Bytes hash to %s, Digest says %s", got, m.Digest)
					}
					if m.MediaType != tc.mediaType || m.IsIndex() != tc.index {
						t.Errorf("media type %q (index %v), want %q (index %v)", m.MediaType, m.IsIndex(), tc.mediaType, tc.index)
					}
				})
			}
		})
	}
}

func TestResolveNotFound(t *testing.T) {
	t.Parallel()
	for _, reg := range []*registrytest.Registry{harness.StartRegistry(t), registrytest.StartInProcess(t, false)} {
		t.Run(reg.Kind, func(t *testing.T) {
			t.Parallel()
			reg.PushRandomImage(t, "app", "v1")
			c := newClient(t)
			missing := sha256Digest([]byte("nothing has this digest"))
			for _, tc := range []struct{ repo, ref string }{
				{"app", "v2"},
				{"app", missing},
				{"nothing/here", "v1"},
			} {
				_, err := c.Resolve(t.Context(), registry.Repository{Host: reg.Host, Path: tc.repo}, tc.ref)
				if !errors.Is(err, registry.ErrNotFound) {
					t.Errorf("%s:%s: error %v, want ErrNotFound", tc.repo, tc.ref, err)
				}
			}
		})
	}
}
