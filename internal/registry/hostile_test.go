package registry_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// A digest for the image the hostile registries are asked about.
var hostileImage = sha256Digest([]byte("the image under admission"))

func tagOf(digest, suffix string) string { return strings.Replace(digest, ":", "-", 1) + suffix }

func manifestJSON(t *testing.T, m any) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// layers returns n distinct descriptors of the given media type.
func layers(n int, mediaType string, size int64) []registry.Descriptor {
	out := make([]registry.Descriptor, n)
	for i := range out {
		out[i] = registry.Descriptor{
			MediaType: mediaType,
			Digest:    sha256Digest(fmt.Appendf(nil, "layer %d", i)),
			Size:      size,
			Annotations: map[string]string{
				"dev.cosignproject.cosign/signature": "MEUCIQ" + strings.Repeat("A", 90),
			},
		}
	}
	return out
}

func blobHits(h *hostile) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for p, c := range h.hits {
		if strings.Contains(p, "/blobs/") {
			n += c
		}
	}
	return n
}

// Each bound on what a signature manifest or a referrers list may hold ends
// the fetch promptly with ErrLimit and a message naming the count and the
// bound, before any blob is read.
func TestEvidenceLimits(t *testing.T) {
	t.Parallel()
	emptyIndex := func(t *testing.T) []byte {
		return manifestJSON(t, registry.Index{MediaType: registry.MediaTypeOCIIndex, Manifests: []registry.Descriptor{}})
	}
	sigManifest := func(t *testing.T, ls []registry.Descriptor) []byte {
		return manifestJSON(t, registry.ImageManifest{
			MediaType: registry.MediaTypeOCIManifest,
			Config:    registry.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: sha256Digest([]byte("{}")), Size: 2},
			Layers:    ls,
		})
	}
	referrerIndex := func(t *testing.T, n int, artifactType string) []byte {
		ds := make([]registry.Descriptor, n)
		for i := range ds {
			ds[i] = registry.Descriptor{MediaType: registry.MediaTypeOCIManifest, ArtifactType: artifactType,
				Digest: sha256Digest(fmt.Appendf(nil, "referrer %d", i)), Size: 500}
		}
		return manifestJSON(t, registry.Index{MediaType: registry.MediaTypeOCIIndex, Manifests: ds})
	}
	const simpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
	const bundle = "application/vnd.dev.sigstore.bundle.v0.3+json"

	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, h *hostile)
		want  []string // in the error message
	}{{
		name: "10,000 signature layers",
		setup: func(t *testing.T, h *hostile) {
			h.route("manifests/"+tagOf(hostileImage, ".sig"), serveJSON(registry.MediaTypeOCIManifest, sigManifest(t, layers(10000, simpleSigning, 300))))
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, emptyIndex(t)))
		},
		want: []string{"10000 layers", "at most 64", tagOf(hostileImage, ".sig")},
	}, {
		name: "65 attestation layers",
		setup: func(t *testing.T, h *hostile) {
			h.route("manifests/"+tagOf(hostileImage, ".att"), serveJSON(registry.MediaTypeOCIManifest, sigManifest(t, layers(65, "application/vnd.dsse.envelope.v1+json", 300))))
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, emptyIndex(t)))
		},
		want: []string{"65 layers", "at most 64", tagOf(hostileImage, ".att")},
	}, {
		name: "a 2 GiB signature layer",
		setup: func(t *testing.T, h *hostile) {
			h.route("manifests/"+tagOf(hostileImage, ".sig"), serveJSON(registry.MediaTypeOCIManifest, sigManifest(t, layers(1, simpleSigning, 2<<30))))
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, emptyIndex(t)))
		},
		want: []string{"2147483648 bytes", "at most 4194304"},
	}, {
		name: "129 referrers through the API",
		setup: func(t *testing.T, h *hostile) {
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, referrerIndex(t, 129, bundle)))
		},
		want: []string{"129 referrers", "at most 128"},
	}, {
		name: "10,000 referrers through the tag schema",
		setup: func(t *testing.T, h *hostile) {
			h.route("manifests/"+tagOf(hostileImage, ""), serveJSON(registry.MediaTypeOCIIndex, referrerIndex(t, 10000, bundle)))
		},
		want: []string{"10000 referrers", "at most 128"},
	}, {
		name: "65 bundle layers in one referrer",
		setup: func(t *testing.T, h *hostile) {
			ref := manifestJSON(t, registry.ImageManifest{
				MediaType:    registry.MediaTypeOCIManifest,
				ArtifactType: bundle,
				Config:       registry.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: sha256Digest([]byte("{}")), Size: 2},
				Layers:       layers(65, bundle, 3000),
				Subject:      &registry.Descriptor{MediaType: registry.MediaTypeOCIManifest, Digest: hostileImage, Size: 1000},
			})
			refDigest := sha256Digest(ref)
			h.route("manifests/"+refDigest, serveJSON(registry.MediaTypeOCIManifest, ref))
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, manifestJSON(t, registry.Index{
				MediaType: registry.MediaTypeOCIIndex,
				Manifests: []registry.Descriptor{{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundle, Digest: refDigest, Size: int64(len(ref))}},
			})))
		},
		want: []string{"65 signature layers", "at most 64"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, true)
			tc.setup(t, h)
			c := newTLSClient(t, h.Server)
			err := quickly(t, 5*time.Second, func() error {
				ev, err := c.Evidence(deadline(t, 20*time.Second), h.Repo, hostileImage, registry.EvidenceOptions{})
				if len(ev) != 0 {
					t.Errorf("%d pieces of evidence returned with the error", len(ev))
				}
				return err
			})
			if !errors.Is(err, registry.ErrLimit) {
				t.Fatalf("error %v, want ErrLimit", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if n := blobHits(h); n != 0 {
				t.Errorf("%d blobs fetched although a limit was exceeded", n)
			}
		})
	}

	// At the bounds, nothing is refused: 128 referrers that are not bundles
	// are listed and skipped.
	t.Run("128 referrers", func(t *testing.T) {
		t.Parallel()
		h := newHostile(t, true)
		h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, referrerIndex(t, 128, "application/vnd.example.sbom")))
		c := newTLSClient(t, h.Server)
		refs, err := c.Referrers(t.Context(), h.Repo, hostileImage)
		if err != nil || len(refs) != 128 {
			t.Fatalf("Referrers: %d, %v; want 128 and no error", len(refs), err)
		}
		ev, err := c.Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{})
		if err != nil || len(ev) != 0 {
			t.Fatalf("Evidence: %d, %v; want none and no error", len(ev), err)
		}
	})
}

// Redirects are followed up to MaxRedirects, and not one more.
func TestRedirects(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	manifest := manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest})
	// hop-N redirects to hop-(N-1); hop-0 is the manifest.
	h.route("manifests/hop-0", serveJSON(registry.MediaTypeOCIManifest, manifest))
	for i := 1; i <= 5; i++ {
		h.route(fmt.Sprintf("manifests/hop-%d", i), func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, h.url(fmt.Sprintf("manifests/hop-%d", i-1)), http.StatusTemporaryRedirect)
		})
	}
	h.route("manifests/loop", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, h.url("manifests/loop"), http.StatusFound)
	})

	for _, tc := range []struct {
		max     int
		ref     string
		ok      bool
		fetches int // requests the loop path sees
	}{
		{max: 0, ref: "hop-3", ok: true}, // the default is 3
		{max: 0, ref: "hop-4", ok: false},
		{max: 1, ref: "hop-1", ok: true},
		{max: 1, ref: "hop-2", ok: false},
		{max: 5, ref: "hop-5", ok: true},
		{max: 0, ref: "loop", ok: false, fetches: 4},
		{max: 2, ref: "loop", ok: false, fetches: 3},
	} {
		t.Run(fmt.Sprintf("%s with at most %d", tc.ref, tc.max), func(t *testing.T) {
			c := newTLSClient(t, h.Server, registry.WithLimits(registry.Limits{MaxRedirects: tc.max}))
			before := h.count("manifests/loop")
			var m registry.Manifest
			err := quickly(t, 2*time.Second, func() (err error) {
				m, err = c.Resolve(deadline(t, 20*time.Second), h.Repo, tc.ref)
				return err
			})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if m.Digest != sha256Digest(manifest) {
					t.Errorf("digest %s, want %s", m.Digest, sha256Digest(manifest))
				}
				return
			}
			if !errors.Is(err, registry.ErrLimit) || !strings.Contains(err.Error(), "redirects") {
				t.Fatalf("error %v, want ErrLimit about redirects", err)
			}
			if tc.fetches > 0 {
				if n := h.count("manifests/loop") - before; n != tc.fetches {
					t.Errorf("the loop was fetched %d times, want %d (no retries after the cap)", n, tc.fetches)
				}
			}
		})
	}
}

// Without InsecureAllowHTTP nothing goes over plain HTTP: not a redirect from
// an HTTPS registry, and not a loopback or private-address registry that only
// speaks HTTP (go-containerregistry would fall back to HTTP for those).
func TestPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	manifest := manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest})
	plainRegistry := func(t *testing.T) *hostile {
		plain := newHostile(t, false)
		plain.route("manifests/v1", serveJSON(registry.MediaTypeOCIManifest, manifest))
		return plain
	}

	t.Run("redirect from https", func(t *testing.T) {
		t.Parallel()
		plain := plainRegistry(t)
		h := newHostile(t, true)
		h.route("manifests/v1", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, plain.url("manifests/v1"), http.StatusTemporaryRedirect)
		})
		c := newTLSClient(t, h.Server)
		err := quickly(t, 2*time.Second, func() error {
			_, err := c.Resolve(deadline(t, 20*time.Second), h.Repo, "v1")
			return err
		})
		if err == nil || !strings.Contains(err.Error(), "plain HTTP") {
			t.Fatalf("error %v, want a refused redirect to plain HTTP", err)
		}
		if n := plain.count("manifests/v1"); n != 0 {
			t.Errorf("the plain-HTTP target was fetched %d times", n)
		}
		if n := h.count("manifests/v1"); n != 1 {
			t.Errorf("the redirecting manifest was fetched %d times, want 1 (a refusal is not retried)", n)
		}
	})
	t.Run("plain HTTP loopback registry", func(t *testing.T) {
		t.Parallel()
		plain := plainRegistry(t)
		c, err := registry.New()
		if err != nil {
			t.Fatal(err)
		}
		repo := registry.Repository{Host: plain.Listener.Addr().String(), Path: "app"}
		if _, err := c.Resolve(deadline(t, 10*time.Second), repo, "v1"); err == nil {
			t.Fatal("a plain-HTTP registry was used without InsecureAllowHTTP")
		}
		plain.mu.Lock()
		defer plain.mu.Unlock()
		if len(plain.hits) != 0 {
			t.Errorf("requests reached the plain-HTTP registry: %v", plain.hits)
		}
	})
	t.Run("allowed with InsecureAllowHTTP", func(t *testing.T) {
		t.Parallel()
		plain := plainRegistry(t)
		c := newClient(t)
		repo := registry.Repository{Host: plain.Listener.Addr().String(), Path: "app"}
		if _, err := c.Resolve(t.Context(), repo, "v1"); err != nil {
			t.Fatal(err)
		}
	})
}

// A registry that stops answering, at any point, costs no more than the
// caller's deadline, and the error says so.
func TestStalledRegistry(t *testing.T) {
	t.Parallel()
	const budget = 400 * time.Millisecond
	manifestDigest := sha256Digest([]byte("m"))
	partial := stall("HTTP/1.1 200 OK\r\nContent-Type: " + registry.MediaTypeOCIManifest + "\r\nContent-Length: 1000\r\n\r\n" + `{"schemaVersion":2,`)
	chunked := stall("HTTP/1.1 200 OK\r\nContent-Type: " + registry.MediaTypeOCIManifest + "\r\nTransfer-Encoding: chunked\r\n\r\n13\r\n" + `{"schemaVersion":2,` + "\r\n")
	for _, tc := range []struct {
		name  string
		route string
		h     http.HandlerFunc
		call  func(ctx context.Context, c *registry.Client, repo registry.Repository) error
	}{
		{"ping", "/v2/", stall(""), resolveV1},
		{"manifest headers", "manifests/v1", stall(""), resolveV1},
		{"manifest headers, half sent", "manifests/v1", stall("HTTP/1.1 200 OK\r\nContent-Ty"), resolveV1},
		{"manifest body", "manifests/v1", partial, resolveV1},
		{"manifest body, chunked", "manifests/v1", chunked, resolveV1},
		{"manifest by digest", "manifests/" + manifestDigest, partial, func(ctx context.Context, c *registry.Client, repo registry.Repository) error {
			_, err := c.Resolve(ctx, repo, manifestDigest)
			return err
		}},
		{"blob", "blobs/" + manifestDigest, partial, func(ctx context.Context, c *registry.Client, repo registry.Repository) error {
			_, err := c.Blob(ctx, repo, manifestDigest)
			return err
		}},
		{"signature tag", "manifests/" + tagOf(hostileImage, ".sig"), stall(""), evidence},
		{"referrers", "referrers/" + hostileImage, partial, evidence},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, true)
			h.route(tc.route, tc.h)
			c := newTLSClient(t, h.Server)
			err := quickly(t, budget+time.Second, func() error {
				return tc.call(deadline(t, budget), c, h.Repo)
			})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("error %v, want one that wraps context.DeadlineExceeded", err)
			}
		})
	}
}

func resolveV1(ctx context.Context, c *registry.Client, repo registry.Repository) error {
	_, err := c.Resolve(ctx, repo, "v1")
	return err
}

func evidence(ctx context.Context, c *registry.Client, repo registry.Repository) error {
	_, err := c.Evidence(ctx, repo, hostileImage, registry.EvidenceOptions{})
	return err
}

// 429 and 5xx answers and dropped connections are retried with backoff within
// the deadline; other answers are not.
func TestRetries(t *testing.T) {
	t.Parallel()
	manifest := manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest})
	// failing answers the first n requests with status (0: drops the
	// connection) and the headers given as name, value pairs, then serves
	// the manifest.
	failing := func(n int, status int, header ...string) http.HandlerFunc {
		var seen atomic.Int32
		return func(w http.ResponseWriter, r *http.Request) {
			if int(seen.Add(1)) > n {
				serveJSON(registry.MediaTypeOCIManifest, manifest)(w, r)
				return
			}
			if status == 0 {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return
			}
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.WriteHeader(status)
		}
	}
	for _, tc := range []struct {
		name     string
		route    string
		h        http.HandlerFunc
		budget   time.Duration
		ok       bool
		requests int // to the route
		minTime  time.Duration
		maxTime  time.Duration
		want     string // in the error
		kind     error  // of the error (errors.Is)
	}{
		{name: "429 then 200", route: "manifests/v1", h: failing(1, http.StatusTooManyRequests), budget: 5 * time.Second, ok: true, requests: 2},
		// Retry-After is waited for, in seconds or as a date, when the
		// deadline leaves time for it; otherwise the error comes at once.
		{name: "429 asking for 1s then 200", route: "manifests/v1", h: failing(1, http.StatusTooManyRequests, "Retry-After", "1"), budget: 5 * time.Second, ok: true, requests: 2, minTime: time.Second},
		{name: "503 asking until a date then 200", route: "manifests/v1", h: func() http.HandlerFunc {
			var seen atomic.Int32
			return func(w http.ResponseWriter, r *http.Request) {
				if seen.Add(1) > 1 {
					serveJSON(registry.MediaTypeOCIManifest, manifest)(w, r)
					return
				}
				// Dates have whole seconds: 2 s ahead is at least 1 s.
				w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		}(), budget: 5 * time.Second, ok: true, requests: 2, minTime: time.Second},
		{name: "429 asking past the deadline", route: "manifests/v1", h: failing(1000, http.StatusTooManyRequests, "Retry-After", "10"), budget: 3 * time.Second, requests: 1, maxTime: time.Second, want: "asked to wait 10s, longer than this lookup may wait", kind: registry.ErrRateLimited},
		{name: "429 asking too long", route: "manifests/v1", h: failing(1000, http.StatusTooManyRequests, "Retry-After", "3600"), budget: time.Hour, requests: 1, maxTime: time.Second, want: "asked to wait 1h0m0s", kind: registry.ErrRateLimited},
		{name: "503 twice then 200", route: "manifests/v1", h: failing(2, http.StatusServiceUnavailable), budget: 5 * time.Second, ok: true, requests: 3},
		{name: "dropped connection then 200", route: "manifests/v1", h: failing(1, 0), budget: 5 * time.Second, ok: true, requests: 2},
		{name: "ping 503 then 200", route: "/v2/", h: func() http.HandlerFunc {
			var seen atomic.Int32
			return func(w http.ResponseWriter, r *http.Request) {
				if seen.Add(1) == 1 {
					w.WriteHeader(http.StatusServiceUnavailable)
				}
			}
		}(), budget: 5 * time.Second, ok: true, requests: 2},
		// Four attempts, with 0.1 + 0.3 + 0.9 s between them.
		{name: "500 forever, time to give up", route: "manifests/v1", h: failing(1000, http.StatusInternalServerError), budget: 5 * time.Second, requests: 4, minTime: 1200 * time.Millisecond,
			want: "registry answered 500 Internal Server Error", kind: registry.ErrUnreachable},
		{name: "500 forever, short deadline", route: "manifests/v1", h: failing(1000, http.StatusInternalServerError), budget: 300 * time.Millisecond, kind: registry.ErrUnreachable},
		{name: "401 is not retried", route: "manifests/v1", h: failing(1000, http.StatusUnauthorized), budget: 5 * time.Second, requests: 1, kind: registry.ErrUnauthorized},
		{name: "403 is not retried", route: "manifests/v1", h: failing(1000, http.StatusForbidden), budget: 5 * time.Second, requests: 1, kind: registry.ErrForbidden},
		{name: "400 is not retried", route: "manifests/v1", h: failing(1000, http.StatusBadRequest), budget: 5 * time.Second, requests: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, true)
			if tc.route != "manifests/v1" {
				h.route("manifests/v1", serveJSON(registry.MediaTypeOCIManifest, manifest))
			}
			var requests atomic.Int32
			h.route(tc.route, func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				tc.h(w, r)
			})
			c := newTLSClient(t, h.Server)
			start := time.Now()
			m, err := c.Resolve(deadline(t, tc.budget), h.Repo, "v1")
			took := time.Since(start)
			if took > tc.budget+500*time.Millisecond {
				t.Errorf("took %s, the deadline was %s", took, tc.budget)
			}
			if took < tc.minTime {
				t.Errorf("took %s, want at least %s of backoff", took, tc.minTime)
			}
			if tc.maxTime > 0 && took > tc.maxTime {
				t.Errorf("took %s, want the error within %s", took, tc.maxTime)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("error %v, want %q in it", err, tc.want)
			}
			if tc.kind != nil && !errors.Is(err, tc.kind) {
				t.Errorf("error %v, want one of kind %q", err, tc.kind)
			}
			for _, k := range []error{registry.ErrUnreachable, registry.ErrUnauthorized, registry.ErrForbidden, registry.ErrRateLimited, registry.ErrNotFound} {
				if !errors.Is(k, tc.kind) && errors.Is(err, k) {
					t.Errorf("error %v is of kind %q too", err, k)
				}
			}
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				if m.Digest != sha256Digest(manifest) {
					t.Errorf("digest %s, want %s", m.Digest, sha256Digest(manifest))
				}
			} else if err == nil {
				t.Fatal("succeeded against a failing registry")
			}
			if tc.requests > 0 {
				if n := int(requests.Load()); n != tc.requests {
					t.Errorf("%d requests, want %d", n, tc.requests)
				}
			}
			var se *registry.StatusError
			switch {
			case tc.ok:
			case tc.budget < time.Second:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("error %v, want one that wraps context.DeadlineExceeded", err)
				}
			case !errors.As(err, &se):
				t.Errorf("error %v, want a *StatusError", err)
			}
		})
	}
}

// net/http decompresses a gzip Content-Encoding transparently; the limits
// apply to the decompressed bytes, so a gzip bomb costs at most the limit.
// Not parallel: it measures the process's allocations.
func TestGzipBomb(t *testing.T) {
	bomb := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", registry.MediaTypeOCIManifest)
		w.Header().Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
		zeros := make([]byte, 1<<20)
		for r.Context().Err() == nil {
			if _, err := zw.Write(zeros); err != nil {
				return
			}
		}
	}
	h := newHostile(t, true)
	h.route("manifests/v1", bomb)
	h.route("blobs/"+hostileImage, bomb)
	h.route("manifests/"+tagOf(hostileImage, ".sig"), bomb)
	const limit = 1 << 20
	c := newTLSClient(t, h.Server, registry.WithLimits(registry.Limits{MaxManifestBytes: limit, MaxBlobBytes: limit}))
	for name, call := range map[string]func(ctx context.Context) error{
		"manifest": func(ctx context.Context) error { return resolveV1(ctx, c, h.Repo) },
		"blob": func(ctx context.Context) error {
			_, err := c.Blob(ctx, h.Repo, hostileImage)
			return err
		},
		"signature manifest": func(ctx context.Context) error { return evidence(ctx, c, h.Repo) },
	} {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			err := quickly(t, 5*time.Second, func() error { return call(deadline(t, 20*time.Second)) })
			runtime.ReadMemStats(&after)
			if !errors.Is(err, registry.ErrLimit) {
				t.Fatalf("error %v, want ErrLimit", err)
			}
			// The server's compressor and the client's buffers, not the bomb.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32*limit {
				t.Errorf("allocated %d MiB reading a bomb with a %d MiB limit", alloc>>20, limit>>20)
			}
		})
	}
}

// A connection that is refused is an error, not a hang.
func TestUnreachable(t *testing.T) {
	t.Parallel()
	addr := registrytest.UnreachableHost(t)
	c := newClient(t)
	err := quickly(t, 3*time.Second, func() error {
		_, err := c.Resolve(deadline(t, 10*time.Second), registry.Repository{Host: addr, Path: "app"}, "v1")
		return err
	})
	if !errors.Is(err, registry.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("error %v, want ErrUnreachable naming %s", err, addr)
	}
}

// A signature layer whose bytes do not match its digest fails the whole
// fetch: evidence is never returned unverified, nor silently dropped.
func TestEvidenceTamperedLayer(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	payload := []byte(`{"critical":{"image":{"docker-manifest-digest":"` + hostileImage + `"}}}`)
	l := registry.Descriptor{MediaType: "application/vnd.dev.cosign.simplesigning.v1+json", Digest: sha256Digest(payload), Size: int64(len(payload))}
	h.route("manifests/"+tagOf(hostileImage, ".sig"), serveJSON(registry.MediaTypeOCIManifest, manifestJSON(t, registry.ImageManifest{
		MediaType: registry.MediaTypeOCIManifest,
		Config:    registry.Descriptor{MediaType: "application/vnd.oci.image.config.v1+json", Digest: sha256Digest([]byte("{}")), Size: 2},
		Layers:    []registry.Descriptor{l},
	})))
	h.route("blobs/"+l.Digest, serveJSON("application/octet-stream", []byte(`{"critical":{"image":{"docker-manifest-digest":"sha256:other"}}}`)))
	c := newTLSClient(t, h.Server)
	ev, err := c.Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{})
	if !errors.Is(err, registry.ErrDigestMismatch) || len(ev) != 0 {
		t.Fatalf("Evidence: %d pieces, error %v; want none and ErrDigestMismatch", len(ev), err)
	}
}

// An answer that is not what was asked for (a manifest that is not JSON, a
// signature tag that is not an image manifest, a referrers list that is
// not an index) is ErrMalformed, with a message that says which.
func TestMalformedAnswers(t *testing.T) {
	t.Parallel()
	emptyIndex := manifestJSON(t, registry.Index{MediaType: registry.MediaTypeOCIIndex, Manifests: []registry.Descriptor{}})
	for _, tc := range []struct {
		name  string
		setup func(h *hostile)
		fetch func(c *registry.Client, h *hostile) error
		want  string
	}{
		{"manifest not JSON", func(h *hostile) {
			h.route("manifests/v1", serveJSON(registry.MediaTypeOCIManifest, []byte("<html>")))
		}, func(c *registry.Client, h *hostile) error {
			_, err := c.Resolve(t.Context(), h.Repo, "v1")
			return err
		}, "is not JSON"},
		{"signature tag not an image manifest", func(h *hostile) {
			h.route("manifests/"+tagOf(hostileImage, ".sig"), serveJSON(registry.MediaTypeOCIManifest, []byte(`{"layers": 5}`)))
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, emptyIndex))
		}, func(c *registry.Client, h *hostile) error {
			_, err := c.Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{SkipAttestations: true})
			return err
		}, tagOf(hostileImage, ".sig") + ": not an image manifest"},
		{"referrers not an index", func(h *hostile) {
			h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, []byte(`{"manifests": 5}`)))
		}, func(c *registry.Client, h *hostile) error {
			_, err := c.Referrers(t.Context(), h.Repo, hostileImage)
			return err
		}, "@" + hostileImage + ": not an index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, true)
			tc.setup(h)
			err := tc.fetch(newTLSClient(t, h.Server), h)
			if !errors.Is(err, registry.ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrMalformed saying %q", err, tc.want)
			}
			if errors.Is(err, registry.ErrUnreachable) || errors.Is(err, registry.ErrNotFound) {
				t.Errorf("error %v is of another kind too", err)
			}
		})
	}
}
