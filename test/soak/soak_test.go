package soak

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-dev/signet/test/faults"
)

// durationEnv sets how long the load runs (a Go duration); without it the
// test is skipped. resultsEnv names a file for the JSON summary.
// profileEnv names a directory for heap profiles written when the second
// third begins and when the load ends (go tool pprof -base second.pprof
// end.pprof shows what grew).
const (
	durationEnv = "SIGNET_SOAK_DURATION"
	// defaultDuration is the load's length without SIGNET_SOAK_DURATION
	// (make test's).
	defaultDuration = "2m"
	resultsEnv      = "SIGNET_SOAK_RESULTS"
	profileEnv      = "SIGNET_SOAK_PROFILES"
)

// TestSoak runs the mixed load for SIGNET_SOAK_DURATION and fails on any
// wrong decision, on a change that took longer than the propagation bound
// to show, and on growth of goroutines or heap in use between the second
// and the last third of the run, or goroutines left once the load is over.
func TestSoak(t *testing.T) {
	env := os.Getenv(durationEnv)
	if env == "" {
		env = defaultDuration
	}
	d, err := time.ParseDuration(env)
	if err != nil || d < 30*time.Second {
		t.Fatalf("%s=%q: want a duration of at least 30s", durationEnv, env)
	}
	if deadline, ok := t.Deadline(); ok && time.Until(deadline) < d+5*time.Minute {
		t.Fatalf("%s=%s needs a -timeout of at least %s more than it (set-up, settling)", durationEnv, d, 5*time.Minute)
	}
	began := time.Now()
	w := newWorld(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs (tail):\n%s", tail(w.wh.Logs(), 8000))
		}
	})
	t.Logf("set up in %s: %d subjects, %d workers, %s of load", time.Since(began).Round(time.Second), len(w.subjects), workers, d)

	w.start = time.Now()
	stop := w.start.Add(d)
	var (
		wg      sync.WaitGroup
		samples []sample
	)
	wg.Go(func() { samples = sampleUntil(t, w.start, stop) })
	wg.Go(func() { w.load(stop) })
	wg.Go(func() { w.churners(stop) })
	wg.Wait()
	w.proxy.Set(faults.None)

	// Once the load is over, what it held is let go: the goroutines come
	// back within the bound of the second third's median.
	series := analyse(samples, d)
	end, settle := settled(series)
	s := w.summary(d, series, end, time.Since(began))
	line, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answers per subject:\n%s", w.tally.report())
	t.Logf("goroutines: %s", series.goroutineLine())
	t.Logf("heap in use (MiB): %s", series.heapLine())
	t.Logf("after the load: %d goroutines, heap in use %.1f MiB (settled in %s)", end.goroutines, mib(end.heapInuse), settle.Round(time.Millisecond))
	t.Logf("propagation (write returned → first probe answered by it): %s", w.propagationLine())
	t.Logf("signet serve logged %d KiB (--log-level warn)", len(w.wh.Logs())>>10)
	t.Logf("summary: %s", line)
	if path := os.Getenv(resultsEnv); path != "" {
		if err := os.WriteFile(path, append(line, '\n'), 0o600); err != nil {
			t.Errorf("writing %s: %v", path, err)
		}
	}

	for _, e := range w.errs {
		t.Error(e)
	}
	if w.tally.wrong > 0 {
		t.Errorf("%d of %d answers were wrong; the first:\n  %s", w.tally.wrong, w.tally.total, strings.Join(w.tally.first, "\n  "))
	}
	if w.tally.total < 100 {
		t.Errorf("only %d admissions in %s", w.tally.total, d)
	}
	for _, tl := range []*timeline{w.rotation, w.churn, w.tenant, w.trustRoot, w.fault} {
		if tl.changes() < 2 {
			t.Errorf("%s changed %d times: the load is too short to mean anything", tl.name, tl.changes())
		}
	}
	for _, why := range series.growth() {
		t.Error(why)
	}
	if end.goroutines > series.second.goroutines+goroutineSlack {
		t.Errorf("%d goroutines %s after the load ended, more than the second third's median %d + %d: a leak", end.goroutines, settle.Round(time.Second), series.second.goroutines, goroutineSlack)
	}
}

// sample is this process's goroutines and heap in use after a garbage
// collection (signet serve, its clients and the test's own, the proxy).
type sample struct {
	at         time.Duration
	goroutines int
	heapInuse  uint64
}

func take(since time.Time) sample {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return sample{at: time.Since(since), goroutines: runtime.NumGoroutine(), heapInuse: m.HeapInuse}
}

// sampleEvery is how often the resources are sampled.
const sampleEvery = 3 * time.Second

func sampleUntil(t *testing.T, start, stop time.Time) []sample {
	var out []sample
	d := stop.Sub(start)
	second := false
	for time.Now().Before(stop) {
		x := take(start)
		out = append(out, x)
		if !second && x.at >= d/3 {
			second = true
			writeProfile(t, "second.pprof")
		}
		sleep(sampleEvery, stop)
	}
	writeProfile(t, "end.pprof")
	return out
}

// writeProfile writes a heap profile to the directory profileEnv names,
// if any.
func writeProfile(t *testing.T, name string) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(filepath.Join(dir, name))
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		t.Errorf("writing the heap profile %s: %v", name, err)
	}
}

// The flatness bounds, between the medians of the second and the last
// thirds of the run (the first is warm-up: caches, connection pools,
// informers filling). A median over a third (13 samples in the 2-minute
// run) ignores a single sample taken in a rebuild or a garbage spike.
//
// Goroutines: the load holds a fixed number of workers, churners and
// connections, plus, while a fault is on (4 s of every 12 s), each stalled
// admission's handler, registry fetch and proxy connection: about 25 for
// the 4 workers, and a third's median can fall on either side of that
// swing. 40 covers it; a goroutine leaked per admission (thousands per
// third), per fault (a fault's stalled fetches: about 25 each, three faults
// a third) or, in a 15-minute soak, per policy or TrustRoot change (about
// 250 a third) exceeds it.
//
// Heap in use (runtime.MemStats.HeapInuse after runtime.GC; the race
// detector's shadow memory is not in it): 10% of the second third's median
// plus 4 MiB. It is some 15 MiB and moves by 1 MiB between samples as the
// caches (10 s / 2 s lifetimes) fill and expire. A leak of 1 KiB per
// admission adds about 9 MiB over a third of a 15-minute soak (30
// admissions a second); a 2-minute run (1,200 admissions a third) catches
// leaks of 5 KiB per admission and more: the bound is stated for what it is.
const (
	goroutineSlack = 40
	heapSlackRatio = 0.10
	heapSlack      = 4 << 20
)

// series is the samples of a run and the medians of its second and last
// thirds.
type series struct {
	samples      []sample
	second, last sample // medians
}

func analyse(samples []sample, d time.Duration) series {
	s := series{samples: samples}
	var second, last []sample
	for _, x := range samples {
		switch {
		case x.at >= 2*d/3:
			last = append(last, x)
		case x.at >= d/3:
			second = append(second, x)
		}
	}
	s.second, s.last = median(second), median(last)
	return s
}

func median(xs []sample) sample {
	if len(xs) == 0 {
		return sample{}
	}
	g := make([]int, len(xs))
	h := make([]uint64, len(xs))
	for i, x := range xs {
		g[i], h[i] = x.goroutines, x.heapInuse
	}
	slices.Sort(g)
	slices.Sort(h)
	return sample{goroutines: g[len(g)/2], heapInuse: h[len(h)/2]}
}

// heapBound is the most heap in use the last third's median may reach.
func (s series) heapBound() uint64 {
	return s.second.heapInuse + uint64(float64(s.second.heapInuse)*heapSlackRatio) + heapSlack
}

// growth says what grew beyond the bounds.
func (s series) growth() []string {
	var out []string
	if s.second.goroutines == 0 || s.last.goroutines == 0 {
		return []string{fmt.Sprintf("too few samples (%d) to compare the thirds of the run", len(s.samples))}
	}
	if s.last.goroutines > s.second.goroutines+goroutineSlack {
		out = append(out, fmt.Sprintf("goroutines grew from a median of %d in the second third to %d in the last, more than %d", s.second.goroutines, s.last.goroutines, goroutineSlack))
	}
	if s.last.heapInuse > s.heapBound() {
		out = append(out, fmt.Sprintf("heap in use grew from a median of %.1f MiB in the second third to %.1f MiB in the last, beyond %.1f MiB (%.0f%% + %d MiB)",
			mib(s.second.heapInuse), mib(s.last.heapInuse), mib(s.heapBound()), heapSlackRatio*100, heapSlack>>20))
	}
	return out
}

func (s series) goroutineLine() string {
	var v []string
	for _, x := range s.samples {
		v = append(v, fmt.Sprint(x.goroutines))
	}
	return fmt.Sprintf("median %d (second third) → %d (last), bound +%d; every %s: %s", s.second.goroutines, s.last.goroutines, goroutineSlack, sampleEvery, strings.Join(v, " "))
}

func (s series) heapLine() string {
	var v []string
	for _, x := range s.samples {
		v = append(v, fmt.Sprintf("%.0f", mib(x.heapInuse)))
	}
	return fmt.Sprintf("median %.1f (second third) → %.1f (last), bound %.1f; every %s: %s", mib(s.second.heapInuse), mib(s.last.heapInuse), mib(s.heapBound()), sampleEvery, strings.Join(v, " "))
}

// settled samples until the goroutines are back within the bound of the
// second third's median, for at most faultLag plus 15 s.
func settled(s series) (sample, time.Duration) {
	t0 := time.Now()
	for {
		x := take(t0)
		if x.goroutines <= s.second.goroutines+goroutineSlack || time.Since(t0) > faultLag+15*time.Second {
			return x, time.Since(t0)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func (w *world) propagationLine() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for _, tl := range []*timeline{w.rotation, w.churn, w.tenant, w.trustRoot} {
		ds := slices.Clone(w.shown[tl.name])
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		parts = append(parts, fmt.Sprintf("%s: %d changes, median %s, max %s", tl.name, len(ds), ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond)))
	}
	return strings.Join(parts, "; ") + fmt.Sprintf(" (bound %s)", propagation)
}

// summary is the one-line record of a run, for bench/README.
type summary struct {
	Duration      string         `json:"duration"`
	Wall          string         `json:"wall"`
	Admissions    int            `json:"admissions"`
	Probes        int            `json:"probes"`
	Wrong         int            `json:"wrong"`
	Outcomes      map[string]int `json:"outcomes"`
	Changes       map[string]int `json:"changes"`
	PropagationMS struct {
		Median int64 `json:"median"`
		Max    int64 `json:"max"`
		Bound  int64 `json:"bound"`
	} `json:"propagation_ms"`
	Goroutines struct {
		Start  int `json:"start"`
		Second int `json:"second_third_median"`
		Last   int `json:"last_third_median"`
		End    int `json:"end"`
		Slack  int `json:"slack"`
	} `json:"goroutines"`
	HeapMiB struct {
		Start  float64 `json:"start"`
		Second float64 `json:"second_third_median"`
		Last   float64 `json:"last_third_median"`
		End    float64 `json:"end"`
		Bound  float64 `json:"bound"`
	} `json:"heap_inuse_mib"`
}

func (w *world) summary(d time.Duration, s series, end sample, wall time.Duration) summary {
	var out summary
	out.Duration, out.Wall = d.String(), wall.Round(time.Second).String()
	w.tally.mu.Lock()
	out.Admissions, out.Probes, out.Wrong = w.tally.total, w.tally.probes, w.tally.wrong
	w.tally.mu.Unlock()
	out.Outcomes = w.tally.outcomes()
	out.Changes = map[string]int{"rotation": w.rotation.changes(), "cluster_policy": w.churn.changes(), "tenant_policy": w.tenant.changes(),
		"trustroot": w.trustRoot.changes(), "fault": w.fault.changes()}
	w.mu.Lock()
	var all []time.Duration
	for _, ds := range w.shown {
		all = append(all, ds...)
	}
	w.mu.Unlock()
	if len(all) > 0 {
		slices.Sort(all)
		out.PropagationMS.Median, out.PropagationMS.Max = all[len(all)/2].Milliseconds(), all[len(all)-1].Milliseconds()
	}
	out.PropagationMS.Bound = propagation.Milliseconds()
	round := func(b uint64) float64 { return float64(int(mib(b)*10)) / 10 }
	if len(s.samples) > 0 {
		out.Goroutines.Start, out.HeapMiB.Start = s.samples[0].goroutines, round(s.samples[0].heapInuse)
	}
	out.Goroutines.Second, out.Goroutines.Last, out.Goroutines.End, out.Goroutines.Slack = s.second.goroutines, s.last.goroutines, end.goroutines, goroutineSlack
	out.HeapMiB.Second, out.HeapMiB.Last, out.HeapMiB.End, out.HeapMiB.Bound = round(s.second.heapInuse), round(s.last.heapInuse), round(end.heapInuse), round(s.heapBound())
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
