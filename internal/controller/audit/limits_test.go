package audit

import (
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/reference"
)

// TestEventsAreRateLimited: one Event per object per eventInterval, and a
// burst of failing objects is cut at the limiter's burst.
func TestEventsAreRateLimited(t *testing.T) {
	l := newEventLimiter()
	if !l.allow("a") || l.allow("a") {
		t.Fatal("an object gets one Event per interval")
	}
	allowed := 0
	for i := range 1000 {
		if l.allow(string(rune('b' + i))) {
			allowed++
		}
	}
	// The burst (50), less the one "a" took, plus what 5 a second refills
	// while the loop runs.
	if allowed < 45 || allowed > 60 {
		t.Fatalf("%d of 1,000 objects got an Event at once; want about the burst of 50", allowed)
	}
}

// TestRateLimitedHostsBackOff: a host that answers 429 is left alone for a
// second, then twice as long each time it does again, up to a minute, and
// objects of other hosts go on.
func TestRateLimitedHostsBackOff(t *testing.T) {
	s := &Scanner{backoff: map[string]backoff{}}
	var waits []time.Duration
	for range 9 {
		start := time.Now()
		until := s.slowDown("registry.example.org")
		waits = append(waits, until.Sub(start).Round(time.Second))
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 64, 64, 64}
	for i := range want {
		if waits[i] != want[i]*time.Second {
			t.Fatalf("waits %v, want %v seconds", waits, want)
		}
	}
	if host, until := s.backedOff(refs(t, "registry.example.org/app:v1")); host != "registry.example.org" || until.IsZero() {
		t.Errorf("a backed-off host's image is decided now (%q %v)", host, until)
	}
	if _, until := s.backedOff(refs(t, "other.example.org/app:v1")); !until.IsZero() {
		t.Error("another host's image waits")
	}
}

func refs(t *testing.T, images ...string) []reference.Reference {
	t.Helper()
	var out []reference.Reference
	for _, im := range images {
		r, err := reference.Parse(im)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}
