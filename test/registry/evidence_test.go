package registry_test

import (
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

const slsaProvenance = "https://slsa.dev/provenance/v1"

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
			s.Signed = e.Annotations[sigstoretest.AnnotationSignature] != ""
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
			out = append(out, summary{registry.LegacyAttestation, repo, sigstoretest.DSSEMediaType, slsaProvenance, digest, true})
		}
		out = append(out, summary{registry.LegacySignature, repo, sigstoretest.SimpleSigningMediaType, "", digest, true})
	case harness.Bundle:
		out = append(out, summary{registry.SigstoreBundle, repo, sigstoretest.BundleMediaType, sigstoretest.CosignSignPredicateType, digest, true})
		if attested {
			out = append(out, summary{registry.SigstoreBundle, repo, sigstoretest.BundleMediaType, slsaProvenance, digest, true})
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
				ev, err := c.Evidence(t.Context(), registry.Repository{Host: reg.Host, Path: "app"}, img.Digest, registry.EvidenceOptions{})
				if err != nil || len(ev) != 0 {
					t.Fatalf("Evidence of an unsigned image: %d pieces, error %v; want none and no error", len(ev), err)
				}
				refs, err := c.Referrers(t.Context(), registry.Repository{Host: reg.Host, Path: "app"}, img.Digest)
				if err != nil || len(refs) != 0 {
					t.Fatalf("Referrers of an unsigned image: %v, %v; want none and no error", refs, err)
				}
			})

			for _, f := range harness.Formats {
				t.Run(f.String(), func(t *testing.T) {
					img := reg.PushRandomImage(t, "app", f.String())
					repo := registry.Repository{Host: reg.Host, Path: "app"}
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
	repo := registry.Repository{Host: reg.Host, Path: "app"}
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
			sigRepo := registry.Repository{Host: reg.Host, Path: "signatures/app"}
			elsewhere := cosign.WithEnv("COSIGN_REPOSITORY=" + sigRepo.String())
			c := newClient(t)
			for _, f := range harness.Formats {
				t.Run(f.String(), func(t *testing.T) {
					img := reg.PushRandomImage(t, "app", f.String())
					repo := registry.Repository{Host: reg.Host, Path: "app"}

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
