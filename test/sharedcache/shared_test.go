package sharedcache

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// newKeys returns the entries written since before.
func newKeys(w *world, t *testing.T, before []string) []string {
	t.Helper()
	var out []string
	for _, k := range w.redis.Keys("signet:result:*") {
		if !slices.Contains(before, k) {
			out = append(out, k)
		}
	}
	return out
}

// TestReplicasShareResults: a result one replica verified is the other's
// without a request for evidence, and the same decision, allowed or
// denied. An entry altered in the store, or one moved under another image's
// name (a denied image dressed in a verified image's entry), is not used:
// the replica verifies itself and decides as it would cold. A replica with
// another key trusts nothing the others wrote.
func TestReplicasShareResults(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	a, b := w.replica(t, replicaOptions{}), w.replica(t, replicaOptions{})

	cold, fetched := a.decide(t, w, w.signed)
	if !cold.Allowed || fetched == 0 {
		t.Fatalf("replica A: allowed %v with %d evidence requests: %+v", cold.Allowed, fetched, cold)
	}
	signedKeys := newKeys(w, t, nil)
	if len(signedKeys) != 1 {
		t.Fatalf("entries after one verification: %q, want one", signedKeys)
	}
	got, fetched := b.decide(t, w, w.signed)
	if fetched != 0 {
		t.Errorf("replica B made %d evidence requests for an image A verified", fetched)
	}
	sameDecision(t, cold, got)

	coldDenied, fetched := a.decide(t, w, w.unsigned)
	if coldDenied.Allowed || coldDenied.Undecided || fetched == 0 {
		t.Fatalf("replica A: the unsigned image: %+v (%d evidence requests)", coldDenied, fetched)
	}
	deniedKeys := newKeys(w, t, signedKeys)
	if len(deniedKeys) != 1 {
		t.Fatalf("entries after a denial: %q, want one more", deniedKeys)
	}
	got, fetched = b.decide(t, w, w.unsigned)
	if fetched != 0 {
		t.Errorf("replica B made %d evidence requests for an image A denied", fetched)
	}
	sameDecision(t, coldDenied, got)
	if st := b.shared.Stats(); st.Hits != 2 || st.Invalid != 0 {
		t.Errorf("replica B's shared tier: %+v, want 2 hits", st)
	}

	t.Run("an altered entry is not used", func(t *testing.T) {
		entry, err := w.redis.Do("GET", signedKeys[0])
		if err != nil || entry == "" {
			t.Fatalf("reading the entry: %q %v", entry, err)
		}
		altered := []byte(entry)
		altered[len(altered)/2] ^= 0x20
		if _, err := w.redis.Do("SET", signedKeys[0], string(altered)); err != nil {
			t.Fatal(err)
		}
		c := w.replica(t, replicaOptions{})
		got, fetched := c.decide(t, w, w.signed)
		if fetched == 0 {
			t.Error("replica C used an altered entry: no evidence requests")
		}
		sameDecision(t, cold, got)
		if st := c.shared.Stats(); st.Invalid != 1 || st.Hits != 0 {
			t.Errorf("replica C's shared tier: %+v, want 1 invalid entry", st)
		}
	})

	t.Run("a verified image's entry under a denied image's name admits nothing", func(t *testing.T) {
		entry, err := w.redis.Do("GET", signedKeys[0])
		if err != nil || entry == "" {
			t.Fatalf("reading the entry: %q %v", entry, err)
		}
		if _, err := w.redis.Do("SET", deniedKeys[0], entry); err != nil {
			t.Fatal(err)
		}
		d := w.replica(t, replicaOptions{})
		got, fetched := d.decide(t, w, w.unsigned)
		if got.Allowed || fetched == 0 {
			t.Errorf("replica D: allowed %v with %d evidence requests, want a denial verified anew", got.Allowed, fetched)
		}
		sameDecision(t, coldDenied, got)
		if st := d.shared.Stats(); st.Invalid != 1 {
			t.Errorf("replica D's shared tier: %+v, want 1 invalid entry", st)
		}
	})

	t.Run("another key trusts nothing", func(t *testing.T) {
		e := w.replica(t, replicaOptions{key: []byte("another key, also of 32 bytes or more")})
		got, fetched := e.decide(t, w, w.signed)
		if fetched == 0 {
			t.Error("a replica with another key used the others' entries")
		}
		sameDecision(t, cold, got)
		if st := e.shared.Stats(); st.Hits != 0 {
			t.Errorf("replica E's shared tier: %+v, want no hit", st)
		}
	})
}

// TestOutageFallsBack: a shared cache that hangs (the server paused) costs
// one timeout, then is left alone: decisions are made, correctly, from the
// registry, without waiting for it; once it answers again it is used. A
// server that is down (stopped) is the same.
//
// It runs alone (not in parallel): its back-off windows are a second long.
func TestOutageFallsBack(t *testing.T) {
	w := newWorld(t)
	const timeout = 300 * time.Millisecond
	b := w.replica(t, replicaOptions{timeout: timeout})
	fresh := func() { b.Cache = withShared(b.Cache, b.shared) }

	w.redis.Pause()
	start := time.Now()
	d, fetched := b.decide(t, w, w.signed)
	first := time.Since(start)
	if !d.Allowed || fetched == 0 {
		t.Fatalf("with the shared cache hanging: %+v (%d evidence requests)", d, fetched)
	}
	if first < timeout {
		t.Errorf("the first decision took %s, less than the timeout %s: the hanging server was not asked", first, timeout)
	}
	start = time.Now()
	for range 4 {
		fresh() // nothing cached in the replica: every decision would ask the shared cache
		if d, _ := b.decide(t, w, w.signed); !d.Allowed {
			t.Fatalf("with the shared cache hanging: %+v", d)
		}
	}
	if rest := time.Since(start); rest > timeout {
		t.Errorf("4 more decisions took %s: the timeout was paid again while backing off", rest)
	}
	if st := b.shared.Stats(); st.Failures != 1 || st.BackedOff < 8 {
		t.Errorf("shared tier while hanging: %+v, want 1 failure and the rest skipped", st)
	}
	w.redis.Resume()

	// After the pause (1 s after one failure), the store is used again.
	time.Sleep(1100 * time.Millisecond)
	fresh()
	b.decide(t, w, w.signed)
	fresh()
	if d, fetched := b.decide(t, w, w.signed); !d.Allowed || fetched != 0 {
		t.Errorf("after the server came back: allowed %v, %d evidence requests; shared tier %+v", d.Allowed, fetched, b.shared.Stats())
	}

	w.redis.Stop()
	for range 3 {
		fresh()
		if d, fetched := b.decide(t, w, w.signed); !d.Allowed || fetched == 0 {
			t.Fatalf("with the shared cache down: allowed %v, %d evidence requests", d.Allowed, fetched)
		}
	}
	if st := b.shared.Stats(); st.Failures != 2 {
		t.Errorf("shared tier while down: %+v, want one more failure", st)
	}
	w.redis.Restart()
	time.Sleep(2100 * time.Millisecond) // the second pause in a row: 2 s
	fresh()
	b.decide(t, w, w.signed)
	if st := b.shared.Stats(); st.Stored == 0 || st.Failures != 2 {
		t.Errorf("after a restart: %+v, want the store used again", st)
	}
}

// TestLifetimes: a denial lives in the shared cache for the negative
// lifetime only; "could not decide" is never shared.
func TestLifetimes(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	opts := replicaOptions{negative: time.Second}
	a, b := w.replica(t, opts), w.replica(t, opts)
	if d, _ := a.decide(t, w, w.unsigned); d.Allowed || d.Undecided {
		t.Fatalf("the unsigned image: %+v", d)
	}
	if _, fetched := b.decide(t, w, w.unsigned); fetched != 0 {
		t.Errorf("a denial within its lifetime: %d evidence requests", fetched)
	}
	time.Sleep(1100 * time.Millisecond)
	c := w.replica(t, opts)
	if d, fetched := c.decide(t, w, w.unsigned); d.Allowed || fetched == 0 {
		t.Errorf("a denial past its lifetime: allowed %v, %d evidence requests", d.Allowed, fetched)
	}

	// The registry fails every evidence request: could not decide.
	before := w.redis.Keys("signet:result:*")
	w.proxy.setFail(func(r *http.Request) int {
		if strings.Contains(r.URL.Path, "/manifests/sha256-") || strings.Contains(r.URL.Path, "/referrers/") {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	undecided := w.replica(t, opts)
	if d, _ := undecided.decide(t, w, w.signed); d.Allowed || !d.Undecided {
		t.Fatalf("with the registry failing: %+v, want undecided", d)
	}
	if added := newKeys(w, t, before); len(added) != 0 || undecided.shared.Stats().Stored != 0 {
		t.Errorf("an undecided result was shared: new entries %q, shared tier %+v", added, undecided.shared.Stats())
	}
	w.proxy.setFail(nil)
	if d, fetched := w.replica(t, opts).decide(t, w, w.signed); !d.Allowed || fetched == 0 {
		t.Errorf("after the registry recovered: allowed %v, %d evidence requests", d.Allowed, fetched)
	}
}
