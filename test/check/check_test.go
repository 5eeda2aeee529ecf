package check_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/verifytest"
)

// world is one registry with a cosign and two key pairs.
type world struct {
	reg    *registrytest.Registry
	cosign *harness.Cosign
	keyA   harness.KeyPair
	keyB   harness.KeyPair
	rc     *registry.Client
}

func registries(t *testing.T) map[string]func(t *testing.T) *registrytest.Registry {
	return map[string]func(t *testing.T) *registrytest.Registry{
		"distribution":          func(t *testing.T) *registrytest.Registry { return harness.StartRegistry(t) },
		"inprocess-referrers":   func(t *testing.T) *registrytest.Registry { return registrytest.StartInProcess(t, true) },
		"inprocess-noreferrers": func(t *testing.T) *registrytest.Registry { return registrytest.StartInProcess(t, false) },
	}
}

func newWorld(t *testing.T, reg *registrytest.Registry, cosign *harness.Cosign, a, b harness.KeyPair) *world {
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	return &world{reg: reg, cosign: cosign, keyA: a, keyB: b, rc: rc}
}

func keyOf(t *testing.T, kp harness.KeyPair) verify.PublicKey {
	t.Helper()
	data, err := os.ReadFile(kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	k, err := verify.ParsePublicKeyPEM(data)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPolicy(t *testing.T, kps ...harness.KeyPair) *verify.Compiled {
	var keys []verify.PublicKey
	for _, kp := range kps {
		keys = append(keys, keyOf(t, kp))
	}
	return verifytest.Compile(t, verify.Policy{Name: "test", Authorities: []verify.Authority{{Name: "ci", Keys: keys, InsecureIgnoreTlog: true}}})
}

func (w *world) check(t *testing.T, image string, p *verify.Compiled, opts check.Options) verify.Result {
	t.Helper()
	ref, err := reference.Parse(image)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	img, err := check.Fetch(ctx, w.rc, ref, opts)
	if err != nil {
		t.Fatalf("fetch %s: %v", image, err)
	}
	return check.Evaluate(ctx, img, p)
}

// TestCosignSignedImages verifies images signed by the real cosign CLI in
// both storage formats, in every registry kind, and denies the classic
// failures with the right reason.
func TestCosignSignedImages(t *testing.T) {
	cosign := harness.NewCosign(t)
	keyA, keyB := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	for regName, start := range registries(t) {
		t.Run(regName, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, start(t), cosign, keyA, keyB)
			for _, f := range harness.Formats {
				t.Run(f.String(), func(t *testing.T) { w.run(t, f) })
			}
		})
	}
}

func (w *world) run(t *testing.T, f harness.Format) {
	repo := "app-" + f.String()
	signed := w.reg.PushRandomImage(t, repo, "signed")
	w.cosign.Sign(t, signed.Ref, w.keyA, f)
	unsigned := w.reg.PushRandomImage(t, repo, "unsigned")

	t.Run("right key by tag and by digest", func(t *testing.T) {
		res := w.check(t, signed.Tag, keyPolicy(t, w.keyA), check.Options{})
		verifytest.WantVerified(t, res)
		if res.Digest != signed.Digest {
			t.Errorf("verified digest %s, pushed %s", res.Digest, signed.Digest)
		}
		sig := res.Authorities[0].Signatures[0]
		if sig.KeyFingerprint != keyOf(t, w.keyA).Fingerprint {
			t.Errorf("signature credited to %q, want key A", sig.KeyFingerprint)
		}
		verifytest.WantVerified(t, w.check(t, signed.Ref, keyPolicy(t, w.keyA), check.Options{}))
	})
	t.Run("any of several keys", func(t *testing.T) {
		verifytest.WantVerified(t, w.check(t, signed.Ref, keyPolicy(t, w.keyB, w.keyA), check.Options{}))
	})
	t.Run("wrong key", func(t *testing.T) {
		verifytest.WantDenied(t, w.check(t, signed.Ref, keyPolicy(t, w.keyB), check.Options{}), "none verified by key", verify.ErrBadSignature)
	})
	t.Run("unsigned", func(t *testing.T) {
		verifytest.WantDenied(t, w.check(t, unsigned.Ref, keyPolicy(t, w.keyA), check.Options{}), "no signature found", verify.ErrNoSignature)
	})
	t.Run("signature copied from another image", func(t *testing.T) {
		victim := w.reg.PushRandomImage(t, repo, "victim")
		w.copyEvidence(t, f, signed, victim)
		verifytest.WantDenied(t, w.check(t, victim.Ref, keyPolicy(t, w.keyA), check.Options{}), "copied from another image", verify.ErrDigestMismatch)
	})
	t.Run("tampered payload", func(t *testing.T) {
		img := w.reg.PushRandomImage(t, repo, "tampered")
		w.cosign.Sign(t, img.Ref, w.keyA, f)
		verifytest.WantVerified(t, w.check(t, img.Ref, keyPolicy(t, w.keyA), check.Options{}))
		w.tamper(t, f, img)
		verifytest.WantDenied(t, w.check(t, img.Ref, keyPolicy(t, w.keyA), check.Options{}), "signature does not verify with the trusted key", verify.ErrBadSignature)
	})
	t.Run("tlog required without trust root is a compile error", func(t *testing.T) {
		_, err := verify.Compile(verify.Policy{Authorities: []verify.Authority{{Keys: []verify.PublicKey{keyOf(t, w.keyA)}}}})
		if err == nil || !strings.Contains(err.Error(), "insecureIgnoreTlog") {
			t.Fatalf("want an error naming insecureIgnoreTlog, got %v", err)
		}
	})
	t.Run("attestation", func(t *testing.T) {
		img := w.reg.PushRandomImage(t, repo, "attested")
		const pt = "https://slsa.dev/provenance/v1"
		w.cosign.Attest(t, img.Ref, w.keyA, pt, []byte(`{"buildDefinition":{"buildType":"https://example.org/ci"},"builder":"ci"}`), f)
		att := func(cond ...string) *verify.Compiled {
			return verifytest.Compile(t, verify.Policy{Name: "att", Authorities: []verify.Authority{{
				Name: "ci", Keys: []verify.PublicKey{keyOf(t, w.keyA)}, InsecureIgnoreTlog: true,
				Attestations: []verify.Attestation{{PredicateType: pt, Conditions: cond}},
			}}})
		}
		verifytest.WantVerified(t, w.check(t, img.Ref, att(), check.Options{}))
		verifytest.WantVerified(t, w.check(t, img.Ref, att(`predicate.buildDefinition.buildType == "https://example.org/ci"`), check.Options{}))
		verifytest.WantDenied(t, w.check(t, img.Ref, att(`predicate.builder == "someone-else"`), check.Options{}), `condition "predicate.builder == \"someone-else\"" is false`, verify.ErrConditionFailed)
		// An attestation is not a signature, and a signature is not an attestation.
		verifytest.WantDenied(t, w.check(t, img.Ref, keyPolicy(t, w.keyA), check.Options{}), "no signature found", verify.ErrNoSignature)
		verifytest.WantDenied(t, w.check(t, signed.Ref, att(), check.Options{}), "no statement found", verify.ErrNoAttestation)
	})
	t.Run("index: every platform on request", func(t *testing.T) {
		idx := w.reg.PushRandomIndex(t, repo, "multi", 2)
		w.cosign.Sign(t, idx.Ref, w.keyA, f)
		verifytest.WantVerified(t, w.check(t, idx.Ref, keyPolicy(t, w.keyA), check.Options{}))
		verifytest.WantDenied(t, w.check(t, idx.Ref, keyPolicy(t, w.keyA), check.Options{AllPlatforms: true}), "platform", verify.ErrNoSignature)
		w.cosign.Sign(t, idx.Ref, w.keyA, f, "--recursive")
		verifytest.WantVerified(t, w.check(t, idx.Ref, keyPolicy(t, w.keyA), check.Options{AllPlatforms: true}))
	})
}

// copyEvidence copies from's signatures onto to, the way an attacker who can
// push to the repository would.
func (w *world) copyEvidence(t *testing.T, f harness.Format, from, to registrytest.Image) {
	t.Helper()
	opts := []name.Option{name.Insecure}
	repo, _, _ := strings.Cut(from.Ref, "@")
	if f == harness.Legacy {
		src, err := name.NewTag(repo+":"+strings.Replace(from.Digest, ":", "-", 1)+".sig", opts...)
		if err != nil {
			t.Fatal(err)
		}
		img, err := remote.Image(src)
		if err != nil {
			t.Fatalf("reading %s: %v", src, err)
		}
		dst, _ := name.NewTag(repo+":"+strings.Replace(to.Digest, ":", "-", 1)+".sig", opts...)
		if err := remote.Write(dst, img); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Bundle format: re-point every referrer of from at to.
	fromDigest, _ := name.NewDigest(from.Ref, opts...)
	toDigest, _ := name.NewDigest(to.Ref, opts...)
	refs, err := remote.Referrers(fromDigest)
	if err != nil {
		t.Fatalf("listing referrers of %s: %v", from.Ref, err)
	}
	im, err := refs.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) == 0 {
		t.Fatalf("%s has no referrers to copy", from.Ref)
	}
	toDesc, err := remote.Head(toDigest)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		src, _ := name.NewDigest(repo+"@"+d.Digest.String(), opts...)
		img, err := remote.Image(src)
		if err != nil {
			t.Fatalf("reading referrer %s: %v", src, err)
		}
		copied := mutate.Subject(img, v1.Descriptor{MediaType: toDesc.MediaType, Digest: toDesc.Digest, Size: toDesc.Size}).(v1.Image)
		dgst, err := copied.Digest()
		if err != nil {
			t.Fatal(err)
		}
		dst, _ := name.NewDigest(repo+"@"+dgst.String(), opts...)
		if err := remote.Write(dst, copied); err != nil {
			t.Fatalf("writing copied referrer: %v", err)
		}
		if !w.reg.Referrers {
			// The referrers tag schema: the registry has no API, so the
			// fallback index is what a pusher maintains.
			w.addToFallbackIndex(t, repo, to.Digest, copied, d)
		}
	}
}

func (w *world) addToFallbackIndex(t *testing.T, repo, subject string, img v1.Image, orig v1.Descriptor) {
	t.Helper()
	dgst, _ := img.Digest()
	size, _ := img.Size()
	mt, _ := img.MediaType()
	idx := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests:     []v1.Descriptor{{MediaType: mt, Digest: dgst, Size: size, ArtifactType: orig.ArtifactType, Annotations: orig.Annotations}},
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag(repo+":"+strings.Replace(subject, ":", "-", 1), name.Insecure)
	if err := remote.Put(tag, rawManifest{raw: raw, mt: types.OCIImageIndex}); err != nil {
		t.Fatalf("writing the fallback referrers index: %v", err)
	}
}

type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// tamper changes one byte-level detail of the signed payload of img's
// signature, keeping the signature: a valid JSON document that was not signed.
func (w *world) tamper(t *testing.T, f harness.Format, img registrytest.Image) {
	t.Helper()
	opts := []name.Option{name.Insecure}
	repo, _, _ := strings.Cut(img.Ref, "@")
	var src name.Reference
	if f == harness.Legacy {
		src, _ = name.NewTag(repo+":"+strings.Replace(img.Digest, ":", "-", 1)+".sig", opts...)
	} else {
		subject, _ := name.NewDigest(img.Ref, opts...)
		refs, err := remote.Referrers(subject)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := refs.IndexManifest()
		if len(im.Manifests) != 1 {
			t.Fatalf("want one referrer, got %d", len(im.Manifests))
		}
		src, _ = name.NewDigest(repo+"@"+im.Manifests[0].Digest.String(), opts...)
	}
	sigImg, err := remote.Image(src)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := sigImg.Manifest()
	layers, _ := sigImg.Layers()
	rc, _ := layers[0].Uncompressed()
	content, _ := io.ReadAll(rc)
	rc.Close()
	if f == harness.Legacy {
		content = append(content, ' ')
	} else {
		var b map[string]any
		if err := json.Unmarshal(content, &b); err != nil {
			t.Fatal(err)
		}
		env := b["dsseEnvelope"].(map[string]any)
		payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
		env["payload"] = base64.StdEncoding.EncodeToString(append(payload, ' '))
		content, _ = json.Marshal(b)
	}
	base := mutate.MediaType(empty.Image, m.MediaType)
	base = mutate.ConfigMediaType(base, m.Config.MediaType)
	tampered, err := mutate.Append(base, mutate.Addendum{
		Layer:       static.NewLayer(content, m.Layers[0].MediaType),
		Annotations: m.Layers[0].Annotations,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != nil {
		tampered = mutate.Subject(tampered, *m.Subject).(v1.Image)
	}
	if tm, _ := tampered.Manifest(); (tm.Subject == nil) != (m.Subject == nil) {
		t.Fatalf("tampered manifest lost its subject")
	}
	if f == harness.Legacy {
		if err := remote.Write(src.(name.Tag), tampered); err != nil {
			t.Fatal(err)
		}
		return
	}
	dgst, _ := tampered.Digest()
	dst, _ := name.NewDigest(repo+"@"+dgst.String(), opts...)
	if err := remote.Write(dst, tampered); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(src); err != nil {
		t.Fatalf("deleting the original referrer: %v", err)
	}
	if !w.reg.Referrers {
		w.addToFallbackIndex(t, repo, img.Digest, tampered, v1.Descriptor{})
	}
}

// TestFetchByDigestReadsNoManifest: a reference by digest needs no
// manifest request (signatures name the digest) unless the platforms of an
// index are wanted; a tag is resolved with one. A digest that is not in the
// registry has no signature and is denied for it.
func TestFetchByDigestReadsNoManifest(t *testing.T) {
	reg, cosign, key, _ := signingWorld(t)
	img := reg.PushRandomImage(t, "app", "v1")
	cosign.Sign(t, img.Ref, key, harness.Legacy)
	p := keyPolicy(t, key)
	for _, tc := range []struct {
		name         string
		image        string
		manifest     string // the path that reads the image manifest
		allPlatforms bool
		wantReads    int64
	}{
		{"by digest", img.Ref, img.Digest, false, 0},
		{"by tag", img.Tag, "v1", false, 1},
		{"by digest, every platform", img.Ref, img.Digest, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &pathCounter{sub: "/app/manifests/" + tc.manifest, next: http.DefaultTransport}
			rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(c))
			if err != nil {
				t.Fatal(err)
			}
			ref, err := reference.Parse(tc.image)
			if err != nil {
				t.Fatal(err)
			}
			d := decideWith(t, rc, p, tc.allPlatforms, ref)
			verifytest.WantVerified(t, *d.Policies[0].Result)
			if d.Digest != img.Digest {
				t.Errorf("digest %s, pushed %s", d.Digest, img.Digest)
			}
			if got := c.n.Load(); got != tc.wantReads {
				t.Errorf("%d requests for the image manifest, want %d", got, tc.wantReads)
			}
		})
	}
	t.Run("a digest the registry does not have", func(t *testing.T) {
		rc, err := registry.New(registry.InsecureAllowHTTP())
		if err != nil {
			t.Fatal(err)
		}
		ref, err := reference.Parse(reg.Host + "/app@sha256:" + strings.Repeat("ab", 32))
		if err != nil {
			t.Fatal(err)
		}
		d := decideWith(t, rc, p, false, ref)
		if d.Policies[0].Result == nil {
			t.Fatalf("no result: %s", d.Policies[0].Error)
		}
		verifytest.WantDenied(t, *d.Policies[0].Result, "no signature found", verify.ErrNoSignature)
	})
}

// decideWith decides ref with the one policy over every image that signet
// verify makes of p (allPlatforms: of its --all-platforms).
func decideWith(t *testing.T, rc *registry.Client, p *verify.Compiled, allPlatforms bool, ref reference.Reference) check.Decision {
	t.Helper()
	snap, err := policy.NewSnapshot([]*policy.Policy{policy.ForEveryImage("test", p, allPlatforms)}, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := (&check.Decider{Registry: rc}).Decide(t.Context(), check.Request{Snapshot: snap, Images: []string{ref.String()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds[0].Policies) != 1 {
		t.Fatalf("%s: not governed by the policy: %+v", ref, ds[0])
	}
	return ds[0]
}
