package startup_test

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/startup"
)

// gcPercent reads the collector's setting.
func gcPercent() int {
	p := debug.SetGCPercent(-1)
	debug.SetGCPercent(p)
	return p
}

// afterImports is the setting once every imported package is initialized,
// as main sees it before it calls Done.
var afterImports = gcPercent()

func TestCollectorHeldUntilDone(t *testing.T) {
	want := 100
	if v, set := os.LookupEnv("GOGC"); set {
		// The user's choice stands throughout.
		want = -1
		if v != "off" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("GOGC=%q", v)
			}
			want = n
		}
		if afterImports != want {
			t.Errorf("with GOGC=%s the setting during start-up is %d", v, afterImports)
		}
	} else if afterImports != -1 {
		t.Errorf("during start-up the collector is set to %d, want off (-1)", afterImports)
	}
	_, memLimitSet := os.LookupEnv("GOMEMLIMIT")
	startup.Done()
	if afterImports == -1 && !memLimitSet && want == 100 {
		// Off until the heap reaches FirstCollection, with a memory limit
		// there; the first collection restores the default.
		if got, limit := gcPercent(), debug.SetMemoryLimit(-1); got != -1 || limit != startup.FirstCollection {
			t.Errorf("after Done: collector %d with a limit of %d, want off (-1) with %d", got, limit, startup.FirstCollection)
		}
		deadline := time.Now().Add(10 * time.Second)
		for gcPercent() != want && time.Now().Before(deadline) {
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
		if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
			t.Errorf("after the first collection the memory limit is %d, want none", limit)
		}
	}
	if got := gcPercent(); got != want {
		t.Errorf("after Done (and a collection): %d, want %d", got, want)
	}
	startup.Done() // a second call changes nothing
	if got := gcPercent(); got != want {
		t.Errorf("after a second Done: %d, want %d", got, want)
	}
}
