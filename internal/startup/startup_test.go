package startup_test

import (
	"os"
	"runtime/debug"
	"strconv"
	"testing"

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
	startup.Done()
	if got := gcPercent(); got != want {
		t.Errorf("after Done: %d, want %d", got, want)
	}
	startup.Done() // a second call changes nothing
	if got := gcPercent(); got != want {
		t.Errorf("after a second Done: %d, want %d", got, want)
	}
}
