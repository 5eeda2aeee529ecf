package registry_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// The Docker-Content-Digest header is never trusted: a tag resolves to the
// digest of the bytes served, and bytes fetched by digest must hash to it
// whatever the header claims.
func TestResolveDoesNotTrustTheRegistry(t *testing.T) {
	t.Parallel()
	reg := registrytest.StartTampering(t)
	genuine := reg.PushRandomImage(t, "app", "real")
	other := reg.PushRandomImage(t, "app", "other")
	repo := repoOf(t, reg.Repo("app"))
	otherManifest := reg.Fetch(t, "/v2/app/manifests/other").Body.Bytes()
	realManifest := reg.Fetch(t, "/v2/app/manifests/real")

	// The tag's header names the other image.
	reg.Override("/v2/app/manifests/real", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", realManifest.Header().Get("Content-Type"))
		w.Header().Set("Docker-Content-Digest", other.Digest)
		_, _ = w.Write(realManifest.Body.Bytes())
	})
	// Asked for the real image by digest, the registry serves the other one,
	// with a header that agrees with the request.
	reg.Override("/v2/app/manifests/"+genuine.Digest, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", registry.MediaTypeDockerManifest)
		w.Header().Set("Docker-Content-Digest", genuine.Digest)
		_, _ = w.Write(otherManifest)
	})
	c := newClient(t)

	m, err := c.Resolve(t.Context(), repo, "real")
	if err != nil {
		t.Fatal(err)
	}
	if m.Digest != genuine.Digest {
		t.Errorf("tag resolved to %s, want %s computed from the bytes (the header said %s)", m.Digest, genuine.Digest, other.Digest)
	}

	_, err = c.Resolve(t.Context(), repo, genuine.Digest)
	if !errors.Is(err, registry.ErrDigestMismatch) {
		t.Fatalf("fetching %s and getting another manifest: error %v, want ErrDigestMismatch", genuine.Digest, err)
	}
	for _, want := range []string{genuine.Digest, other.Digest} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// A manifest larger than MaxManifestBytes is an ErrLimit, whether the
// registry announces its size or streams an endless body; exactly the limit
// is accepted.
func TestResolveManifestLimit(t *testing.T) {
	t.Parallel()
	reg := registrytest.StartInProcess(t, false)
	img := reg.PushRandomImage(t, "app", "v1")
	repo := repoOf(t, reg.Repo("app"))
	size := int64(len(mustResolve(t, newClient(t), repo, "v1").Bytes))

	t.Run("announced", func(t *testing.T) {
		c := newClient(t, registry.WithLimits(registry.Limits{MaxManifestBytes: size - 1}))
		_, err := c.Resolve(t.Context(), repo, img.Digest)
		if !errors.Is(err, registry.ErrLimit) {
			t.Fatalf("error %v, want ErrLimit", err)
		}
		if want := fmt.Sprintf("at most %d", size-1); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	})
	t.Run("exactly the limit", func(t *testing.T) {
		c := newClient(t, registry.WithLimits(registry.Limits{MaxManifestBytes: size}))
		if _, err := c.Resolve(t.Context(), repo, "v1"); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name  string
		limit int64
	}{{"endless body", 0}, {"endless body, small limit", 1000}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, true)
			h.route("manifests/v1", endless([]byte(`{"mediaType":"`+strings.Repeat("x", 4096))))
			c := newTLSClient(t, h.Server, registry.WithLimits(registry.Limits{MaxManifestBytes: tc.limit}))
			err := quickly(t, 3*time.Second, func() error {
				_, err := c.Resolve(deadline(t, 20*time.Second), h.Repo, "v1")
				return err
			})
			if !errors.Is(err, registry.ErrLimit) {
				t.Fatalf("error %v, want ErrLimit", err)
			}
			limit := c.Limits().MaxManifestBytes
			if want := fmt.Sprintf("larger than %d bytes", limit); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if n := h.count("manifests/v1"); n != 1 {
				t.Errorf("%d requests for the manifest, want 1 (exceeding a limit is not retried)", n)
			}
		})
	}
}

// References that are neither a tag nor a well-formed digest are refused
// before anything is sent.
func TestResolveRejectsMalformedReferences(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	c := newTLSClient(t, h.Server)
	for _, ref := range []string{
		"",
		"sha256:abc",
		"sha256:" + strings.Repeat("A", 64),
		"sha256:" + strings.Repeat("g", 64),
		"md5:" + strings.Repeat("a", 32),
		"../../other/manifests/latest",
		"latest?ns=evil.example.org",
		"latest#x",
		"a/b",
		".hidden",
	} {
		if _, err := c.Resolve(t.Context(), h.Repo, ref); err == nil {
			t.Errorf("Resolve(%q) succeeded", ref)
		}
	}
	for _, digest := range []string{"", "sha256:abc", "sha256:../../x", "sha256:" + strings.Repeat("A", 64)} {
		if _, err := c.Blob(t.Context(), h.Repo, digest); err == nil {
			t.Errorf("Blob(%q) succeeded", digest)
		}
	}
	if n := h.totalHits(); n != 0 {
		t.Errorf("%d requests reached the registry for malformed references", n)
	}
}

func TestBlob(t *testing.T) {
	t.Parallel()
	reg := registrytest.StartTampering(t)
	repo := repoOf(t, reg.Repo("app"))
	content := bytes.Repeat([]byte("signet "), 1000)
	digest := pushBlob(t, reg.Registry, "app", content)
	other := pushBlob(t, reg.Registry, "app", []byte("another blob"))
	gz := gzipped(t, bytes.Repeat([]byte{0}, 10<<20))
	gzDigest := pushBlob(t, reg.Registry, "app", gz)
	reg.Override("/v2/app/blobs/"+other, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(content) // the wrong bytes
	})

	c := newClient(t)
	got, err := c.Blob(t.Context(), repo, digest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Errorf("blob content differs from what was pushed")
	}

	// The client never decompresses a blob: a gzip layer comes back as stored,
	// and its (small) compressed size is what counts against the limit.
	got, err = c.Blob(t.Context(), repo, gzDigest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, gz) {
		t.Errorf("a gzip blob came back changed (%d bytes, stored %d)", len(got), len(gz))
	}

	if _, err := c.Blob(t.Context(), repo, other); !errors.Is(err, registry.ErrDigestMismatch) {
		t.Errorf("blob with other content: error %v, want ErrDigestMismatch", err)
	}
	if _, err := c.Blob(t.Context(), repo, sha256Digest([]byte("missing"))); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("missing blob: error %v, want ErrNotFound", err)
	}

	small := newClient(t, registry.WithLimits(registry.Limits{MaxBlobBytes: int64(len(content)) - 1}))
	if _, err := small.Blob(t.Context(), repo, digest); !errors.Is(err, registry.ErrLimit) {
		t.Errorf("blob over MaxBlobBytes: error %v, want ErrLimit", err)
	}
	exact := newClient(t, registry.WithLimits(registry.Limits{MaxBlobBytes: int64(len(content))}))
	if _, err := exact.Blob(t.Context(), repo, digest); err != nil {
		t.Errorf("blob of exactly MaxBlobBytes: %v", err)
	}
}

// An endless blob stops at the limit.
func TestBlobEndless(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	digest := sha256Digest([]byte("whatever"))
	h.route("blobs/"+digest, endless(bytes.Repeat([]byte("A"), 64<<10)))
	c := newTLSClient(t, h.Server)
	err := quickly(t, 3*time.Second, func() error {
		_, err := c.Blob(deadline(t, 20*time.Second), h.Repo, digest)
		return err
	})
	if !errors.Is(err, registry.ErrLimit) {
		t.Fatalf("error %v, want ErrLimit", err)
	}
}

func mustResolve(t *testing.T, c *registry.Client, repo registry.Repository, ref string) registry.Manifest {
	t.Helper()
	m, err := c.Resolve(t.Context(), repo, ref)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// pushBlob uploads content as a blob to repo in reg and returns its digest.
func pushBlob(t *testing.T, reg *registrytest.Registry, repo string, content []byte) string {
	t.Helper()
	r, err := name.NewRepository(reg.Repo(repo), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteLayer(r, static.NewLayer(content, types.OCILayer)); err != nil {
		t.Fatalf("pushing a blob: %v", err)
	}
	return sha256Digest(content)
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
