package realsigs_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/verifytest"
)

// Media types and annotations of cosign's legacy layers.
const (
	dsseMediaType       = "application/vnd.dsse.envelope.v1+json"
	annotationSignature = "dev.cosignproject.cosign/signature"
	annotationBundle    = "dev.sigstore.cosign/bundle"
)

// The identities of the recorded signatures (see each fixture's README.md).
var (
	mitrID = verify.Identity{Issuer: "https://github.com/login/oauth", Subject: "mitr@redhat.com"}
	codyID = verify.Identity{Issuer: "https://github.com/login/oauth", Subject: "cody@soyland.com"}
	// distrolessID signed ghcr.io/distroless/static's vulnerability attestation.
	distrolessID = verify.Identity{
		Issuer:  "https://token.actions.githubusercontent.com",
		Subject: "https://github.com/distroless/static/.github/workflows/release.yaml@refs/heads/main",
	}
	// rhtasID signed rhtas-console's example attestation.
	rhtasID = verify.Identity{Issuer: "https://accounts.google.com", Subject: "fghanmi@redhat.com"}
	// strangerID is nobody who signed any of them.
	strangerID = verify.Identity{Issuer: "https://github.com/login/oauth", Subject: "someone@example.com"}
)

// TestLegacySignatureKeyless verifies a legacy .sig that cosign made keyless
// with the public-good Fulcio and Rekor (containers/image's fixture).
func TestLegacySignatureKeyless(t *testing.T) {
	w := newWorld(t, true)
	sig := readContainersSignature(t, "legacy-sig-keyless")
	img := w.replay(t, "cosign-signed/fulcio-rekor-1", "legacy-sig-keyless", sig.annotations)

	t.Run("the signer's identity", func(t *testing.T) {
		res := w.check(t, img.Tag, keylessPolicy(t, mitrID))
		verifytest.WantVerified(t, res)
		wantSignature(t, res, mitrID, "", sig.logIndex(t), sig.integratedTime(t))
		verifytest.WantVerified(t, w.check(t, img.Ref, keylessPolicy(t, verify.Identity{
			IssuerRegExp: `https://github\.com/login/oauth`, SubjectRegExp: `[a-z]+@redhat\.com`,
		})))
	})
	t.Run("another identity", func(t *testing.T) {
		verifytest.WantDenied(t, w.check(t, img.Ref, keylessPolicy(t, strangerID)),
			"certificate identity (issuer https://github.com/login/oauth, subject mitr@redhat.com) does not match identities [issuer https://github.com/login/oauth, subject someone@example.com]",
			verify.ErrIdentityMismatch)
	})
	t.Run("a tampered signature", func(t *testing.T) {
		other := w.replay(t, "tampered/fulcio-rekor-1", "legacy-sig-keyless", sig.with(t, annotationSignature, flipByte))
		// The log entry records the original signature: the tampered one
		// no longer matches it.
		verifytest.WantDenied(t, w.check(t, other.Ref, keylessPolicy(t, mitrID)), "transparency log signature does not match", verify.ErrTransparencyLog)
	})
	t.Run("copied to another image", func(t *testing.T) {
		other := w.reg.PushRandomImage(t, "cosign-signed/fulcio-rekor-1", "copied")
		w.reg.AttachLegacy(t, other, ".sig", sig.mediaType, sig.payload, sig.annotations)
		verifytest.WantDenied(t, w.check(t, other.Ref, keylessPolicy(t, mitrID)), "signature is for sha256:0489474da8ea22426ece86ace6c1c0026ab2fd3cdfbbd62b7e94650266c37d9a, not "+other.Digest, verify.ErrDigestMismatch)
	})
}

// TestLegacySignatureKeyWithRekor verifies a legacy .sig that cosign made
// with a key and, as it does by default, wrote to the public-good Rekor
// (containers/image's fixture): the log entry is verified with the embedded
// root, not ignored.
func TestLegacySignatureKeyWithRekor(t *testing.T) {
	w := newWorld(t, true)
	sig := readContainersSignature(t, "legacy-sig-key-rekor")
	img := w.replay(t, "cosign-signed/key-1", "legacy-sig-key-rekor", sig.annotations)
	key, err := verify.ParsePublicKeyPEM(readFixture(t, "legacy-sig-key-rekor", "cosign2.pub"))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("the key, with its log entry", func(t *testing.T) {
		res := w.check(t, img.Tag, keyPolicy(t, key, false))
		verifytest.WantVerified(t, res)
		wantSignature(t, res, verify.Identity{}, key.Fingerprint, sig.logIndex(t), sig.integratedTime(t))
	})
	t.Run("another key", func(t *testing.T) {
		verifytest.WantDenied(t, w.check(t, img.Ref, keyPolicy(t, otherKey(t), false)), "signature does not verify with the trusted key", verify.ErrBadSignature)
	})
	t.Run("a forged signed entry timestamp", func(t *testing.T) {
		other := w.replay(t, "forged-set/key-1", "legacy-sig-key-rekor", sig.with(t, annotationBundle, forgeSET))
		verifytest.WantDenied(t, w.check(t, other.Ref, keyPolicy(t, key, false)), "not enough verified log entries from transparency log", verify.ErrTransparencyLog)
	})
	t.Run("without its log entry", func(t *testing.T) {
		other := w.replay(t, "no-entry/key-1", "legacy-sig-key-rekor", sig.with(t, annotationBundle, nil))
		verifytest.WantDenied(t, w.check(t, other.Ref, keyPolicy(t, key, false)), "not enough verified log entries from transparency log", verify.ErrTransparencyLog)
		// Only a policy that says so accepts a key's signature without a log entry.
		verifytest.WantVerified(t, w.check(t, other.Ref, keyPolicy(t, key, true)))
	})
}

// TestLegacyAttestationKeyless replays a legacy .att that distroless's
// release workflow made keyless with the public-good Fulcio and Rekor
// (policy-controller's fixture). Only the attestation was recorded, not the
// image: it is read by digest, which needs no manifest.
//
// It is not verified today, and the test says so: cosign wrote legacy
// attestations to Rekor as intoto v0.0.1 entries, which sigstore-go does
// not parse (it knows intoto v0.0.2, dsse v0.0.1 and hashedrekord v0.0.1),
// so the evidence is denied as malformed, never accepted. When signet
// verifies such entries, this test must turn into a verification with the
// release workflow's identity and a negative with another.
func TestLegacyAttestationKeyless(t *testing.T) {
	const (
		digest        = "sha256:a1e82f6a5f6dfc735165d3442e7cc5a615f72abac3db19452481f5f3c90fbfa8"
		predicateType = "https://cosign.sigstore.dev/attestation/vuln/v1"
	)
	w := newWorld(t, true)
	envelope := readFixture(t, "legacy-att-keyless", "envelope.json")
	ann := readAnnotations(t, "legacy-att-keyless")
	if got, want := recordedEntry(t, ann[annotationBundle]).kind(t), "intoto 0.0.1"; got != want {
		t.Fatalf("the recorded Rekor entry is %s, want %s", got, want)
	}
	img := registrytest.Image{Digest: digest, Ref: w.reg.Repo("distroless/static") + "@" + digest}
	w.reg.AttachLegacy(t, img, ".att", dsseMediaType, envelope, ann)
	policy := keylessPolicy(t, distrolessID, verify.Attestation{Name: "vuln", PredicateType: predicateType})
	verifytest.WantDenied(t, w.check(t, img.Ref, policy),
		"entry body is not a recognizable Rekor v1 or Rekor v2 type: intoto implementation for version '0.0.1' not found",
		verify.ErrNoAttestation, verify.ErrMalformed)
}

// TestLegacyAttestationKeylessDSSE verifies a legacy .att that cosign made
// keyless with the public-good Fulcio and Rekor in 2025 (rhtas-console's
// recorded example). Since v2.2.3 cosign logs attestations as dsse v0.0.1
// entries, which sigstore-go verifies. Only the attestation was recorded,
// not the image (a ttl.sh image long expired): it is read by digest, which
// needs no manifest.
func TestLegacyAttestationKeylessDSSE(t *testing.T) {
	const (
		fixture       = "legacy-att-keyless-dsse"
		digest        = "sha256:26228cd4256c4370c51b4a25cfd8636cb18b1ef34ae51f7152fc05c803c41aa7"
		predicateType = "https://example.com/attestations/build"
	)
	envelope := readFixture(t, fixture, "envelope.json")
	ann := readAnnotations(t, fixture)
	entry := recordedEntry(t, ann[annotationBundle])
	if got, want := entry.kind(t), "dsse 0.0.1"; got != want {
		t.Fatalf("the recorded Rekor entry is %s, want %s", got, want)
	}
	// The log entry hashes the envelope cosign pushed: these are the layer's bytes.
	if got, want := fmt.Sprintf("%x", sha256.Sum256(envelope)), entry.envelopeHash(t); got != want {
		t.Fatalf("envelope.json hashes to %s, the log entry records %s", got, want)
	}
	builds := func(cond string) verify.Attestation {
		return verify.Attestation{Name: "build", PredicateType: predicateType, Conditions: []string{cond}}
	}
	w := newWorld(t, true)
	img := registrytest.Image{Digest: digest, Ref: w.reg.Repo("rhtas/console-test-image") + "@" + digest}
	w.reg.AttachLegacy(t, img, ".att", dsseMediaType, envelope, ann)

	t.Run("the signer's identity", func(t *testing.T) {
		res := w.check(t, img.Ref, keylessPolicy(t, rhtasID, builds(`predicate.builder.id == "example-builder"`)))
		verifytest.WantVerified(t, res)
		wantSignature(t, res, rhtasID, "", entry.Payload.LogIndex, time.Unix(entry.Payload.IntegratedTime, 0))
	})
	t.Run("a condition the statement does not meet", func(t *testing.T) {
		verifytest.WantDenied(t, w.check(t, img.Ref, keylessPolicy(t, rhtasID, builds(`predicate.builder.id == "another-builder"`))),
			`condition "predicate.builder.id == \"another-builder\"" is false`, verify.ErrConditionFailed)
	})
	t.Run("another identity", func(t *testing.T) {
		verifytest.WantDenied(t, w.check(t, img.Ref, keylessPolicy(t, strangerID, builds("true"))),
			"certificate identity (issuer https://accounts.google.com, subject fghanmi@redhat.com) does not match identities [issuer https://github.com/login/oauth, subject someone@example.com]",
			verify.ErrIdentityMismatch)
	})
	t.Run("copied to another image", func(t *testing.T) {
		other := w.reg.PushRandomImage(t, "rhtas/console-test-image", "copied")
		w.reg.AttachLegacy(t, other, ".att", dsseMediaType, envelope, ann)
		verifytest.WantDenied(t, w.check(t, other.Ref, keylessPolicy(t, rhtasID, builds("true"))), "signed statement is for another digest", verify.ErrDigestMismatch)
	})
	t.Run("its statement retargeted to another image", func(t *testing.T) {
		other := w.reg.PushRandomImage(t, "rhtas/console-test-image", "retargeted")
		forged := retarget(t, envelope, strings.TrimPrefix(digest, "sha256:"), strings.TrimPrefix(other.Digest, "sha256:"))
		w.reg.AttachLegacy(t, other, ".att", dsseMediaType, forged, ann)
		// The log entry records the hash of the statement that was signed:
		// the changed one no longer matches it.
		verifytest.WantDenied(t, w.check(t, other.Ref, keylessPolicy(t, rhtasID, builds("true"))), "does not match envelope payload hash 0b1a060585223b7373d8e90e730b163820fd49e32ce49a685f61aa99cb88df8e", verify.ErrTransparencyLog)
	})
}

// TestBundleAttestation verifies a Sigstore bundle (v0.3, DSSE, Rekor dsse
// entry) that cosign made keyless with the public-good Fulcio and Rekor for
// go-containerregistry's empty image (cosign's fixture), attached as an OCI
// referrer, through the referrers API and through the tag schema.
func TestBundleAttestation(t *testing.T) {
	const predicateType = "https://cosign.sigstore.dev/attestation/v1"
	bundleJSON := readFixture(t, "bundle-attestation", "oci-attestation.sigstore.json")
	var rec struct {
		VerificationMaterial struct {
			TlogEntries []struct {
				LogIndex       int64 `json:"logIndex,string"`
				IntegratedTime int64 `json:"integratedTime,string"`
			} `json:"tlogEntries"`
		} `json:"verificationMaterial"`
	}
	if err := json.Unmarshal(bundleJSON, &rec); err != nil || len(rec.VerificationMaterial.TlogEntries) != 1 {
		t.Fatalf("reading the bundle's log entry: %v", err)
	}
	entry := rec.VerificationMaterial.TlogEntries[0]
	att := func(cond string) []verify.Attestation {
		return []verify.Attestation{{Name: "data", PredicateType: predicateType, Conditions: []string{cond}}}
	}
	for _, referrers := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "tag schema"}[referrers], func(t *testing.T) {
			w := newWorld(t, referrers)
			img := w.reg.PushImage(t, "repo", "tag", empty.Image)
			if want := "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"; img.Digest != want {
				t.Fatalf("go-containerregistry's empty image has digest %s, the statement names %s", img.Digest, want)
			}
			w.reg.AttachBundle(t, img, bundleJSON)

			t.Run("the signer's identity", func(t *testing.T) {
				res := w.check(t, img.Tag, keylessPolicy(t, codyID, att(`predicate.Data == "{\"foo\": \"bar\"}\n"`)...))
				verifytest.WantVerified(t, res)
				wantSignature(t, res, codyID, "", entry.LogIndex, time.Unix(entry.IntegratedTime, 0))
			})
			t.Run("another identity", func(t *testing.T) {
				verifytest.WantDenied(t, w.check(t, img.Ref, keylessPolicy(t, strangerID, att("true")...)), "certificate identity (issuer https://github.com/login/oauth, subject cody@soyland.com) does not match identities [issuer https://github.com/login/oauth, subject someone@example.com]", verify.ErrIdentityMismatch)
			})
			t.Run("copied to another image", func(t *testing.T) {
				other := w.reg.PushRandomImage(t, "repo", "copied")
				w.reg.AttachBundle(t, other, bundleJSON)
				verifytest.WantDenied(t, w.check(t, other.Ref, keylessPolicy(t, codyID, att("true")...)), "signed statement is for another digest", verify.ErrDigestMismatch)
			})
		})
	}
}

// world is an in-process registry and signet's client for it.
type world struct {
	reg *registrytest.Registry
	rc  *registry.Client
}

func newWorld(t *testing.T, referrers bool) *world {
	t.Helper()
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	return &world{reg: registrytest.StartInProcess(t, referrers), rc: rc}
}

// check decides image against p as every face of signet does: resolve a
// tag, fetch the evidence, verify it.
func (w *world) check(t *testing.T, image string, p *verify.Compiled) verify.Result {
	t.Helper()
	ref, err := reference.Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	img, err := check.Fetch(ctx, w.rc, ref, check.Options{})
	if err != nil {
		t.Fatalf("fetching %s: %v", image, err)
	}
	return check.Evaluate(ctx, img, p)
}

// replay pushes a containers/image fixture's manifest to repo:signed and
// attaches its signature layer as cosign does, with the given annotations
// (the recorded ones, or tampered).
func (w *world) replay(t *testing.T, repo, fixture string, annotations map[string]string) registrytest.Image {
	t.Helper()
	sig := readContainersSignature(t, fixture)
	img := w.pushManifest(t, repo, "signed", readFixture(t, fixture, "manifest.json"))
	var payload struct {
		Critical struct {
			Image struct {
				Digest string `json:"docker-manifest-digest"`
			} `json:"image"`
		} `json:"critical"`
	}
	if err := json.Unmarshal(sig.payload, &payload); err != nil {
		t.Fatalf("%s: the signed payload: %v", fixture, err)
	}
	if want := payload.Critical.Image.Digest; img.Digest != want {
		t.Fatalf("%s: the recorded manifest has digest %s, the signature names %s", fixture, img.Digest, want)
	}
	w.reg.AttachLegacy(t, img, ".sig", sig.mediaType, sig.payload, annotations)
	return img
}

// pushManifest pushes a recorded manifest to repo:tag byte for byte. Its
// blobs are not pushed: a signature is bound to the manifest's digest only.
func (w *world) pushManifest(t *testing.T, repo, tag string, raw []byte) registrytest.Image {
	t.Helper()
	ref, err := name.NewTag(w.reg.Repo(repo)+":"+tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		MediaType types.MediaType `json:"mediaType"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("the recorded manifest: %v", err)
	}
	if err := remote.Put(ref, rawManifest{raw, m.MediaType}); err != nil {
		t.Fatalf("pushing the recorded manifest to %s: %v", ref, err)
	}
	desc, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	return registrytest.Image{Tag: ref.String(), Digest: desc.Digest.String(), Ref: w.reg.Repo(repo) + "@" + desc.Digest.String()}
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// publicGood is the embedded trusted root of the Sigstore public-good instance.
func publicGood(t *testing.T) *verify.Authority {
	t.Helper()
	tr, err := trust.PublicGood()
	if err != nil {
		t.Fatal(err)
	}
	return &verify.Authority{Name: "public-good", TrustedMaterial: tr}
}

// keylessPolicy trusts id with the public-good root; with attestations, it
// requires them instead of a signature.
func keylessPolicy(t *testing.T, id verify.Identity, atts ...verify.Attestation) *verify.Compiled {
	t.Helper()
	a := publicGood(t)
	a.Keyless = &verify.Keyless{Identities: []verify.Identity{id}}
	a.Attestations = atts
	return verifytest.Compile(t, verify.Policy{Name: "real", Authorities: []verify.Authority{*a}})
}

// keyPolicy trusts key, with the public-good root for its log entry unless
// ignoreTlog.
func keyPolicy(t *testing.T, key verify.PublicKey, ignoreTlog bool) *verify.Compiled {
	t.Helper()
	a := publicGood(t)
	a.Keys = []verify.PublicKey{key}
	a.InsecureIgnoreTlog = ignoreTlog
	return verifytest.Compile(t, verify.Policy{Name: "real", Authorities: []verify.Authority{*a}})
}

func otherKey(t *testing.T) verify.PublicKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := verify.NewPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

// wantSignature checks that res passed on one signature by id (keyless) or
// the key with fingerprint, dated by the recorded log entry alone.
func wantSignature(t *testing.T, res verify.Result, id verify.Identity, fingerprint string, logIndex int64, integrated time.Time) {
	t.Helper()
	ar := res.Authorities[0]
	if len(ar.Signatures) != 1 {
		t.Fatalf("want one verified signature, got %+v", ar.Signatures)
	}
	sig := ar.Signatures[0]
	if sig.Issuer != id.Issuer || sig.Subject != id.Subject || sig.KeyFingerprint != fingerprint {
		t.Errorf("signature credited to issuer %q subject %q key %q, want %q %q %q", sig.Issuer, sig.Subject, sig.KeyFingerprint, id.Issuer, id.Subject, fingerprint)
	}
	if sig.LogIndex == nil || *sig.LogIndex != logIndex {
		t.Errorf("log index %v, want the recorded %d", sig.LogIndex, logIndex)
	}
	if len(sig.Timestamps) != 1 || sig.Timestamps[0].Kind != "Tlog" || !sig.Timestamps[0].Time.Equal(integrated) {
		t.Errorf("timestamps %+v, want the log's integrated time %s only", sig.Timestamps, integrated.UTC())
	}
}

func readFixture(t *testing.T, fixture, file string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", fixture, file))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAnnotations reads a fixture's annotations.json: the annotations of
// its legacy layer.
func readAnnotations(t *testing.T, fixture string) map[string]string {
	t.Helper()
	var ann map[string]string
	if err := json.Unmarshal(readFixture(t, fixture, "annotations.json"), &ann); err != nil {
		t.Fatalf("%s/annotations.json: %v", fixture, err)
	}
	return ann
}

// retarget returns envelope with its statement naming the hex digest to
// wherever it named from, and the signature kept.
func retarget(t *testing.T, envelope []byte, from, to string) []byte {
	t.Helper()
	var env map[string]any
	if err := json.Unmarshal(envelope, &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env["payload"].(string))
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.ReplaceAll(string(payload), from, to)
	if changed == string(payload) {
		t.Fatalf("the statement does not name %s", from)
	}
	env["payload"] = base64.StdEncoding.EncodeToString([]byte(changed))
	b, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// legacyLayer is one layer of a legacy .sig or .att manifest.
type legacyLayer struct {
	mediaType   string
	payload     []byte
	annotations map[string]string
}

// readContainersSignature reads signature-1 of a fixture, a layer as
// containers/image stores it: "\x00sigstore-json\n", then a JSON object
// with the layer's media type, its bytes and its annotations.
func readContainersSignature(t *testing.T, fixture string) legacyLayer {
	t.Helper()
	raw, ok := strings.CutPrefix(string(readFixture(t, fixture, "signature-1")), "\x00sigstore-json\n")
	if !ok {
		t.Fatalf("%s/signature-1 is not in containers/image's sigstore-json format", fixture)
	}
	var s struct {
		MIMEType    string            `json:"mimeType"`
		Payload     []byte            `json:"payload"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatalf("%s/signature-1: %v", fixture, err)
	}
	return legacyLayer{s.MIMEType, s.Payload, s.Annotations}
}

func (l legacyLayer) logIndex(t *testing.T) int64 {
	return recordedEntry(t, l.annotations[annotationBundle]).Payload.LogIndex
}

func (l legacyLayer) integratedTime(t *testing.T) time.Time {
	return time.Unix(recordedEntry(t, l.annotations[annotationBundle]).Payload.IntegratedTime, 0)
}

// with returns a copy of the annotations with annotation key changed by f,
// or removed when f is nil.
func (l legacyLayer) with(t *testing.T, key string, f func(*testing.T, string) string) map[string]string {
	out := map[string]string{}
	for k, v := range l.annotations {
		out[k] = v
	}
	if f == nil {
		delete(out, key)
	} else {
		out[key] = f(t, out[key])
	}
	return out
}

// rekorBundle is cosign's dev.sigstore.cosign/bundle annotation.
type rekorBundle struct {
	SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
	Payload              struct {
		Body           string `json:"body"`
		IntegratedTime int64  `json:"integratedTime"`
		LogIndex       int64  `json:"logIndex"`
		LogID          string `json:"logID"`
	} `json:"Payload"`
}

// kind is the entry's kind and version, read from its body.
func (rb rekorBundle) kind(t *testing.T) string {
	t.Helper()
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		t.Fatal(err)
	}
	var kv struct {
		Kind       string `json:"kind"`
		APIVersion string `json:"apiVersion"`
	}
	if err := json.Unmarshal(body, &kv); err != nil {
		t.Fatal(err)
	}
	return kv.Kind + " " + kv.APIVersion
}

// envelopeHash is the hex SHA-256 of the DSSE envelope that a dsse entry
// records.
func (rb rekorBundle) envelopeHash(t *testing.T) string {
	t.Helper()
	body, err := base64.StdEncoding.DecodeString(rb.Payload.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		Spec struct {
			EnvelopeHash struct {
				Algorithm string `json:"algorithm"`
				Value     string `json:"value"`
			} `json:"envelopeHash"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Spec.EnvelopeHash.Algorithm != "sha256" {
		t.Fatalf("the entry records no SHA-256 envelope hash: %v", err)
	}
	return e.Spec.EnvelopeHash.Value
}

func recordedEntry(t *testing.T, annotation string) rekorBundle {
	t.Helper()
	var rb rekorBundle
	if err := json.Unmarshal([]byte(annotation), &rb); err != nil {
		t.Fatalf("the recorded Rekor bundle: %v", err)
	}
	return rb
}

// flipByte flips a bit of a base64 signature.
func flipByte(t *testing.T, b64 string) string {
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	return base64.StdEncoding.EncodeToString(b)
}

// forgeSET flips a bit of the signed entry timestamp of a Rekor bundle annotation.
func forgeSET(t *testing.T, annotation string) string {
	rb := recordedEntry(t, annotation)
	rb.SignedEntryTimestamp[len(rb.SignedEntryTimestamp)/2] ^= 1
	b, err := json.Marshal(rb)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
