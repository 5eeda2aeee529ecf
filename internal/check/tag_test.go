package check

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// TestTagSelectsDigestIsVerified is invariant 1 under tag patterns: a tag
// only selects policies; what is verified is the digest the reference
// names, or the one its tag resolves to. By digest alone an image is
// governed by the tag pattern of its repository; another tag is unmatched.
func TestTagSelectsDigestIsVerified(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	key := newSigningKey(t)
	signed, unsigned := randomImage(t), randomImage(t)
	for tag, img := range map[string]imageWithDigest{"v1": signed, "v2": unsigned} {
		ref, err := name.NewTag(reg.Repo("app")+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img.img); err != nil {
			t.Fatal(err)
		}
	}
	payload := sigstoretest.SimpleSigning(reg.Repo("app"), signed.digest)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	reg.AttachLegacy(t, registrytest.Image{Ref: reg.Repo("app") + "@" + signed.digest, Digest: signed.digest}, ".sig",
		sigstoretest.SimpleSigningMediaType, payload, map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)})

	p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "release", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: reg.Repo("app"), Tag: "v1"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: key.pem}}},
	}}, nil)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{TrustVersion: "t"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	app := reg.Repo("app")
	for _, tc := range []struct {
		image     string
		allowed   bool
		digest    string
		unmatched bool
	}{
		{app + ":v1", true, signed.digest, false},
		{app + "@" + signed.digest, true, signed.digest, false},
		{app + ":v1@" + signed.digest, true, signed.digest, false},
		// The tag v1 selects the policy; the unsigned digest is verified.
		{app + ":v1@" + unsigned.digest, false, unsigned.digest, false},
		// By digest alone: governed by the tag pattern, so not unmatched.
		{app + "@" + unsigned.digest, false, unsigned.digest, false},
		{app + ":v2", false, "", true},
		{app + ":v2@" + signed.digest, false, "", true},
	} {
		d, _ := (&Decider{Registry: rc, ResolutionWindow: -1}).decide(t.Context(), &credentials{}, snap, tc.image, policy.Target{Namespace: "default", Kind: "Pod"}, withRegistry)
		if d.Allowed != tc.allowed || (tc.digest != "" && d.Digest != tc.digest) || (d.Unmatched != nil) != tc.unmatched {
			t.Errorf("%s: allowed %v, digest %s, unmatched %v (%v); want allowed %v, digest %s, unmatched %v",
				tc.image, d.Allowed, d.Digest, d.Unmatched != nil, d.Denials, tc.allowed, tc.digest, tc.unmatched)
		}
		if !tc.unmatched && (len(d.Policies) != 1 || d.Policies[0].Policy != p.Object.ID()) {
			t.Errorf("%s: policies %+v, want %s", tc.image, d.Policies, p.Object.ID())
		}
	}
}
