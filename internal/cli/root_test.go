package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

func TestParseImageFields(t *testing.T) {
	got, err := parseImageFields([]string{"Task.tekton.dev=spec.steps[].image,spec.sidecars[].image", "Widget=spec.image"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Kind.Group != "tekton.dev" || got[0].Kind.Kind != "Task" || len(got[0].Paths) != 2 || got[1].Kind.Group != "" {
		t.Fatalf("parsed %+v", got)
	}
	for _, bad := range []string{"Task.tekton.dev", "=spec.image", "Task="} {
		if _, err := parseImageFields([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestFlagUsageNamesOneValue: pflag takes a back-quoted word in a flag's
// usage as the name of its value in --help ("--policy path"). A quoted
// phrase would print as "--policy signet policy test".
func TestFlagUsageNamesOneValue(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if name, _ := pflag.UnquoteUsage(f); strings.ContainsAny(name, " \t") {
				t.Errorf("%s --%s: --help names its value %q", c.CommandPath(), f.Name, name)
			}
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(NewRootCommand())
}
