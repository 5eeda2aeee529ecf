package faults

import (
	"os"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if code, ok := ChildMain(); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// perFault is how long admissions are sent during each fault.
const perFault = 2 * time.Second

// Under every registry fault, with Workers admissions at once, every
// admission is answered before the webhook's timeout with the verdict the
// governing policy's onError gives when signet cannot decide (or the
// policy's own verdict, where the fault leaves what it needs intact); no
// faulted request outlives its decision; right after the fault, images are
// decided as before it (nothing of it is cached); and once it is over,
// signet's goroutines and heap come back within GoroutineSlack and
// HeapSlack of what they were before any fault.
func TestRegistryFaults(t *testing.T) {
	w := NewWorld(t)
	t.Logf("baseline: %s", w.Baseline)
	for _, f := range Faults {
		res := w.Run(t, f, perFault)
		t.Log(res)
		if res.Attempted == 0 {
			t.Errorf("%s: no admission was sent", f)
			continue
		}
		if res.BeforeDeadline != res.Attempted {
			t.Errorf("%s: %d of %d admissions answered before the webhook's %s timeout (slowest %s)", f, res.BeforeDeadline, res.Attempted, WebhookTimeout, res.Slowest)
		}
		for _, why := range res.Wrong {
			t.Errorf("%s: %s", f, why)
		}
		for _, why := range res.Unrecovered {
			t.Errorf("%s: right after it: %s", f, why)
		}
		if res.StalledLeft > 0 || res.ActiveLeft > 0 {
			t.Errorf("%s: %d requests still held at the registry and %d connections in a request, %s after the last admission ended", f, res.StalledLeft, res.ActiveLeft, DecisionTimeout)
		}
		if !res.After.Within(res.Before) {
			t.Errorf("%s: after the fault %s, before %s: more than %d goroutines or %d MiB more", f, res.After, res.Before, GoroutineSlack, HeapSlack>>20)
		}
		if f == RateLimitLong && res.Slowest >= DecisionTimeout {
			t.Errorf("%s: the slowest answer took %s: a Retry-After longer than the deadline must fail at once, not wait for the deadline", f, res.Slowest)
		}
		if f == Oversized && res.MaxOversized >= oversizedBytes {
			t.Errorf("%s: signet read a whole %d-byte answer", f, res.MaxOversized)
		}
	}
	if t.Failed() {
		t.Logf("signet serve logs:\n%s", w.Serve.Logs())
	}
}
