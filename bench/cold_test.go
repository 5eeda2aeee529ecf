package bench

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// coldKey: signet's cold check of a key-signed tag in process (resolve,
// every evidence source, verification; no cache) against the bare requests
// such a check needs from the same registry: the tag's manifest, the .sig
// manifest and its layer, one after the other over a kept-alive connection.
func (w *world) coldKey(tb testing.TB, full bool) Entry {
	img := w.signedImages(tb, "coldkey", 1)[0]
	ref, err := reference.Parse(img.Tag)
	if err != nil {
		tb.Fatal(err)
	}
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	// What signet verify runs: the one policy its flags make, decided by a
	// Decider with no cache and no shared resolutions.
	snap, err := policy.NewSnapshot([]*policy.Policy{policy.ForEveryImage("bench", w.policy, false)}, policy.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	signet := func() {
		ds, err := (&check.Decider{Registry: rc, ResolutionWindow: -1}).Decide(ctx, check.Request{Snapshot: snap, Images: []string{ref.String()}})
		if err != nil {
			tb.Fatal(err)
		}
		if pd := ds[0].Policies[0]; pd.Result == nil || !pd.Result.Verified {
			tb.Fatalf("not verified: %s %v", pd.Error, ds[0].Denials)
		}
	}
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	repo := "http://" + w.reg.Host + "/v2/" + strings.TrimPrefix(strings.TrimSuffix(img.Tag, ":v1"), w.reg.Host+"/")
	get := func(path, accept string) []byte {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, repo+path, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := hc.Do(req)
		if err != nil {
			tb.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK {
			tb.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		return body
	}
	const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json"
	bare := func() {
		get("/manifests/v1", accept)
		var m registry.ImageManifest
		if err := json.Unmarshal(get("/manifests/"+strings.Replace(img.Digest, ":", "-", 1)+".sig", accept), &m); err != nil || len(m.Layers) == 0 {
			tb.Fatalf("signature manifest: %v", err)
		}
		get("/blobs/"+m.Layers[0].Digest, "")
	}
	rounds := 200
	if !full {
		rounds = 5
	}
	signet()
	bare()
	var a, b []time.Duration
	for range rounds {
		t0 := time.Now()
		bare()
		t1 := time.Now()
		signet()
		a, b = append(a, t1.Sub(t0)), append(b, time.Since(t1))
	}
	return newEntry("cold check of a key-signed tag in process", "ms", median(b), median(a), "the bare requests it needs: tag manifest, .sig manifest, its layer", 1.3)
}

// keyless: signet's check of a keyless Sigstore bundle (local Fulcio, CT
// log, Rekor, TSA) against sigstore-go parsing and verifying that bundle
// alone, with the same trusted root, identity and digest.
func keyless(tb testing.TB, full bool) Entry {
	s := sigstoretest.New(tb)
	reg := registrytest.StartInProcess(tb, true)
	img := reg.PushRandomImage(tb, "keyless", "v1")
	repo, _, _ := strings.Cut(img.Ref, "@")
	content := s.Bundle(tb, sigstoretest.Statement(tb, sigstoretest.CosignSignPredicateType, nil, repo, img.Digest), sigstoretest.Release())
	reg.AttachBundle(tb, img, content)
	p, err := verify.Compile(verify.Policy{Name: "keyless", Authorities: []verify.Authority{{Name: "release",
		Keyless: &verify.Keyless{Identities: []verify.Identity{{Issuer: sigstoretest.GitHubIssuer, Subject: sigstoretest.ReleaseWorkflow}}}, TrustedMaterial: s.TrustedRoot()}}})
	if err != nil {
		tb.Fatal(err)
	}
	fetched := fetchImage(tb, img.Ref)
	v, err := sgverify.NewVerifier(s.TrustedRoot(), sgverify.WithSignedCertificateTimestamps(1), sgverify.WithTransparencyLog(1), sgverify.WithObserverTimestamps(1))
	if err != nil {
		tb.Fatal(err)
	}
	id, err := sgverify.NewShortCertificateIdentity(sigstoretest.GitHubIssuer, "", sigstoretest.ReleaseWorkflow, "")
	if err != nil {
		tb.Fatal(err)
	}
	digest, err := hex.DecodeString(strings.TrimPrefix(img.Digest, "sha256:"))
	if err != nil {
		tb.Fatal(err)
	}
	signet, bare := interleaved(tb, full, func(b *testing.B) {
		for b.Loop() {
			if res := check.Evaluate(b.Context(), fetched, p); !res.Verified {
				b.Fatal(res.Err)
			}
		}
	}, func(b *testing.B) {
		for b.Loop() {
			var bn bundle.Bundle
			if err := bn.UnmarshalJSON(content); err != nil {
				b.Fatal(err)
			}
			if _, err := v.Verify(&bn, sgverify.NewPolicy(sgverify.WithArtifactDigest("sha256", digest), sgverify.WithCertificateIdentity(id))); err != nil {
				b.Fatal(err)
			}
		}
	})
	e := newEntry("verify keyless bundle in process", "ns/op", float64(signet.NsPerOp()), float64(bare.NsPerOp()), "sigstore-go parse + Verify of the same bundle (SCT, tlog, timestamp, identity)", 1.2)
	e.Allocs = signet.AllocsPerOp()
	return e
}
