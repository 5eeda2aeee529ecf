package check

import (
	"sync"
	"time"

	"github.com/signet-dev/signet/internal/verify"
)

// Cache holds verified facts: the result of one policy for one digest. Keys
// are the digest computed from fetched bytes, the policy's content hash and
// the trust root version, never a tag (invariant 1). Verified results live
// for Positive, definite denials for Negative; "could not decide" is never
// cached. It is bounded: past MaxEntries, expired entries go first.
type Cache struct {
	Positive   time.Duration
	Negative   time.Duration
	MaxEntries int

	mu      sync.Mutex
	entries map[cacheKey]cacheEntry
	now     func() time.Time
	hits    uint64
	misses  uint64
}

type cacheKey struct {
	digest, policy, trust string
}

type cacheEntry struct {
	result  verify.Result
	expires time.Time
}

// NewCache returns a cache with the given lifetimes and size.
func NewCache(positive, negative time.Duration, maxEntries int) *Cache {
	return &Cache{Positive: positive, Negative: negative, MaxEntries: maxEntries, entries: map[cacheKey]cacheEntry{}, now: time.Now}
}

func (c *Cache) get(k cacheKey) (verify.Result, bool) {
	if c == nil {
		return verify.Result{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) {
		if ok {
			delete(c.entries, k)
		}
		c.misses++
		return verify.Result{}, false
	}
	c.hits++
	return e.result, true
}

func (c *Cache) put(k cacheKey, r verify.Result) {
	if c == nil {
		return
	}
	ttl := c.Positive
	if !r.Verified {
		ttl = c.Negative
	}
	if ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if c.MaxEntries > 0 && len(c.entries) >= c.MaxEntries {
		c.evict(now)
	}
	c.entries[k] = cacheEntry{result: r, expires: now.Add(ttl)}
}

// evict drops expired entries, then an arbitrary tenth (map order): cheap,
// and a dropped fact only costs one more verification.
func (c *Cache) evict(now time.Time) {
	for k, e := range c.entries {
		if !now.Before(e.expires) {
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
