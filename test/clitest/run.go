package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// ExecuteFunc runs one command line and returns its exit code, as
// internal/cli.Execute and internal/cli/server.Execute do.
type ExecuteFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Result is what one command line did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Run runs args with execute, in-process, under the test's context.
func Run(t testing.TB, execute ExecuteFunc, args ...string) Result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := execute(t.Context(), args, &out, &errOut)
	return Result{code, out.String(), errOut.String()}
}

// Want fails the test unless the command exited with code, and reports
// every one of substrings its output (stdout or stderr) does not say.
func (r Result) Want(t testing.TB, code int, substrings ...string) {
	t.Helper()
	if r.Code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, code, r.Stdout, r.Stderr)
	}
	for _, s := range substrings {
		if !strings.Contains(r.Stdout+r.Stderr, s) {
			t.Errorf("output does not say %q\nstdout:\n%s\nstderr:\n%s", s, r.Stdout, r.Stderr)
		}
	}
}
