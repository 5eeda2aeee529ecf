package cli_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
)

// The built signet runs the built signet-server next to it for serve and
// node-agent, in its place: its help, its flag errors, its exit codes.
func TestSignetRunsSignetServer(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/signet", "./cmd/signet-server")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building signet and signet-server: %v\n%s", err, out)
	}
	run := func(args ...string) (string, int) {
		var out bytes.Buffer
		cmd := exec.Command(filepath.Join(dir, "signet"), args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		switch {
		case err == nil:
			return out.String(), 0
		case errors.As(err, &ee):
			return out.String(), ee.ExitCode()
		}
		t.Fatalf("signet %s: %v", strings.Join(args, " "), err)
		return "", 0
	}
	if out, code := run("serve", "--help"); code != 0 || !strings.Contains(out, "--validating-webhook") {
		t.Errorf("signet serve --help: exit %d, output lacks --validating-webhook:\n%s", code, out)
	}
	if out, code := run("node-agent", "--no-such-flag"); code != cli.ExitUndecided || !strings.Contains(out, "unknown flag: --no-such-flag") {
		t.Errorf("signet node-agent --no-such-flag: exit %d, want %d and signet-server's error:\n%s", code, cli.ExitUndecided, out)
	}
	if out, code := run("--help"); code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "node-agent") {
		t.Errorf("signet --help: exit %d, does not list serve and node-agent:\n%s", code, out)
	}
}
