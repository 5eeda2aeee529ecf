package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/signet-dev/signet/test/faults"
)

// registryFaults: for each registry fault of test/faults, the admissions
// answered before the webhook's timeout against those sent
// (faults.Workers at once during the fault, signet serve in a child
// process with a decision timeout of faults.DecisionTimeout); and the
// child's goroutines and heap in use once the faults are over (the most
// after any of them) against before them.
func registryFaults(tb testing.TB, full bool) []Entry {
	d := time.Second
	if full {
		d = 3 * time.Second
	}
	w := faults.NewWorld(tb)
	var out []Entry
	worst := w.Baseline
	for _, f := range faults.Faults {
		r := w.Run(tb, f, d)
		tb.Log(r)
		e := newEntry(fmt.Sprintf("admissions answered before the webhook timeout, registry fault: %s", f), "admissions",
			float64(r.BeforeDeadline), float64(r.Attempted), fmt.Sprintf("admissions sent, %d at once", faults.Workers), 1)
		e.HigherIsBetter, e.Meets = true, e.Ratio >= 1
		out = append(out, e)
		worst.Goroutines = max(worst.Goroutines, r.After.Goroutines)
		worst.HeapInuse = max(worst.HeapInuse, r.After.HeapInuse)
	}
	return append(out,
		newEntry("goroutines of serve after the registry faults", "goroutines", worst.Goroutines, w.Baseline.Goroutines, "before them, after a load without fault", 1.3),
		newEntry("heap in use of serve after the registry faults", "MiB", worst.HeapInuse/(1<<20), w.Baseline.HeapInuse/(1<<20), "before them, after a load without fault", 1.3))
}
