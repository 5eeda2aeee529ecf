package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
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
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

const (
	slsaProvenance      = "https://slsa.dev/provenance/v1"
	cosignSignPredicate = "https://sigstore.dev/cosign/sign/v1"
	simpleSigningType   = "application/vnd.dev.cosign.simplesigning.v1+json"
	dsseType            = "application/vnd.dsse.envelope.v1+json"
	bundleV03Type       = "application/vnd.dev.sigstore.bundle.v0.3+json"
	cosignSignatureAnno = "dev.cosignproject.cosign/signature"
)

// summary is what a test can check of one piece of evidence without
// verifying it: where it was found, its format, and what its payload claims.
type summary struct {
	Kind       registry.Kind
	Repository registry.Repository
	MediaType  string
	// PredicateType of an in-toto statement; empty for simple signing.
	PredicateType string
	// Subject is the image digest the payload names.
	Subject string
	// Signed: a signature is present (in the annotation for legacy signatures,
	// in the DSSE envelope otherwise).
	Signed bool
}

type dsseEnvelope struct {
	PayloadType string `json:"payloadType"`
	Payload     string `json:"payload"`
	Signatures  []struct {
		Sig string `json:"sig"`
	} `json:"signatures"`
}

func summarize(t *testing.T, ev []registry.Evidence) []summary {
	t.Helper()
	out := make([]summary, 0, len(ev))
	for _, e := range ev {
		s := summary{Kind: e.Kind, Repository: e.Repository, MediaType: e.MediaType}
		switch e.Kind {
		case registry.LegacySignature:
			var p struct {
				Critical struct {
					Image struct {
						Digest string `json:"docker-manifest-digest"`
					} `json:"image"`
				} `json:"critical"`
			}
			if err := json.Unmarshal(e.Content, &p); err != nil {
				t.Fatalf("%s: not a simple-signing payload: %v", e.Source(), err)
			}
			s.Subject = p.Critical.Image.Digest
			s.Signed = e.Annotations[cosignSignatureAnno] != ""
		case registry.LegacyAttestation:
			var env dsseEnvelope
			if err := json.Unmarshal(e.Content, &env); err != nil {
				t.Fatalf("%s: not a DSSE envelope: %v", e.Source(), err)
			}
			s.PredicateType, s.Subject = statement(t, e, env)
			s.Signed = len(env.Signatures) > 0 && env.Signatures[0].Sig != ""
			if got := e.Annotations["predicateType"]; got != s.PredicateType {
				t.Errorf("%s: predicateType annotation %q, statement says %q", e.Source(), got, s.PredicateType)
			}
		case registry.SigstoreBundle:
			var b struct {
				MediaType    string        `json:"mediaType"`
				DSSEEnvelope *dsseEnvelope `json:"dsseEnvelope"`
			}
			if err := json.Unmarshal(e.Content, &b); err != nil || b.DSSEEnvelope == nil {
				t.Fatalf("%s: not a DSSE Sigstore bundle (%v): %s", e.Source(), err, e.Content)
			}
			if b.MediaType != e.MediaType {
				t.Errorf("%s: bundle media type %q, layer says %q", e.Source(), b.MediaType, e.MediaType)
			}
			s.PredicateType, s.Subject = statement(t, e, *b.DSSEEnvelope)
			s.Signed = len(b.DSSEEnvelope.Signatures) > 0 && b.DSSEEnvelope.Signatures[0].Sig != ""
		default:
			t.Errorf("%s: unknown kind %d", e.Source(), e.Kind)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b summary) int {
		return strings.Compare(a.Kind.String()+a.Repository.String()+a.PredicateType, b.Kind.String()+b.Repository.String()+b.PredicateType)
	})
	return out
}

// statement decodes the in-toto statement in env and returns its predicate
// type and the sha256 digest of its only subject.
func statement(t *testing.T, e registry.Evidence, env dsseEnvelope) (predicateType, subject string) {
	t.Helper()
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatalf("%s: DSSE payload is not base64: %v", e.Source(), err)
	}
	var st struct {
		PredicateType string `json:"predicateType"`
		Subject       []struct {
			Digest map[string]string `json:"digest"`
		} `json:"subject"`
	}
	if err := json.Unmarshal(payload, &st); err != nil || len(st.Subject) != 1 {
		t.Fatalf("%s: not an in-toto statement with one subject (%v): %s", e.Source(), err, payload)
	}
	return st.PredicateType, "sha256:" + st.Subject[0].Digest["sha256"]
}

// want lists the evidence cosign writes for one `cosign sign` and, if
// attested, one `cosign attest` with predicate type slsaProvenance.
func want(f harness.Format, repo registry.Repository, digest string, attested bool) []summary {
	var out []summary
	switch f {
	case harness.Legacy:
		if attested {
			out = append(out, summary{registry.LegacyAttestation, repo, dsseType, slsaProvenance, digest, true})
		}
		out = append(out, summary{registry.LegacySignature, repo, simpleSigningType, "", digest, true})
	case harness.Bundle:
		out = append(out, summary{registry.SigstoreBundle, repo, bundleV03Type, cosignSignPredicate, digest, true})
		if attested {
			out = append(out, summary{registry.SigstoreBundle, repo, bundleV03Type, slsaProvenance, digest, true})
		}
	}
	return out
}

var registryKinds = []struct {
	name  string
	start func(testing.TB) *registrytest.Registry
}{
	{"distribution, referrers tag schema", func(t testing.TB) *registrytest.Registry { return harness.StartRegistry(t) }},
	{"in-process, referrers API", func(t testing.TB) *registrytest.Registry { return registrytest.StartInProcess(t, true) }},
	{"in-process, referrers tag schema", func(t testing.TB) *registrytest.Registry { return registrytest.StartInProcess(t, false) }},
}

// Images signed and attested by the real cosign CLI, in both its formats, in
// every registry kind: Evidence returns each signature and attestation with
// its payload and annotations, found where cosign put it.
func TestEvidenceFromCosign(t *testing.T) {
	t.Parallel()
	for _, rk := range registryKinds {
		t.Run(rk.name, func(t *testing.T) {
			t.Parallel()
			reg := rk.start(t)
			cosign := harness.NewCosign(t)
			key := cosign.GenerateKeyPair(t)
			c := newClient(t)

			t.Run("unsigned", func(t *testing.T) {
				img := reg.PushRandomImage(t, "app", "unsigned")
				ev, err := c.Evidence(t.Context(), repoOf(t, img.Ref), img.Digest, registry.EvidenceOptions{})
				if err != nil || len(ev) != 0 {
					t.Fatalf("Evidence of an unsigned image: %d pieces, error %v; want none and no error", len(ev), err)
				}
				refs, err := c.Referrers(t.Context(), repoOf(t, img.Ref), img.Digest)
				if err != nil || len(refs) != 0 {
					t.Fatalf("Referrers of an unsigned image: %v, %v; want none and no error", refs, err)
				}
			})

			for _, f := range harness.Formats {
				t.Run(f.String(), func(t *testing.T) {
					img := reg.PushRandomImage(t, "app", f.String())
					repo := repoOf(t, img.Ref)
					// Another signed image in the same repository must not show up.
					decoy := reg.PushRandomImage(t, "app", f.String()+"-decoy")
					cosign.Sign(t, decoy.Ref, key, f)

					cosign.Sign(t, img.Ref, key, f)
					ev, err := c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want(f, repo, img.Digest, false), summarize(t, ev)); diff != "" {
						t.Errorf("evidence after cosign sign (-want +got):\n%s", diff)
					}

					cosign.Attest(t, img.Ref, key, slsaProvenance, []byte(`{"buildDefinition":{"buildType":"test"}}`), f)
					ev, err = c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want(f, repo, img.Digest, true), summarize(t, ev)); diff != "" {
						t.Errorf("evidence after cosign attest (-want +got):\n%s", diff)
					}
					checkManifests(t, c, reg, img, f, ev)
				})
			}
		})
	}
}

// checkManifests checks that each piece of evidence names the manifest it
// came from: the .sig/.att tag's manifest for legacy evidence, one of the
// image's referrers for bundles.
func checkManifests(t *testing.T, c *registry.Client, reg *registrytest.Registry, img registrytest.Image, f harness.Format, ev []registry.Evidence) {
	t.Helper()
	repo := repoOf(t, img.Ref)
	refs, err := c.Referrers(t.Context(), repo, img.Digest)
	if err != nil {
		t.Fatal(err)
	}
	var referrers []string
	for _, r := range refs {
		referrers = append(referrers, r.Digest)
	}
	if f == harness.Bundle && len(referrers) != 2 {
		t.Errorf("%d referrers, want 2 (a signature and an attestation)", len(referrers))
	}
	if f == harness.Legacy && len(referrers) != 0 {
		t.Errorf("%d referrers of a legacy-signed image, want 0", len(referrers))
	}
	for _, e := range ev {
		switch e.Kind {
		case registry.LegacySignature, registry.LegacyAttestation:
			suffix := map[registry.Kind]string{registry.LegacySignature: ".sig", registry.LegacyAttestation: ".att"}[e.Kind]
			tag, err := name.NewTag(reg.Repo("app")+":"+tagOf(img.Digest, suffix), name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(tag)
			if err != nil {
				t.Fatal(err)
			}
			if e.Manifest != desc.Digest.String() || e.Layer != 0 {
				t.Errorf("%s: want manifest %s layer 0", e.Source(), desc.Digest)
			}
		case registry.SigstoreBundle:
			if !slices.Contains(referrers, e.Manifest) || e.Layer != 0 {
				t.Errorf("%s: want layer 0 of one of the referrers %v", e.Source(), referrers)
			}
		}
		if !strings.Contains(e.Source(), e.Manifest) || !strings.Contains(e.Source(), repo.String()) {
			t.Errorf("Source() %q does not say where the evidence is", e.Source())
		}
	}
}

// Signatures cosign wrote into another repository (COSIGN_REPOSITORY) are
// found there when EvidenceOptions.SignatureRepository says so, and only then;
// the image's own repository is then not consulted.
func TestEvidenceSignatureRepository(t *testing.T) {
	t.Parallel()
	for _, rk := range registryKinds {
		t.Run(rk.name, func(t *testing.T) {
			t.Parallel()
			reg := rk.start(t)
			cosign := harness.NewCosign(t)
			key := cosign.GenerateKeyPair(t)
			sigRepo := repoOf(t, reg.Repo("signatures/app"))
			elsewhere := cosign.WithEnv("COSIGN_REPOSITORY=" + sigRepo.String())
			c := newClient(t)
			for _, f := range harness.Formats {
				t.Run(f.String(), func(t *testing.T) {
					img := reg.PushRandomImage(t, "app", f.String())
					repo := repoOf(t, img.Ref)

					elsewhere.Sign(t, img.Ref, key, f)
					ev, err := c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{})
					if err != nil || len(ev) != 0 {
						t.Fatalf("without SignatureRepository: %d pieces, error %v; want none (they are elsewhere)", len(ev), err)
					}
					ev, err = c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{SignatureRepository: &sigRepo})
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want(f, sigRepo, img.Digest, false), summarize(t, ev)); diff != "" {
						t.Errorf("evidence in the signature repository (-want +got):\n%s", diff)
					}

					// A signature in the image's own repository as well: each
					// setting reads its own repository only.
					cosign.Sign(t, img.Ref, key, f)
					ev, err = c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want(f, repo, img.Digest, false), summarize(t, ev)); diff != "" {
						t.Errorf("evidence in the image repository (-want +got):\n%s", diff)
					}
					ev, err = c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{SignatureRepository: &sigRepo})
					if err != nil {
						t.Fatal(err)
					}
					if diff := cmp.Diff(want(f, sigRepo, img.Digest, false), summarize(t, ev)); diff != "" {
						t.Errorf("evidence with SignatureRepository set (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

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
// referrers API is asked its tag schema directly afterwards; one with the
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
			for _, tag := range []string{"a", "b", "c"} {
				img := reg.PushRandomImage(t, "app", tag)
				if _, err := c.Referrers(t.Context(), repoOf(t, img.Ref), img.Digest); err != nil {
					t.Fatal(err)
				}
			}
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
