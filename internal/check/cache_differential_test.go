package check

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// TestCacheNeverChangesADecision is invariant 9, differentially: random
// sequences of admissions across repositories (one never pushed), tags,
// digests, policies (signed identity off, matchRepository, matchExact) and
// credentials (one client sees the registry, one gets 404 for everything,
// as a registry answers a reader it does not authorize), with signatures
// added and tags moved in between, are decided by one Decider with a cache
// and by a new Decider without one, and must agree decision by decision.
// Results live for their TTL by design: after each change the cache's clock
// moves past the TTLs, so what is compared is what the key covers.
func TestCacheNeverChangesADecision(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	keyA, keyB := newSigningKey(t), newSigningKey(t)
	img1, img2 := randomImage(t), randomImage(t)
	push := func(repo, tag string, img imageWithDigest) {
		t.Helper()
		ref, err := name.NewTag(reg.Repo(repo)+":"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img.img); err != nil {
			t.Fatal(err)
		}
	}
	// a and b hold the same image; c another; "ghost" is never pushed.
	push("a", "v1", img1)
	push("a", "v2", img2)
	push("b", "v1", img1)
	push("c", "v1", img2)
	sign := func(repo, signedRef string, img imageWithDigest, k *signingKey) {
		t.Helper()
		payload := sigstoretest.SimpleSigning(signedRef, img.digest)
		sum := sha256.Sum256(payload)
		sig, err := ecdsa.SignASN1(rand.Reader, k.priv, sum[:])
		if err != nil {
			t.Fatal(err)
		}
		reg.AttachLegacy(t, registrytest.Image{Ref: reg.Repo(repo) + "@" + img.digest, Digest: img.digest}, ".sig",
			sigstoretest.SimpleSigningMediaType, payload, map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)})
	}
	sign("a", reg.Repo("a"), img1, keyA)

	snapshot := func(identity string) *policy.Snapshot {
		p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "p-" + identity, Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}}, SignedIdentity: identity, Digest: "none",
			Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: keyA.pem + keyB.pem}}},
		}}, nil)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{TrustVersion: "t"})
		if err != nil {
			t.Fatal(err)
		}
		return snap
	}
	snaps := []*policy.Snapshot{snapshot(""), snapshot("matchRepository"), snapshot("matchExact")}

	seen, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(registrytest.Status(http.StatusNotFound)))
	if err != nil {
		t.Fatal(err)
	}
	// With the team's pull secret the registry is seen; without, hidden.
	team := newCredentials([]registry.CredentialSource{{Name: "team", Secrets: []map[string][]byte{{
		".dockerconfigjson": []byte(`{"auths":{"` + reg.Host + `":{"username":"team","password":"p"}}}`),
	}}}}, nil)
	clients := []struct {
		creds *credentials
		key   string
	}{{&team, "team-credentials"}, {&credentials{}, ""}}
	withTeam := func() *Clients {
		return &Clients{New: func(*registry.SecretKeychain) (*registry.Client, error) { return seen, nil }}
	}

	sharedKey := []byte("0123456789abcdef0123456789abcdef")
	for _, replicas := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d replicas", replicas), func(t *testing.T) {
			r := mrand.New(mrand.NewPCG(9, 1))
			now := time.Unix(1_800_000_000, 0)
			clock := func() time.Time { return now }
			store := newMemStore(clock)
			// Replicas: each with a cache of its own, sharing a tier when
			// there are two (a result one verified is read by the other).
			newReplica := func() *Decider {
				cache := NewCache(time.Hour, time.Minute, 10_000)
				cache.now = clock
				if replicas > 1 {
					cache.Shared = newTestShared(t, store, sharedKey, clock)
				}
				return &Decider{Registry: hidden, Clients: withTeam(), Cache: cache, ResolutionWindow: -1}
			}
			deciders := []*Decider{newReplica()}
			for len(deciders) < replicas {
				deciders = append(deciders, newReplica())
			}
			cache := deciders[0].Cache

			pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
			images := []imageWithDigest{img1, img2}
			differences := 0
			for step := range 400 {
				if r.IntN(10) == 0 {
					switch r.IntN(3) {
					case 0: // a signature appears, naming a repository or a tag
						repo := pick("a", "b", "c", "ghost")
						k := keyA
						if r.IntN(2) == 0 {
							k = keyB
						}
						sign(repo, reg.Repo(repo)+pick("", ":v1", ":v2"), images[r.IntN(2)], k)
					case 1: // a tag moves
						push(pick("a", "b", "c"), pick("v1", "v2"), images[r.IntN(2)])
					case 2: // nothing changes but time
					}
					now = now.Add(2 * time.Hour)
					continue
				}
				img := images[r.IntN(2)]
				repo := reg.Repo(pick("a", "b", "c", "ghost"))
				image := pick(repo+":v1", repo+":v2", repo+"@"+img.digest, repo+":v1@"+img.digest)
				snap := snaps[r.IntN(len(snaps))]
				cl := clients[r.IntN(len(clients))]
				target := policy.Target{Namespace: "default", Kind: "Pod"}

				warm := deciders[0]
				if replicas > 1 {
					warm = deciders[r.IntN(replicas)]
				}
				got, _ := warm.decide(t.Context(), cl.creds, snap, image, target, withRegistry)
				want, _ := (&Decider{Registry: hidden, Clients: withTeam(), ResolutionWindow: -1}).decide(t.Context(), cl.creds, snap, image, target, withRegistry)
				if got.Allowed != want.Allowed || got.Digest != want.Digest || !slices.Equal(outcomes(got), outcomes(want)) {
					differences++
					t.Errorf("step %d: %s (policy %s, credentials %q): with the cache allowed=%v %v, without allowed=%v %v",
						step, image, snap.Policies()[0].Object.Name, cl.key, got.Allowed, outcomes(got), want.Allowed, outcomes(want))
				}
				// A result, cached or read from the other replica, is the
				// result verified now, whole.
				for i := range min(len(got.Policies), len(want.Policies)) {
					if g, w := got.Policies[i].Result, want.Policies[i].Result; g != nil && w != nil {
						if diff := cmp.Diff(w, g, sameErrors, verifiedNow); diff != "" {
							differences++
							t.Errorf("step %d: %s: result (-cold +cached):\n%s", step, image, diff)
						}
					}
				}
			}
			hits, misses, _ := cache.Stats()
			if hits == 0 || misses == 0 {
				t.Fatalf("cache hits %d, misses %d: the sequence did not exercise the cache", hits, misses)
			}
			if replicas > 1 {
				st := deciders[1].Cache.Shared.Stats()
				if st.Hits == 0 || st.Stored == 0 || st.Invalid != 0 || st.Failures != 0 {
					t.Fatalf("shared tier %+v: the sequence did not exercise it", st)
				}
				t.Logf("second replica's shared tier: %+v", st)
			}
			t.Logf("400 steps: %d cache hits, %d misses, %d differences", hits, misses, differences)
		})
	}
}

// verifiedNow leaves out the time of a signature verified at the current
// time (a key without a log): when it was verified, not what.
var verifiedNow = cmp.Transformer("verifiedNow", func(ts verify.Timestamp) verify.Timestamp {
	if ts.Kind == "CurrentTime" {
		ts.Time = time.Time{}
	}
	return ts
})

// outcomes is what each policy decided: verified, the denial's reason, or
// "could not decide" (whose wording says which request failed first, and
// the registry client's own hints may change that order).
func outcomes(d Decision) []string {
	var out []string
	for _, p := range d.Policies {
		switch {
		case p.Error != "":
			out = append(out, p.Policy+": could not decide")
		case p.Result.Verified:
			out = append(out, p.Policy+": verified")
		default:
			out = append(out, p.Policy+": "+p.Result.Err.Error())
		}
	}
	return out
}

type signingKey struct {
	priv *ecdsa.PrivateKey
	pem  string
}

func newSigningKey(t *testing.T) *signingKey {
	t.Helper()
	k := sigstoretest.NewKey(t)
	return &signingKey{priv: k, pem: string(sigstoretest.PublicKeyPEM(t, k))}
}

type imageWithDigest struct {
	img    v1.Image
	digest string
}

func randomImage(t *testing.T) imageWithDigest {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return imageWithDigest{img: img, digest: d.String()}
}
