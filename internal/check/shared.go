package check

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-dev/signet/internal/verify"
)

// SharedStore is where a SharedCache keeps its entries: a Redis-protocol
// server (package redis). Get's found is false when key has no value.
type SharedStore interface {
	Get(ctx context.Context, key string) (value []byte, found bool, err error)
	Set(ctx context.Context, key string, value []byte, ttl time.Duration) error
}

// MinSharedKeyBytes is the shortest MAC key NewSharedCache takes.
const MinSharedKeyBytes = 32

// Defaults of SharedOptions.
const (
	DefaultSharedTimeout  = 100 * time.Millisecond
	DefaultSharedMaxValue = 1 << 20
	// DefaultSharedMaxBackoff bounds the pause after the store failed.
	DefaultSharedMaxBackoff = 30 * time.Second
	sharedMinBackoff        = time.Second
)

// SharedOptions are a SharedCache's knobs.
type SharedOptions struct {
	// Timeout bounds each operation on the store (DefaultSharedTimeout).
	Timeout time.Duration
	// MaxValue bounds an entry, written or read (DefaultSharedMaxValue);
	// a larger one is not written, and not used when read.
	MaxValue int
	// MaxBackoff bounds the pause after a failure of the store
	// (DefaultSharedMaxBackoff).
	MaxBackoff time.Duration
	// Log, when set, says at most once a minute for each kind of trouble
	// that the store failed or held entries that are not signet's.
	Log *slog.Logger
}

// SharedCache is the optional second tier of Cache, kept in a store that
// every replica of signet reaches (a Redis-protocol server), so that a
// result one replica verified is not verified again by the others. It is
// keyed exactly like Cache (digest, subject, policy hash, trust version,
// credentials key: what a result depends on, the same in every replica)
// and lives as long (Cache's Positive and Negative lifetimes; "could not
// decide" never stored).
//
// The store is not trusted: anyone who can write to it could otherwise
// admit anything. Each entry carries an HMAC-SHA256, with a key only signet
// holds, over the whole cache key, the result and its expiry: an entry
// that is forged, altered, extended or moved under another key fails it
// and is not used (Stats.Invalid); the decision verifies as if it had
// missed. Entry names are keyed hashes too, so the store does not learn
// which images, policies or credentials they are about. Replicas with
// different keys do not see each other's entries.
//
// The store failing is never an error of a decision: each operation is
// bounded by Timeout, a failure is a miss, and after one the store is left
// alone for a pause (1 s, doubling to MaxBackoff while it keeps failing;
// then one operation at a time tries it), so an outage costs at most one
// Timeout now and then, not one per admission.
//
// It is consulted only by decisions that may read the registry (after the
// in-process tier missed), never by the inline warm pass: a round trip
// there would slow every warm admission.
type SharedCache struct {
	store      SharedStore
	names, mac []byte // derived keys: of entry names, of entries
	timeout    time.Duration
	maxValue   int
	maxBackoff time.Duration
	log        *slog.Logger
	now        func() time.Time

	mu        sync.Mutex
	downUntil time.Time
	backoff   time.Duration
	probing   bool
	logged    map[string]time.Time

	hits, misses, invalid, failures, backedOff, stored atomic.Uint64
}

// NewSharedCache returns a shared tier over store, whose entries are
// MACed with key (at least MinSharedKeyBytes of secret bytes, the same in
// every replica that shares results).
func NewSharedCache(store SharedStore, key []byte, o SharedOptions) (*SharedCache, error) {
	if store == nil {
		return nil, errors.New("a shared cache needs a store")
	}
	if len(key) < MinSharedKeyBytes {
		return nil, fmt.Errorf("the shared cache's key has %d bytes, fewer than %d", len(key), MinSharedKeyBytes)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultSharedTimeout
	}
	if o.MaxValue <= 0 {
		o.MaxValue = DefaultSharedMaxValue
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultSharedMaxBackoff
	}
	derive := func(purpose string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(purpose))
		return m.Sum(nil)
	}
	return &SharedCache{
		store: store, names: derive("signet shared cache: entry names"), mac: derive("signet shared cache: entries"),
		timeout: o.Timeout, maxValue: o.MaxValue, maxBackoff: o.MaxBackoff, log: o.Log, now: time.Now,
		logged: map[string]time.Time{},
	}, nil
}

// SharedStats count a SharedCache's operations.
type SharedStats struct {
	// Hits and Misses are lookups that found a valid entry, and none.
	Hits, Misses uint64
	// Invalid are entries found but not used: a MAC that does not verify
	// (not written by signet with this key, or altered), or that cannot be
	// read. Each is also a miss of the decision, not counted in Misses.
	Invalid uint64
	// Failures are operations the store failed (an error, a timeout);
	// BackedOff those not tried while the store was left alone after one.
	Failures, BackedOff uint64
	// Stored are the entries written.
	Stored uint64
}

// Stats returns the counts so far.
func (s *SharedCache) Stats() SharedStats {
	return SharedStats{Hits: s.hits.Load(), Misses: s.misses.Load(), Invalid: s.invalid.Load(),
		Failures: s.failures.Load(), BackedOff: s.backedOff.Load(), Stored: s.stored.Load()}
}

// entryPrefix begins every entry name; entryMagic every entry.
const (
	entryPrefix = "signet:result:"
	entryMagic  = "sg1"
	macSize     = sha256.Size
)

// fullKey is k as the MAC and the entry name cover it: every part,
// length-prefixed, so no two keys share an encoding.
func fullKey(k cacheKey) []byte {
	var b []byte
	for _, part := range []string{k.digest, k.subject, k.policy, k.trust, k.creds} {
		b = binary.AppendUvarint(b, uint64(len(part)))
		b = append(b, part...)
	}
	return b
}

func (s *SharedCache) name(full []byte) string {
	m := hmac.New(sha256.New, s.names)
	m.Write(full)
	return entryPrefix + hex.EncodeToString(m.Sum(nil))
}

func (s *SharedCache) sum(full, body []byte) []byte {
	m := hmac.New(sha256.New, s.mac)
	m.Write(binary.AppendUvarint(nil, uint64(len(full))))
	m.Write(full)
	m.Write(body)
	return m.Sum(nil)
}

// seal is the entry for r under k, expiring at expires: magic, expiry
// (Unix milliseconds), the encoded result, the MAC of all of it and k.
func (s *SharedCache) seal(full []byte, r verify.Result, expires time.Time) ([]byte, error) {
	payload, err := verify.EncodeResult(r)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(entryMagic)+8+len(payload)+macSize)
	body = append(body, entryMagic...)
	body = binary.BigEndian.AppendUint64(body, uint64(expires.UnixMilli()))
	body = append(body, payload...)
	return append(body, s.sum(full, body)...), nil
}

// errInvalid: an entry not to be used.
var errInvalid = errors.New("invalid entry")

// open checks an entry's MAC for k and reads it.
func (s *SharedCache) open(full, entry []byte) (verify.Result, time.Time, error) {
	if len(entry) < len(entryMagic)+8+macSize || !bytes.HasPrefix(entry, []byte(entryMagic)) {
		return verify.Result{}, time.Time{}, fmt.Errorf("%w: not an entry of this version", errInvalid)
	}
	body, mac := entry[:len(entry)-macSize], entry[len(entry)-macSize:]
	if !hmac.Equal(mac, s.sum(full, body)) {
		return verify.Result{}, time.Time{}, fmt.Errorf("%w: its MAC does not verify with this key", errInvalid)
	}
	expires := time.UnixMilli(int64(binary.BigEndian.Uint64(body[len(entryMagic):]))) //nolint:gosec // G115: MACed, written by seal from an int64
	r, err := verify.DecodeResult(body[len(entryMagic)+8:])
	if err != nil {
		return verify.Result{}, time.Time{}, fmt.Errorf("%w: %w", errInvalid, err)
	}
	if errors.Is(r.Err, verify.ErrUndecided) {
		return verify.Result{}, time.Time{}, fmt.Errorf("%w: an undecided result", errInvalid)
	}
	return r, expires, nil
}

// get looks k up; ok is false for a miss, an expired or invalid entry, or
// a store that failed or is left alone.
func (s *SharedCache) get(ctx context.Context, k cacheKey) (r verify.Result, expires time.Time, ok bool) {
	if !s.try() {
		s.backedOff.Add(1)
		return verify.Result{}, time.Time{}, false
	}
	full := fullKey(k)
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	entry, found, err := s.store.Get(octx, s.name(full))
	cancel()
	if !s.done(ctx, err) {
		return verify.Result{}, time.Time{}, false
	}
	if !found {
		s.misses.Add(1)
		return verify.Result{}, time.Time{}, false
	}
	r, expires, err = s.open(full, entry)
	if err != nil {
		s.invalid.Add(1)
		s.logf("invalid", "shared cache entry not used; verifying instead", "err", err)
		return verify.Result{}, time.Time{}, false
	}
	if !s.now().Before(expires) {
		s.misses.Add(1)
		return verify.Result{}, time.Time{}, false
	}
	s.hits.Add(1)
	return r, expires, true
}

// put stores r under k for ttl.
func (s *SharedCache) put(ctx context.Context, k cacheKey, r verify.Result, ttl time.Duration) {
	full := fullKey(k)
	entry, err := s.seal(full, r, s.now().Add(ttl))
	if err != nil {
		s.logf("unencodable", "result not shared", "err", err)
		return
	}
	if len(entry) > s.maxValue {
		s.logf("too large", "result not shared: larger than the largest entry", "bytes", len(entry), "limit", s.maxValue)
		return
	}
	if !s.try() {
		s.backedOff.Add(1)
		return
	}
	octx, cancel := context.WithTimeout(ctx, s.timeout)
	err = s.store.Set(octx, s.name(full), entry, ttl)
	cancel()
	if s.done(ctx, err) {
		s.stored.Add(1)
	}
}

// try says whether to use the store now: not while it is left alone after
// a failure, and then by one operation at a time until one succeeds.
func (s *SharedCache) try() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.backoff == 0 {
		return true
	}
	if s.probing || s.now().Before(s.downUntil) {
		return false
	}
	s.probing = true
	return true
}

// done records how an operation went; true when the store answered. The
// end of the caller's own context is not the store's failure.
func (s *SharedCache) done(ctx context.Context, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.probing = false
	if err == nil {
		s.backoff = 0
		return true
	}
	if ctx.Err() != nil {
		return false
	}
	s.failures.Add(1)
	s.backoff = min(max(2*s.backoff, sharedMinBackoff), s.maxBackoff)
	s.downUntil = s.now().Add(s.backoff)
	s.logfLocked("unavailable", "shared cache unavailable; verifying without it", "err", err, "retryIn", s.backoff.String())
	return false
}

// logf logs msg for a kind of trouble at most once a minute.
func (s *SharedCache) logf(kind, msg string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logfLocked(kind, msg, args...)
}

func (s *SharedCache) logfLocked(kind, msg string, args ...any) {
	if s.log == nil {
		return
	}
	now := s.now()
	if last, ok := s.logged[kind]; ok && now.Sub(last) < time.Minute {
		return
	}
	s.logged[kind] = now
	s.log.Warn(msg, args...)
}
