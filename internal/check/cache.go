package check

import (
	"context"
	"errors"
	"sync"
	"time"
	"unique"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/verify"
)

// Cache holds verified facts: the result of one policy for one image. A
// result is keyed by everything it depends on (invariant 9), so a decision
// made warm equals the decision made cold:
//   - the digest computed from fetched bytes, never a tag (invariant 1);
//   - the repository the evidence was read from and the signed identity is
//     compared with, or the whole reference as written when the policy
//     compares the signed identity exactly (signedIdentity matchExact or
//     matchRepoDigestOrExact), since then the tag matters too;
//   - the policy's content hash (spec, keys read from Secrets, TrustRoot
//     versions) and the default trust root's version;
//   - the credentials the evidence was read with: a registry may answer
//     "not found" or "unauthorized" to a reader it does not authorize, so
//     a result read with one set of pull credentials is never served to
//     another (a decision with none of them would not have seen it).
//
// Verified results live for Positive, definite denials for Negative; "could
// not decide" is never cached. It is bounded: past MaxEntries, expired
// entries go first.
//
// Shared, when set, is a second tier that other replicas read and write
// (see SharedCache): looked up after this one missed by decisions that may
// read the registry, written with it.
type Cache struct {
	Positive   time.Duration
	Negative   time.Duration
	MaxEntries int
	Shared     *SharedCache

	mu      sync.Mutex
	entries map[storedKey]*cacheEntry
	now     func() time.Time
	hits    uint64
	misses  uint64
}

// cacheKey is what a cached result depends on (see Cache). subject is the
// repository ("registry/path") or, for a policy that binds the reference,
// the normalized reference as written; creds identifies the pull
// credentials (check.Clients' key, "" for signet's own).
type cacheKey struct {
	digest, subject, policy, trust, creds string
}

// storedKey is cacheKey as the map holds it: the digest, and the rest
// interned (many digests share a repository, and every result of a policy
// shares its hash, trust version and credentials), so a key costs 32 bytes
// however long its strings are.
type storedKey struct {
	digest  string
	subject unique.Handle[string]
	rest    unique.Handle[keyRest]
}

type keyRest struct{ policy, trust, creds string }

func (k cacheKey) stored() storedKey {
	return storedKey{digest: k.digest, subject: unique.Make(k.subject), rest: unique.Make(keyRest{k.policy, k.trust, k.creds})}
}

// subjects gives, for each policy, what besides the digest its result for
// ref depends on: the repository, or the whole reference when the policy
// compares the signed identity exactly. Each is built once per decision,
// not once per policy.
type subjects struct {
	ref        reference.Reference
	name, full string
}

func (s *subjects) of(p *verify.Compiled) string {
	if p.BindsReference() {
		if s.full == "" {
			s.full = s.ref.String()
		}
		return s.full
	}
	if s.name == "" {
		s.name = s.ref.Name()
	}
	return s.name
}

// cacheEntry is kept by pointer: a map slot then holds a key and a pointer,
// and the map's spare capacity costs little.
type cacheEntry struct {
	result verify.Result
	// expires is in Unix nanoseconds.
	expires int64
}

// NewCache returns a cache with the given lifetimes and size.
func NewCache(positive, negative time.Duration, maxEntries int) *Cache {
	return &Cache{Positive: positive, Negative: negative, MaxEntries: maxEntries, entries: map[storedKey]*cacheEntry{}, now: time.Now}
}

func (c *Cache) get(k cacheKey) (verify.Result, bool) {
	if c == nil {
		return verify.Result{}, false
	}
	sk := k.stored() // outside the lock
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[sk]
	if !ok || c.now().UnixNano() >= e.expires {
		if ok {
			delete(c.entries, sk)
		}
		c.misses++
		return verify.Result{}, false
	}
	c.hits++
	return e.result, true
}

func (c *Cache) put(k cacheKey, r verify.Result) {
	c.putUntil(k, r, time.Time{})
}

// ttl is how long r may be cached: 0 for not at all.
func (c *Cache) ttl(r verify.Result) time.Duration {
	if errors.Is(r.Err, verify.ErrUndecided) {
		// "Could not decide" (a deadline, say) is not a fact about the
		// digest: the next decision tries again.
		return 0
	}
	if r.Verified {
		return max(c.Positive, 0)
	}
	return max(c.Negative, 0)
}

// putUntil is put of a result that expires at until already (read from the
// shared tier), or within its lifetime if that is sooner; zero: its
// lifetime.
func (c *Cache) putUntil(k cacheKey, r verify.Result, until time.Time) {
	if c == nil {
		return
	}
	ttl := c.ttl(r)
	if ttl <= 0 {
		return
	}
	sk := k.stored()
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	expires := now.Add(ttl)
	if !until.IsZero() && until.Before(expires) {
		expires = until
	}
	if c.MaxEntries > 0 && len(c.entries) >= c.MaxEntries {
		c.evict(now)
	}
	c.entries[sk] = &cacheEntry{result: compact(k, r), expires: expires.UnixNano()}
}

// store puts r in the cache and in its shared tier.
func (c *Cache) store(ctx context.Context, k cacheKey, r verify.Result) {
	if c == nil {
		return
	}
	c.put(k, r)
	if ttl := c.ttl(r); c.Shared != nil && ttl > 0 {
		// The fact is about the digest (see compact).
		r.Image = ""
		c.Shared.put(ctx, k, r, ttl)
	}
}

// fromShared looks up keys[i] in the shared tier; found results are kept
// in this one until they expire there (or sooner, by this cache's own
// lifetimes). It returns nil when there is no shared tier.
func (c *Cache) fromShared(ctx context.Context, keys []cacheKey) []*verify.Result {
	if c == nil || c.Shared == nil {
		return nil
	}
	out := make([]*verify.Result, len(keys))
	for i, k := range keys {
		r, expires, ok := c.Shared.get(ctx, k)
		if !ok {
			continue
		}
		c.putUntil(k, r, expires)
		out[i] = &r
	}
	return out
}

// compact is r as the cache keeps it: the digest shares the key's string;
// the image reference is dropped (the fact is about the digest; whoever
// reads it fills in the reference it asked about, see Decider.verify); and
// the strings that repeat across entries (policy, authority and signer
// names, key fingerprints, identities, formats) are interned, so 100,000
// results of a few policies and keys hold each of those once. The caller's
// result is not changed.
func compact(k cacheKey, r verify.Result) verify.Result {
	if r.Digest == k.digest {
		r.Digest = k.digest
	}
	r.Image = ""
	r.Policy = intern(r.Policy)
	if len(r.Authorities) == 0 {
		return r
	}
	auths := make([]verify.AuthorityResult, len(r.Authorities))
	for i, a := range r.Authorities {
		a.Name = intern(a.Name)
		if len(a.Signatures) > 0 {
			sigs := make([]verify.Signature, len(a.Signatures))
			for j, sig := range a.Signatures {
				sig.Format, sig.Signer, sig.KeyFingerprint = intern(sig.Format), intern(sig.Signer), intern(sig.KeyFingerprint)
				sig.Issuer, sig.Subject, sig.PredicateType = intern(sig.Issuer), intern(sig.Subject), intern(sig.PredicateType)
				sigs[j] = sig
			}
			a.Signatures = sigs
		}
		auths[i] = a
	}
	r.Authorities = auths
	return r
}

func intern(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

// evict drops expired entries, then an arbitrary tenth (map order): cheap,
// and a dropped fact only costs one more verification.
func (c *Cache) evict(now time.Time) {
	for k, e := range c.entries {
		if now.UnixNano() >= e.expires {
			delete(c.entries, k)
		}
	}
	n := len(c.entries) - c.MaxEntries + max(1, c.MaxEntries/10)
	for k := range c.entries {
		if n <= 0 {
			break
		}
		delete(c.entries, k)
		n--
	}
}

// Stats returns hits, misses and the number of entries.
func (c *Cache) Stats() (hits, misses uint64, entries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits, c.misses, len(c.entries)
}
