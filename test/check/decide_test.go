package check_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// counter counts the registry requests a client makes.
type counter struct {
	n    atomic.Int64
	next http.RoundTripper
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// signingWorld is an in-process registry (with the referrers API), cosign,
// a key pair and its public key's PEM.
func signingWorld(t *testing.T) (*registrytest.Registry, *harness.Cosign, harness.KeyPair, []byte) {
	t.Helper()
	reg := registrytest.StartInProcess(t, true)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	return reg, cosign, key, pub
}

func keyPolicySnapshot(t *testing.T, host string, pub []byte) *policy.Snapshot {
	t.Helper()
	return keySnapshot(t, host, &v1alpha1.KeyAuthority{Data: string(pub)}, nil)
}

// keySnapshot is a snapshot of one policy: images under host signed with
// key (resolved by r), without a transparency log.
func keySnapshot(t *testing.T, host string, key *v1alpha1.KeyAuthority, r policy.Resolver) *policy.Snapshot {
	t.Helper()
	return snapshotOf(t, "signed", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: host + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: key}},
	}, r)
}

// snapshotOf is a snapshot of one ClusterImagePolicy, which must compile.
func snapshotOf(t *testing.T, name string, spec v1alpha1.ImagePolicySpec, r policy.Resolver) *policy.Snapshot {
	t.Helper()
	return policytest.Snapshot(t, name, spec, r, policy.Config{TrustVersion: "test"})
}

// TestDeciderCacheAndSingleFlight measures the cache and single-flight in
// registry requests: a cascade of one image costs one verification, and so
// do 50 concurrent admissions of one uncached image.
func TestDeciderCacheAndSingleFlight(t *testing.T) {
	reg, cosign, key, pub := signingWorld(t)
	snap := keyPolicySnapshot(t, reg.Host, pub)
	newDecider := func(cache *check.Cache) (*check.Decider, *counter) {
		c := &counter{next: http.DefaultTransport}
		rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(c))
		if err != nil {
			t.Fatal(err)
		}
		return &check.Decider{Registry: rc, Cache: cache}, c
	}
	signed := func(tag string) registrytest.Image {
		img := reg.PushRandomImage(t, "app", tag)
		cosign.Sign(t, img.Ref, key, harness.Bundle)
		return img
	}

	// The cost of one verification, uncached.
	one := signed("one")
	d, c := newDecider(nil)
	if dec := decideOne(t, d, snap, one.Tag, policy.Target{Namespace: "default"}); !dec.Allowed {
		t.Fatalf("signed image denied: %v", dec.Denials)
	}
	single := c.n.Load()
	if single == 0 {
		t.Fatal("no registry requests counted")
	}

	t.Run("cascade", func(t *testing.T) {
		img := signed("cascade")
		d, c := newDecider(check.NewCache(time.Hour, time.Minute, 1000))
		dep := decideOne(t, d, snap, img.Tag, policy.Target{Namespace: "default", Kind: "Deployment"})
		if !dep.Allowed || dep.PinnedImage != img.Tag+"@"+img.Digest {
			t.Fatalf("deployment: %+v", dep)
		}
		afterFirst := c.n.Load()
		// The ReplicaSet and the Pods carry the pinned reference.
		for _, kind := range []string{"ReplicaSet", "Pod", "Pod", "Pod"} {
			dec := decideOne(t, d, snap, dep.PinnedImage, policy.Target{Namespace: "default", Kind: kind})
			if !dec.Allowed {
				t.Fatalf("%s denied: %v", kind, dec.Denials)
			}
			// A cached fact names the reference asked about.
			if got := dec.Policies[0].Result.Image; !strings.HasSuffix(got, "@"+img.Digest) {
				t.Errorf("%s: the cached result names %s, want the pinned reference", kind, got)
			}
		}
		if c.n.Load() != afterFirst || afterFirst != single {
			t.Errorf("cascade made %d requests (%d for the Deployment); one verification makes %d", c.n.Load(), afterFirst, single)
		}
		hits, _, _ := d.Cache.Stats()
		if hits != 4 {
			t.Errorf("cache hits = %d, want 4", hits)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		img := signed("concurrent")
		d, c := newDecider(check.NewCache(time.Hour, time.Minute, 1000))
		var wg sync.WaitGroup
		var denied atomic.Int64
		start := make(chan struct{})
		for range 50 {
			wg.Go(func() {
				<-start
				if dec := decideOne(t, d, snap, img.Tag, policy.Target{Namespace: "default"}); !dec.Allowed {
					denied.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if denied.Load() != 0 {
			t.Fatalf("%d of 50 concurrent admissions denied a signed image", denied.Load())
		}
		// Late arrivals share the resolution (within the resolution
		// window) and the verification.
		if got := c.n.Load(); got != single {
			t.Errorf("50 concurrent admissions made %d requests; one verification makes %d", got, single)
		}
		t.Logf("50 concurrent admissions: %d registry requests (one verification: %d)", c.n.Load(), single)
	})

	t.Run("unsigned is cached briefly, by digest", func(t *testing.T) {
		img := reg.PushRandomImage(t, "app", "unsigned")
		d, c := newDecider(check.NewCache(time.Hour, time.Minute, 1000))
		var first int64
		for i := range 3 {
			if dec := decideOne(t, d, snap, img.Ref, policy.Target{Namespace: "default"}); dec.Allowed {
				t.Fatal("unsigned image allowed")
			} else if !strings.Contains(strings.Join(dec.Denials, ";"), "no signature found") {
				t.Fatalf("denials: %v", dec.Denials)
			}
			if i == 0 {
				first = c.n.Load()
			}
		}
		if first == 0 || c.n.Load() != first {
			t.Errorf("the first denial made %d requests, the next two %d more; want none", first, c.n.Load()-first)
		}
	})
}

// pathCounter counts the registry requests whose path contains a string.
type pathCounter struct {
	sub  string
	n    atomic.Int64
	next http.RoundTripper
}

func (c *pathCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, c.sub) {
		c.n.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestDeciderReadsAttestationsOnlyWhenAsked: legacy .att evidence is read
// only for a policy with attestations; signatures alone need none of it.
func TestDeciderReadsAttestationsOnlyWhenAsked(t *testing.T) {
	reg, cosign, key, pub := signingWorld(t)
	img := reg.PushRandomImage(t, "app", "v1")
	cosign.Sign(t, img.Ref, key, harness.Legacy)
	cosign.Attest(t, img.Ref, key, "https://example.com/review/v1", []byte(`{"approved": true}`), harness.Legacy)

	auth := v1alpha1.Authority{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}
	for _, tc := range []struct {
		name      string
		attest    bool
		wantReads bool
	}{
		{"signature only", false, false},
		{"with an attestation", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := auth
			if tc.attest {
				a.Attestations = []v1alpha1.Attestation{{PredicateType: "https://example.com/review/v1", Conditions: []string{"predicate.approved == true"}}}
			}
			p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "p", Spec: v1alpha1.ImagePolicySpec{
				Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}}, Authorities: []v1alpha1.Authority{a}}}, nil)
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{TrustVersion: "test"})
			if err != nil {
				t.Fatal(err)
			}
			c := &pathCounter{sub: ".att", next: http.DefaultTransport}
			rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(c))
			if err != nil {
				t.Fatal(err)
			}
			d := &check.Decider{Registry: rc}
			if dec := decideOne(t, d, snap, img.Ref, policy.Target{Namespace: "default"}); !dec.Allowed {
				t.Fatalf("denied: %v", dec.Denials)
			}
			if got := c.n.Load() > 0; got != tc.wantReads {
				t.Errorf(".att requests: %d, want some: %v", c.n.Load(), tc.wantReads)
			}
		})
	}
}

// TestWarmDecisionsNeedNoRegistry: once an image is decided, deciding it
// again, by tag (resolved within the ResolutionWindow) or by digest, makes no
// registry request and is the same decision.
func TestWarmDecisionsNeedNoRegistry(t *testing.T) {
	reg, cosign, key, pub := signingWorld(t)
	snap := keyPolicySnapshot(t, reg.Host, pub)
	img := reg.PushRandomImage(t, "app", "v1")
	cosign.Sign(t, img.Ref, key, harness.Bundle)
	c := &counter{next: http.DefaultTransport}
	rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(c))
	if err != nil {
		t.Fatal(err)
	}
	// A tag's resolution is shared for ResolutionWindow: long enough here.
	d := &check.Decider{Registry: rc, Cache: check.NewCache(time.Hour, time.Minute, 100), ResolutionWindow: time.Minute}
	target := policy.Target{Namespace: "default"}
	want := decideOne(t, d, snap, img.Tag, target)
	if !want.Allowed || c.n.Load() == 0 {
		t.Fatalf("cold decision: allowed %v after %d requests: %v", want.Allowed, c.n.Load(), want.Denials)
	}
	before := c.n.Load()
	got, err := d.Decide(t.Context(), check.Request{Snapshot: snap, Target: target, Images: []string{img.Tag, img.Ref}})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		if !g.Allowed || g.Digest != img.Digest {
			t.Errorf("%s: warm decision %+v", g.Image, g)
		}
	}
	if c.n.Load() != before {
		t.Errorf("warm decisions made %d requests", c.n.Load()-before)
	}
}

// decideOne decides one image with d.
func decideOne(t *testing.T, d *check.Decider, snap *policy.Snapshot, image string, target policy.Target) check.Decision {
	t.Helper()
	ds, err := d.Decide(t.Context(), check.Request{Snapshot: snap, Target: target, Images: []string{image}})
	if err != nil {
		t.Fatal(err)
	}
	return ds[0]
}

// holdReferrers holds every referrers request for hold, or until it is
// cancelled (which it counts), before passing it on.
type holdReferrers struct {
	hold      time.Duration
	cancelled atomic.Int64
	next      http.RoundTripper
}

func (h *holdReferrers) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "/referrers/") {
		select {
		case <-time.After(h.hold):
		case <-r.Context().Done():
			h.cancelled.Add(1)
			return nil, r.Context().Err()
		}
	}
	return h.next.RoundTrip(r)
}

// TestDeciderStopsWhenPoliciesPass: a legacy .sig that meets the policy
// ends the fetch; the referrers still being read are cancelled. A policy
// that needs every attestation to meet its conditions reads them all, so a
// violating bundle attestation behind slow referrers still denies.
func TestDeciderStopsWhenPoliciesPass(t *testing.T) {
	reg, cosign, key, pub := signingWorld(t)
	decider := func(t *testing.T, hold time.Duration) (*check.Decider, *holdReferrers) {
		h := &holdReferrers{hold: hold, next: http.DefaultTransport}
		rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(h))
		if err != nil {
			t.Fatal(err)
		}
		return &check.Decider{Registry: rc}, h
	}

	t.Run("signature", func(t *testing.T) {
		img := reg.PushRandomImage(t, "both", "v1")
		cosign.Sign(t, img.Ref, key, harness.Legacy)
		cosign.Sign(t, img.Ref, key, harness.Bundle)
		d, _ := decider(t, 20*time.Second)
		start := time.Now()
		if dec := decideOne(t, d, keyPolicySnapshot(t, reg.Host, pub), img.Ref, policy.Target{Namespace: "default"}); !dec.Allowed {
			t.Fatalf("denied: %v", dec.Denials)
		}
		// The referrers request was cancelled or never sent.
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s; want the fetch to stop at the .sig, not wait for the referrers", took)
		}
	})

	t.Run("every attestation must pass", func(t *testing.T) {
		const review = "https://example.com/review/v1"
		img := reg.PushRandomImage(t, "attested", "v1")
		cosign.Attest(t, img.Ref, key, review, []byte(`{"approved": true}`), harness.Legacy)
		cosign.Attest(t, img.Ref, key, review, []byte(`{"approved": false}`), harness.Bundle)
		snap := snapshotOf(t, "reviewed", v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}},
			Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)},
				Attestations: []v1alpha1.Attestation{{PredicateType: review, Match: "all", Conditions: []string{"predicate.approved == true"}}}}},
		}, nil)
		d, h := decider(t, 300*time.Millisecond) // the .att is read first
		dec := decideOne(t, d, snap, img.Ref, policy.Target{Namespace: "default"})
		if dec.Allowed || !strings.Contains(strings.Join(dec.Denials, "\n"), "not every statement meets the conditions") {
			t.Errorf("allowed %v, denials %q; want the bundle attestation's violation", dec.Allowed, dec.Denials)
		}
		if n := h.cancelled.Load(); n != 0 {
			t.Errorf("%d referrers requests cancelled; every attestation must be read", n)
		}
	})
}

// secretResolver serves one Secret's keys.
type secretResolver map[string][]byte

func (r secretResolver) SecretKeys(context.Context, string, string) (map[string][]byte, error) {
	return r, nil
}
func (r secretResolver) TrustedMaterial(context.Context, string) (root.TrustedMaterial, error) {
	return nil, errors.New("no trust roots here")
}

// TestRotatedSecretKeyInvalidatesCachedResults: a key read from a Secret
// is rotated (the old one revoked); an image verified with the old key and
// cached is decided afresh, and denied.
func TestRotatedSecretKeyInvalidatesCachedResults(t *testing.T) {
	reg, cosign, oldKey, oldPub := signingWorld(t)
	newKey := cosign.GenerateKeyPair(t)
	newPub, err := os.ReadFile(newKey.Public)
	if err != nil {
		t.Fatal(err)
	}
	img := reg.PushRandomImage(t, "app", "v1")
	cosign.Sign(t, img.Ref, oldKey, harness.Legacy)

	snapshot := func(pub []byte) *policy.Snapshot {
		return keySnapshot(t, reg.Host, &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "keys", Namespace: "signet"}},
			secretResolver{"cosign.pub": pub})
	}
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	d := &check.Decider{Registry: rc, Cache: check.NewCache(time.Hour, time.Minute, 100)}
	target := policy.Target{Namespace: "default"}
	if dec := decideOne(t, d, snapshot(oldPub), img.Ref, target); !dec.Allowed {
		t.Fatalf("signed with the Secret's key, denied: %v", dec.Denials)
	}
	if dec := decideOne(t, d, snapshot(newPub), img.Ref, target); dec.Allowed {
		t.Fatal("after the Secret's key was rotated, an image signed only with the old key is still allowed (from the cache)")
	}
}
