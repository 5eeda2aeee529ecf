package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

const (
	simpleSigningType = "application/vnd.dev.cosign.simplesigning.v1+json"
	bundleV03Type     = "application/vnd.dev.sigstore.bundle.v0.3+json"
)

// Evidence refuses a malformed digest before asking the registry anything.
func TestEvidenceMalformedDigest(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	c := newTLSClient(t, h.Server)
	for _, d := range []string{"", "latest", "sha256:abc", "sha256:" + strings.Repeat("A", 64), "sha1:" + strings.Repeat("a", 40)} {
		if _, err := c.Evidence(t.Context(), h.Repo, d, registry.EvidenceOptions{}); err == nil {
			t.Errorf("Evidence(%q) succeeded", d)
		}
		if _, err := c.Referrers(t.Context(), h.Repo, d); err == nil {
			t.Errorf("Referrers(%q) succeeded", d)
		}
	}
	if n := h.totalHits(); n != 0 {
		t.Errorf("%d requests reached the registry", n)
	}
}

// Among an image's referrers only Sigstore bundles about this image count:
// other artifact types are not even fetched; a manifest whose subject is
// another image (a registry listing it does not make it so), or that has no
// subject, or is an index, is skipped; within a manifest only the bundle
// layers are read, and Evidence.Layer is their index in the manifest.
func TestEvidenceReferrerFiltering(t *testing.T) {
	t.Parallel()
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "tag schema"}[api], func(t *testing.T) {
			t.Parallel()
			h := newHostile(t, true)
			other := sha256Digest([]byte("another image"))
			bundleA, bundleD := []byte(`{"mediaType":"`+bundleV03Type+`","a":1}`), []byte(`{"mediaType":"`+bundleV03Type+`","d":1}`)
			sbom := []byte(`{"spdxVersion":"SPDX-2.3"}`)
			for _, b := range [][]byte{bundleA, bundleD, sbom} {
				h.route("blobs/"+sha256Digest(b), serveJSON("application/octet-stream", b))
			}
			emptyConfig := registry.Descriptor{MediaType: "application/vnd.oci.empty.v1+json", Digest: sha256Digest([]byte("{}")), Size: 2}
			layer := func(mt string, b []byte) registry.Descriptor {
				return registry.Descriptor{MediaType: mt, Digest: sha256Digest(b), Size: int64(len(b))}
			}
			subject := func(d string) *registry.Descriptor {
				return &registry.Descriptor{MediaType: registry.MediaTypeOCIManifest, Digest: d, Size: 1000}
			}
			var index []registry.Descriptor
			add := func(artifactType string, annotations map[string]string, m any) string {
				b := manifestJSON(t, m)
				d := sha256Digest(b)
				h.route("manifests/"+d, serveJSON(registry.MediaTypeOCIManifest, b))
				index = append(index, registry.Descriptor{MediaType: registry.MediaTypeOCIManifest, ArtifactType: artifactType, Digest: d, Size: int64(len(b)), Annotations: annotations})
				return d
			}
			a := add(bundleV03Type, nil, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundleV03Type,
				Config: emptyConfig, Layers: []registry.Descriptor{layer(bundleV03Type, bundleA)}, Subject: subject(hostileImage)})
			add(bundleV03Type, nil, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundleV03Type,
				Config: emptyConfig, Layers: []registry.Descriptor{layer(bundleV03Type, bundleA)}, Subject: subject(other)})
			c := add("application/spdx+json", nil, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest, ArtifactType: "application/spdx+json",
				Config: emptyConfig, Layers: []registry.Descriptor{layer("application/spdx+json", sbom)}, Subject: subject(hostileImage)})
			d := add(emptyConfig.MediaType, map[string]string{"dev.sigstore.bundle.content": "dsse-envelope"}, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest,
				Config: emptyConfig, Layers: []registry.Descriptor{layer("application/spdx+json", sbom), layer(bundleV03Type, bundleD)}, Subject: subject(hostileImage)})
			add(bundleV03Type, nil, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundleV03Type,
				Config: emptyConfig, Layers: []registry.Descriptor{layer(bundleV03Type, bundleA)}})
			add(bundleV03Type, nil, registry.Index{MediaType: registry.MediaTypeOCIIndex, Manifests: []registry.Descriptor{{MediaType: registry.MediaTypeOCIManifest, Digest: a, Size: 10}}})
			// Listed, but deleted since (the registry answers 404): skipped.
			index = append(index, registry.Descriptor{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundleV03Type, Digest: sha256Digest([]byte("deleted referrer")), Size: 100})

			idx := manifestJSON(t, registry.Index{MediaType: registry.MediaTypeOCIIndex, Manifests: index})
			if api {
				h.route("referrers/"+hostileImage, serveJSON(registry.MediaTypeOCIIndex, idx))
			} else {
				h.route("manifests/"+tagOf(hostileImage, ""), serveJSON(registry.MediaTypeOCIIndex, idx))
			}

			cl := newTLSClient(t, h.Server)
			ev, err := cl.Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			type got struct {
				Manifest string
				Layer    int
				Content  string
			}
			var gots []got
			for _, e := range ev {
				if e.Kind != registry.SigstoreBundle || e.MediaType != bundleV03Type || e.Repository != h.Repo {
					t.Errorf("%s: kind %s, media type %s", e.Source(), e.Kind, e.MediaType)
				}
				gots = append(gots, got{e.Manifest, e.Layer, string(e.Content)})
			}
			slices.SortFunc(gots, func(x, y got) int { return strings.Compare(x.Content, y.Content) })
			wantGots := []got{{a, 0, string(bundleA)}, {d, 1, string(bundleD)}}
			slices.SortFunc(wantGots, func(x, y got) int { return strings.Compare(x.Content, y.Content) })
			if diff := cmp.Diff(wantGots, gots); diff != "" {
				t.Errorf("bundle evidence (-want +got):\n%s", diff)
			}
			if n := h.count("manifests/" + c); n != 0 {
				t.Errorf("the SBOM referrer was fetched %d times; its artifact type says it is no bundle", n)
			}
			if n := h.count("blobs/" + sha256Digest(sbom)); n != 0 {
				t.Errorf("a non-bundle layer was fetched %d times", n)
			}
		})
	}
}

// TestReferrersAPIAbsenceRemembered: a registry that answered it has no
// referrers API is asked its tag schema directly afterwards, and requests
// made while the first waits for that answer wait with it; one with the
// API is asked the API every time.
func TestReferrersAPIAbsenceRemembered(t *testing.T) {
	for _, withAPI := range []bool{false, true} {
		t.Run(fmt.Sprintf("referrers API %v", withAPI), func(t *testing.T) {
			reg := registrytest.StartInProcess(t, withAPI)
			var mu sync.Mutex
			var paths []string
			rt := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				paths = append(paths, r.URL.Path)
				mu.Unlock()
				return http.DefaultTransport.RoundTrip(r)
			})
			c := newClient(t, registry.WithTransport(rt))
			// The first requests come at once (the audit's workers, a pod
			// of several images): they ask the API once between them.
			var imgs []registrytest.Image
			for _, tag := range []string{"a", "b", "c"} {
				imgs = append(imgs, reg.PushRandomImage(t, "app", tag))
			}
			var wg sync.WaitGroup
			for _, img := range imgs {
				wg.Go(func() {
					if _, err := c.Referrers(t.Context(), repoOf(t, img.Ref), img.Digest); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			api := 0
			for _, p := range paths {
				if strings.Contains(p, "/referrers/") {
					api++
				}
			}
			want := 1
			if withAPI {
				want = 3
			}
			if api != want {
				t.Errorf("asked the referrers API %d times for 3 images; want %d (requests %q)", api, want, paths)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestEvidenceStopsWhenEnough: once the evidence found is enough (the
// caller's policy passes), lookups still running are cancelled and what
// was found is returned; otherwise every lookup runs to its end.
func TestEvidenceStopsWhenEnough(t *testing.T) {
	t.Parallel()
	sigBlob := []byte(`{"critical":{}}`)
	bundle := []byte(`{"mediaType":"` + bundleV03Type + `"}`)
	sigManifest := manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest,
		Layers: []registry.Descriptor{{MediaType: simpleSigningType, Digest: sha256Digest(sigBlob), Size: int64(len(sigBlob))}}})
	referrer := manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundleV03Type,
		Layers:  []registry.Descriptor{{MediaType: bundleV03Type, Digest: sha256Digest(bundle), Size: int64(len(bundle))}},
		Subject: &registry.Descriptor{MediaType: registry.MediaTypeOCIManifest, Digest: hostileImage, Size: 1000}})
	index := manifestJSON(t, registry.Index{MediaType: registry.MediaTypeOCIIndex, Manifests: []registry.Descriptor{
		{MediaType: registry.MediaTypeOCIManifest, ArtifactType: bundleV03Type, Digest: sha256Digest(referrer), Size: int64(len(referrer))}}})

	// newRegistry serves the .sig and its layer at once; the referrers
	// list is answered only once release is closed (or the request is
	// cancelled, which cancelled reports).
	newRegistry := func(t *testing.T) (h *hostile, release, cancelled chan struct{}) {
		h = newHostile(t, true)
		release, cancelled = make(chan struct{}), make(chan struct{}, 1)
		h.route("manifests/"+tagOf(hostileImage, ".sig"), serveJSON(registry.MediaTypeOCIManifest, sigManifest))
		h.route("blobs/"+sha256Digest(sigBlob), serveJSON("application/octet-stream", sigBlob))
		h.route("blobs/"+sha256Digest(bundle), serveJSON("application/octet-stream", bundle))
		h.route("manifests/"+sha256Digest(referrer), serveJSON(registry.MediaTypeOCIManifest, referrer))
		h.route("referrers/"+hostileImage, func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
				serveJSON(registry.MediaTypeOCIIndex, index)(w, r)
			case <-r.Context().Done():
				cancelled <- struct{}{}
			}
		})
		return h, release, cancelled
	}
	kinds := func(ev []registry.Evidence) []registry.Kind {
		var out []registry.Kind
		for _, e := range ev {
			out = append(out, e.Kind)
		}
		slices.Sort(out)
		return out
	}

	t.Run("enough", func(t *testing.T) {
		t.Parallel()
		h, _, cancelled := newRegistry(t)
		var asked [][]registry.Kind
		// Without the stop, the referrers (never released) would hold it
		// until this deadline.
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		ev, err := newTLSClient(t, h.Server).Evidence(ctx, h.Repo, hostileImage, registry.EvidenceOptions{
			SkipAttestations: true,
			Enough: func(ev []registry.Evidence) bool {
				asked = append(asked, kinds(ev))
				return true
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]registry.Kind{registry.LegacySignature}, kinds(ev)); diff != "" {
			t.Errorf("evidence (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([][]registry.Kind{{registry.LegacySignature}}, asked); diff != "" {
			t.Errorf("Enough was asked about (-want +got):\n%s", diff)
		}
		// The referrers request was cancelled, or never sent.
		if h.count("referrers/"+hostileImage) > 0 {
			select {
			case <-cancelled:
			case <-time.After(10 * time.Second):
				t.Fatal("the referrers request was not cancelled")
			}
		}
		if n := h.count("blobs/" + sha256Digest(bundle)); n != 0 {
			t.Errorf("the bundle was fetched %d times after the evidence was enough", n)
		}
	})

	t.Run("not enough", func(t *testing.T) {
		t.Parallel()
		h, release, _ := newRegistry(t)
		var asked [][]registry.Kind
		ev, err := newTLSClient(t, h.Server).Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{
			SkipAttestations: true,
			Enough: func(ev []registry.Evidence) bool {
				asked = append(asked, kinds(ev))
				close(release) // the referrers are answered only now: the .sig came first
				return false
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]registry.Kind{registry.LegacySignature, registry.SigstoreBundle}, kinds(ev)); diff != "" {
			t.Errorf("evidence (-want +got):\n%s", diff)
		}
		// Asked once: not again when the last lookup ends (nothing is left to cancel).
		if diff := cmp.Diff([][]registry.Kind{{registry.LegacySignature}}, asked); diff != "" {
			t.Errorf("Enough was asked about (-want +got):\n%s", diff)
		}
	})

	t.Run("an error before it is enough", func(t *testing.T) {
		t.Parallel()
		h, _, _ := newRegistry(t)
		h.route("referrers/"+hostileImage, func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down for maintenance", http.StatusForbidden)
		})
		h.route("manifests/"+tagOf(hostileImage, ".sig"), func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done() // answered only after the referrers failed
		})
		_, err := newTLSClient(t, h.Server).Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{
			SkipAttestations: true,
			Enough:           func([]registry.Evidence) bool { return true },
		})
		if !errors.Is(err, registry.ErrForbidden) || !strings.Contains(err.Error(), "registry answered 403 Forbidden") {
			t.Fatalf("want the referrers error (ErrForbidden, saying 403 Forbidden), got %v", err)
		}
	})
}

// TestEvidenceLegacyFirst: in a repository whose images passed on their
// legacy .sig alone, the next image's referrers are read only if its .sig
// is not enough; once it is not, the lookups run in parallel again.
func TestEvidenceLegacyFirst(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	sigBlob := []byte(`{"critical":{}}`)
	// The registry has no referrers API and this image no referrers: the
	// client asks the API once, then the tag schema.
	referrerRequests := func() int { return h.count("referrers/"+hostileImage) + h.count("manifests/"+tagOf(hostileImage, "")) }
	sig := serveJSON(registry.MediaTypeOCIManifest, manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest,
		Layers: []registry.Descriptor{{MediaType: simpleSigningType, Digest: sha256Digest(sigBlob), Size: int64(len(sigBlob))}}}))
	var first atomic.Bool
	first.Store(true)
	h.route("manifests/"+tagOf(hostileImage, ".sig"), func(w http.ResponseWriter, r *http.Request) {
		// On the first image, where both are read at once, the .sig waits
		// for the tag schema's request: one the .sig's answer cancelled
		// could reach the registry later, and be counted in a later step.
		for start := time.Now(); first.Load() && h.count("manifests/"+tagOf(hostileImage, "")) == 0 && time.Since(start) < 2*time.Second; {
			time.Sleep(time.Millisecond)
		}
		sig(w, r)
	})
	h.route("blobs/"+sha256Digest(sigBlob), serveJSON("application/octet-stream", sigBlob))

	cl := newTLSClient(t, h.Server)
	var enough bool
	var asked int
	get := func() []registry.Evidence {
		t.Helper()
		ev, err := cl.Evidence(t.Context(), h.Repo, hostileImage, registry.EvidenceOptions{
			SkipAttestations: true,
			Enough: func([]registry.Evidence) bool {
				asked++
				return enough
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ev) != 1 || ev[0].Kind != registry.LegacySignature {
			t.Fatalf("want the .sig, got %d pieces of evidence", len(ev))
		}
		return ev
	}
	const either = 2 // read or not: whichever lookup ends first decides
	for i, step := range []struct {
		enough        bool
		referrersRead int // 0 no, 1 yes, either
		name          string
	}{
		{true, 1, "first image: everything is read in parallel, and the .sig was enough"},
		{true, 0, "next image: the .sig first, and it is enough"},
		{true, 0, "and the next"},
		{false, 1, "a .sig that is not enough: the referrers are read after it"},
		{false, 1, "and from then on, everything is read again"},
	} {
		before, askedBefore := referrerRequests(), asked
		enough = step.enough
		get()
		first.Store(false)
		read := 0
		if referrerRequests() > before {
			read = 1
		}
		if step.referrersRead != either && read != step.referrersRead {
			t.Errorf("step %d (%s): referrers read: %d, want %d", i, step.name, read, step.referrersRead)
		}
		if asked == askedBefore {
			t.Errorf("step %d (%s): Enough was not asked", i, step.name)
		}
	}
}
