package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/signet-dev/signet/test/faults"
	"github.com/signet-dev/signet/test/harness"
)

// load runs the admission workers until stop: each picks a subject, a kind
// (Pod or Deployment) and a spelling (tag or digest) at random.
func (w *world) load(stop time.Time) {
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				w.mu.Lock()
				s := w.subjects[rand.IntN(len(w.subjects))]
				w.mu.Unlock()
				kind := "Pod"
				if rand.IntN(3) == 0 {
					kind = "Deployment"
				}
				w.admit(s, kind, rand.IntN(2) == 0, false)
			}
		})
	}
	wg.Wait()
}

// change writes state next on tl, then probes the first subject of tl
// whose outcome differs between the previous state and next until signet
// answers as next says, and records how long that took.
func (w *world) change(tl *timeline, next string, write func() error) {
	prev := tl.current()
	if err := tl.change(next, write); err != nil {
		w.failf("%s: writing %s: %v", tl.name, next, err)
		return
	}
	written := time.Now()
	w.mu.Lock()
	var probe *subject
	for _, s := range w.subjects {
		if s.tl == tl && s.want(prev)&s.want(next) == 0 {
			probe = s
			break
		}
	}
	w.mu.Unlock()
	if probe == nil {
		return // no image tells the two states apart
	}
	took, ok := w.probe(probe, probe.want(next), written, 4*propagation, true)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.shown[tl.name] = append(w.shown[tl.name], took)
	if !ok {
		w.errs = append(w.errs, fmt.Sprintf("%s: %s → %s: %s still not decided as %s after %s", tl.name, prev, next, probe.name, probe.want(next), took.Round(time.Millisecond)))
	}
}

// sleep waits d, or until stop.
func sleep(d time.Duration, stop time.Time) {
	time.Sleep(min(d, time.Until(stop)))
}

// cycle writes the states of tl in turn, holding each once it shows,
// until stop.
func (w *world) cycle(tl *timeline, states []string, apply func(ctx context.Context, state string) error, stop time.Time) {
	ctx := context.Background()
	i := slices.Index(states, tl.current())
	for time.Now().Before(stop) {
		i = (i + 1) % len(states)
		next := states[i]
		w.change(tl, next, func() error { return apply(ctx, next) })
		sleep(hold, stop)
	}
}

// churners run until stop: the key rotation, the ClusterImagePolicy and
// ImagePolicy changes, the TrustRoot changes and the registry faults.
func (w *world) churners(stop time.Time) {
	var wg sync.WaitGroup
	wg.Go(func() { w.rotate(stop) })
	wg.Go(func() {
		w.cycle(w.churn, []string{"absent", "enforce", "warn", "enforce-key2"}, func(ctx context.Context, st string) error {
			return w.applyCIP(ctx, "churn", w.churnSpec(st))
		}, stop)
	})
	wg.Go(func() {
		w.cycle(w.tenant, []string{"absent", "key2", "key1"}, func(ctx context.Context, st string) error {
			return w.applyIP(ctx, "tenant", "extra", w.tenantSpec(st))
		}, stop)
	})
	wg.Go(func() {
		w.cycle(w.trustRoot, []string{"A-inline", "B-inline", "A-keys", "B-keys", "absent"}, func(ctx context.Context, st string) error {
			return w.applyTrustRoot(ctx, w.trustRootSpec(w.t, st))
		}, stop)
	})
	wg.Go(func() { w.faults(stop) })
	wg.Wait()
}

// soakFaults are the registry faults switched on, in turn: those that
// leave signet nothing to decide with, short of the oversized answers
// (measured by test/faults; here they would only add 64 MiB streams to the
// heap samples).
var soakFaults = []faults.Fault{faults.StallHeaders, faults.Storm5xx, faults.Reset, faults.StallBody, faults.RateLimitShort, faults.BadJSON}

// faults switches a fault on for 4 s every 12 s, until stop; it is off
// when faults returns. The 8 s without a fault outlast faultLag: for 4 s of
// them, the images behind the proxy must be decided as without a fault
// (nothing of it is remembered).
func (w *world) faults(stop time.Time) {
	for i := 0; time.Now().Before(stop); i++ {
		sleep(8*time.Second, stop)
		if !time.Now().Before(stop) {
			break
		}
		f := soakFaults[i%len(soakFaults)]
		_ = w.fault.change(string(f), func() error { w.proxy.Set(f); return nil })
		sleep(4*time.Second, stop)
		_ = w.fault.change(string(faults.None), func() error { w.proxy.Set(faults.None); return nil })
	}
}

// rotate moves the ClusterImagePolicy rotation from one key to the other
// and back until stop, as a key rotation is done: a release signed by the
// old key; the release re-signed by the new key; the policy trusting both;
// then only the new one. Releases stay admitted throughout.
func (w *world) rotate(stop time.Time) {
	ctx := context.Background()
	pairs := map[string]harness.KeyPair{"key1": w.key1, "key2": w.key2}
	bundle := map[string]bool{"key1": false, "key2": true} // key2 signs in the bundle format
	old, next := "key1", "key2"
	for cycle := 1; time.Now().Before(stop); cycle++ {
		rel, err := w.pushRandom("rot/release", fmt.Sprintf("r%d", cycle))
		if err != nil {
			w.failf("rotation: %v", err)
			return
		}
		if err := w.sign(ctx, rel.Ref, pairs[old], bundle[old]); err != nil {
			w.failf("rotation: signing %s with %s: %v", rel.Ref, old, err)
			return
		}
		w.mu.Lock()
		w.subjects = append(w.subjects, &subject{name: "rot/release", ns: "plain", tag: rel.Tag, ref: rel.Ref, want: always(allowed)})
		w.mu.Unlock()
		sleep(hold, stop)
		if err := w.sign(ctx, rel.Ref, pairs[next], bundle[next]); err != nil {
			w.failf("rotation: re-signing %s with %s: %v", rel.Ref, next, err)
			return
		}
		for _, st := range []string{"key1+key2", next} {
			if !time.Now().Before(stop) {
				return
			}
			w.change(w.rotation, st, func() error { return w.applyCIP(ctx, "rotation", w.rotationSpec(st)) })
			sleep(hold, stop)
		}
		old, next = next, old
	}
}
