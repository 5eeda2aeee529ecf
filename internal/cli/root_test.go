package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Execute(context.Background(), []string{"version", "-o", "json"}, &out, &errOut); code != ExitOK {
		t.Fatalf("exit code = %d, stderr: %s", code, errOut.String())
	}
	var got struct{ Version, Commit, GoVersion string }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("version -o json printed %q: %v", out.String(), err)
	}
	if got.GoVersion != runtime.Version() || got.Version == "" || got.Commit == "" {
		t.Errorf("version info = %+v, want non-empty version and commit, go %s", got, runtime.Version())
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"no-such-command"}, {"version", "--output", "yaml"}, {"version", "extra"}} {
		var out, errOut bytes.Buffer
		if code := Execute(context.Background(), args, &out, &errOut); code != ExitUndecided {
			t.Errorf("signet %s: exit code %d, want %d", strings.Join(args, " "), code, ExitUndecided)
		}
		if !strings.HasPrefix(errOut.String(), "Error: ") {
			t.Errorf("signet %s: stderr %q, want an error message", strings.Join(args, " "), errOut.String())
		}
	}
}
