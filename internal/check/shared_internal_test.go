package check

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// memStore is a SharedStore in memory, with expiry by clock: the unit
// tests' stand-in for a Redis server (test/sharedcache runs the real one).
type memStore struct {
	clock func() time.Time
	mu    sync.Mutex
	m     map[string]memEntry
	// fail, when set, is every operation's answer.
	fail func(ctx context.Context) error
	ops  int
}

type memEntry struct {
	value   []byte
	expires time.Time
}

func newMemStore(clock func() time.Time) *memStore {
	return &memStore{clock: clock, m: map[string]memEntry{}}
}

func (s *memStore) Get(ctx context.Context, key string) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops++
	if s.fail != nil {
		return nil, false, s.fail(ctx)
	}
	e, ok := s.m[key]
	if !ok || !s.clock().Before(e.expires) {
		return nil, false, nil
	}
	return bytes.Clone(e.value), true, nil
}

func (s *memStore) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ops++
	if s.fail != nil {
		return s.fail(ctx)
	}
	s.m[key] = memEntry{value: bytes.Clone(value), expires: s.clock().Add(ttl)}
	return nil
}

func newTestShared(t *testing.T, store SharedStore, key []byte, clock func() time.Time) *SharedCache {
	t.Helper()
	s, err := NewSharedCache(store, key, SharedOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.now = clock
	return s
}

// sameErrors compares errors as decisions use them: their text and kinds.
var sameErrors = cmp.Comparer(func(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Error() == b.Error() && cmp.Equal(verify.Codes(a), verify.Codes(b)) &&
		errors.Is(a, verify.ErrDenied) == errors.Is(b, verify.ErrDenied) && errors.Is(a, verify.ErrUndecided) == errors.Is(b, verify.ErrUndecided)
})

// TestSharedEntriesAreSignets: what one replica stores, another with the
// same key reads whole; an entry altered, extended, moved under another
// key or written with another key is not used (and counted); an expired
// one is a miss; what could not be decided is never stored.
func TestSharedEntriesAreSignets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	key := []byte(strings.Repeat("k", MinSharedKeyBytes))
	store := newMemStore(clock)
	a, b := newTestShared(t, store, key, clock), newTestShared(t, store, key, clock)
	other := newTestShared(t, store, []byte(strings.Repeat("o", MinSharedKeyBytes)), clock)

	k := cacheKey{digest: "sha256:ab", subject: "r.example/app", policy: "h", trust: "t", creds: "c"}
	verified := verify.Result{Policy: "p", Digest: "sha256:ab", Verified: true, Threshold: 1,
		Authorities: []verify.AuthorityResult{{Name: "ci", Passed: true, Signatures: []verify.Signature{{Source: "s", Format: "legacy signature", Signer: "key SHA256:ef"}}}}}
	a.put(t.Context(), k, verified, time.Minute)
	got, expires, ok := b.get(t.Context(), k)
	if !ok {
		t.Fatalf("the other replica did not find the entry: %+v", b.Stats())
	}
	if diff := cmp.Diff(verified, got, sameErrors); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
	}
	if !expires.Equal(now.Add(time.Minute)) {
		t.Errorf("expires %v, want %v", expires, now.Add(time.Minute))
	}
	if _, _, ok := other.get(t.Context(), k); ok {
		t.Error("a replica with another key used the entry")
	}

	name := a.name(fullKey(k))
	entry := store.m[name].value
	tamper := func(f func([]byte) []byte) {
		store.m[name] = memEntry{value: f(bytes.Clone(entry)), expires: now.Add(time.Hour)}
	}
	for _, tc := range []struct {
		what   string
		change func([]byte) []byte
	}{
		{"a result's byte", func(e []byte) []byte { e[len(entryMagic)+8+5] ^= 1; return e }},
		{"the expiry extended", func(e []byte) []byte { e[len(entryMagic)+4]++; return e }},
		{"the MAC", func(e []byte) []byte { e[len(e)-1] ^= 1; return e }},
		{"truncated", func(e []byte) []byte { return e[:len(e)-1] }},
		{"nothing but a MAC", func(e []byte) []byte { return e[len(e)-macSize:] }},
		{"written with another key", func([]byte) []byte {
			e, err := other.seal(fullKey(k), verified, now.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}},
		{"moved from another key", func([]byte) []byte {
			e, err := a.seal(fullKey(cacheKey{digest: "sha256:00", subject: k.subject, policy: k.policy, trust: k.trust, creds: k.creds}), verified, now.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			return e
		}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			tamper(tc.change)
			before := b.Stats().Invalid
			if r, _, ok := b.get(t.Context(), k); ok {
				t.Fatalf("used: %+v", r)
			}
			if b.Stats().Invalid != before+1 {
				t.Errorf("not counted as invalid: %+v", b.Stats())
			}
		})
	}
	tamper(func(e []byte) []byte { return e })
	now = now.Add(time.Minute)
	if _, _, ok := b.get(t.Context(), k); ok {
		t.Error("an entry was used after its expiry")
	}

	undecided := verify.Result{Policy: "p", Digest: "sha256:cd", Err: verify.AsUndecided(errors.New("deadline"))}
	c := NewCache(time.Minute, time.Minute, 10)
	c.now, c.Shared = clock, a
	c.store(t.Context(), cacheKey{digest: "sha256:cd"}, undecided)
	if _, _, ok := b.get(t.Context(), cacheKey{digest: "sha256:cd"}); ok {
		t.Error("a result that could not be decided was shared")
	}
	if _, err := NewSharedCache(store, key[:MinSharedKeyBytes-1], SharedOptions{}); err == nil {
		t.Error("a short key was taken")
	}
}

// TestSharedNegativeLifetime: a denial lives for the cache's Negative
// lifetime in the shared tier too, and a replica that reads an entry keeps
// it no longer than the entry lives (nor than its own lifetimes).
func TestSharedNegativeLifetime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	key := []byte(strings.Repeat("k", MinSharedKeyBytes))
	store := newMemStore(clock)
	ca, cb := NewCache(time.Hour, 30*time.Second, 10), NewCache(time.Hour, 30*time.Second, 10)
	ca.now, cb.now = clock, clock
	ca.Shared, cb.Shared = newTestShared(t, store, key, clock), newTestShared(t, store, key, clock)
	k := cacheKey{digest: "sha256:ab", subject: "r/app", policy: "h"}
	denied := verify.Result{Policy: "p", Digest: "sha256:ab", Err: &verify.Denial{Kind: verify.ErrNoSignature, Reason: "no signature found"}}
	ca.store(t.Context(), k, denied)
	now = now.Add(20 * time.Second)
	if got := cb.fromShared(t.Context(), []cacheKey{k}); got[0] == nil || !errors.Is(got[0].Err, verify.ErrNoSignature) {
		t.Fatalf("denial not read from the shared tier: %+v", got)
	}
	now = now.Add(11 * time.Second) // 31 s after it was verified
	if _, ok := cb.get(k); ok {
		t.Error("a denial read from the shared tier outlived the negative lifetime")
	}
	if got := cb.fromShared(t.Context(), []cacheKey{k}); got[0] != nil {
		t.Error("a denial outlived the negative lifetime in the shared tier")
	}
}

// TestSharedOutageBacksOff: a store that does not answer costs one timeout,
// then is left alone (operations backed off, not waited for) for a pause that
// doubles while it keeps failing, is tried by one operation at a time, and
// is used again as soon as it answers.
func TestSharedOutageBacksOff(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	store := newMemStore(clock)
	hang := func(ctx context.Context) error { <-ctx.Done(); return fmt.Errorf("i/o: %w", ctx.Err()) }
	store.fail = hang
	s, err := NewSharedCache(store, []byte(strings.Repeat("k", MinSharedKeyBytes)), SharedOptions{Timeout: 20 * time.Millisecond, MaxBackoff: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	s.now = clock
	k := cacheKey{digest: "sha256:ab"}
	timed := func() time.Duration {
		start := time.Now()
		if _, _, ok := s.get(t.Context(), k); ok {
			t.Fatal("a hit from a store that is down")
		}
		return time.Since(start)
	}
	if d := timed(); d < 20*time.Millisecond {
		t.Errorf("the first lookup took %s, want the timeout", d)
	}
	for range 100 {
		if d := timed(); d > 10*time.Millisecond {
			t.Fatalf("a lookup while backing off took %s", d)
		}
	}
	if st := s.Stats(); st.Failures != 1 || st.BackedOff != 100 || store.ops != 1 {
		t.Fatalf("stats %+v, %d store operations: want 1 failure, 100 backed off, 1 operation", st, store.ops)
	}
	for _, pause := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		now = now.Add(pause - time.Millisecond)
		timed() // still backing off
		now = now.Add(time.Millisecond)
		timed() // one try, failing again
	}
	if st := s.Stats(); st.Failures != 5 || store.ops != 5 {
		t.Fatalf("stats %+v, %d store operations: want 5 failures and operations", st, store.ops)
	}
	store.fail = nil
	now = now.Add(4 * time.Second)
	timed()
	s.put(t.Context(), k, verify.Result{Policy: "p", Digest: "sha256:ab", Verified: true}, time.Minute)
	if _, _, ok := s.get(t.Context(), k); !ok {
		t.Errorf("the store is not used again after it answered: %+v", s.Stats())
	}
}

// TestSharedOnlyWhenTheRegistryMayBeRead: the warm pass of a decision
// (cachedOnly, inline) never waits for the shared tier; a decision that may
// read the registry asks it after its own cache missed, and keeps what it
// found, so the next decision is warm again without it.
func TestSharedOnlyWhenTheRegistryMayBeRead(t *testing.T) {
	reg := registrytest.StartInProcess(t, false)
	key := newSigningKey(t)
	img := randomImage(t)
	ref, err := name.NewTag(reg.Repo("app")+":v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img.img); err != nil {
		t.Fatal(err)
	}
	payload := sigstoretest.SimpleSigning(reg.Repo("app"), img.digest)
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, key.priv, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	reg.AttachLegacy(t, registrytest.Image{Ref: reg.Repo("app") + "@" + img.digest, Digest: img.digest}, ".sig",
		sigstoretest.SimpleSigningMediaType, payload, map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)})
	snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: key.pem}}}}, nil, policy.Config{TrustVersion: "t"})
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	store := newMemStore(time.Now)
	replica := func() *Decider {
		c := NewCache(time.Hour, time.Minute, 10)
		s, err := NewSharedCache(store, []byte(strings.Repeat("k", MinSharedKeyBytes)), SharedOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Shared = s
		return &Decider{Registry: rc, Cache: c}
	}
	image := reg.Repo("app") + "@" + img.digest
	target := policy.Target{Namespace: "default", Kind: "Pod"}
	step := func(dc *Decider, r reach, wantDecided bool, wantOps int) {
		t.Helper()
		before := store.ops
		d, decided := dc.decide(t.Context(), &credentials{}, snap, image, target, r)
		if decided != wantDecided || (decided && !d.Allowed) {
			t.Fatalf("decided %v, allowed %v (%v); want decided %v and allowed", decided, d.Allowed, d.Denials, wantDecided)
		}
		if got := store.ops - before; got != wantOps {
			t.Errorf("%d operations on the shared tier, want %d", got, wantOps)
		}
	}
	a, b := replica(), replica()
	step(a, cachedOnly, false, 0)  // cold, warm pass: not the shared tier
	step(a, withRegistry, true, 2) // missed there, verified, stored
	step(a, cachedOnly, true, 0)   // warm
	step(b, cachedOnly, false, 0)  // another replica's warm pass: not the shared tier
	step(b, withRegistry, true, 1) // found there
	step(b, cachedOnly, true, 0)   // and kept: warm
}
