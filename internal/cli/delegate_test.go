package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeServer puts on PATH a signet-server that prints its arguments and
// exits with code.
func fakeServer(t *testing.T, code string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"signet-server $*\"\necho to-stderr >&2\nexit " + code + "\n"
	if err := os.WriteFile(filepath.Join(dir, ServerBinary), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

// The cluster commands run signet-server with the same arguments, flags
// and --help included, and end with its exit code and output.
func TestClusterCommandsRunSignetServer(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code string
		want int
	}{
		{[]string{"serve", "--help"}, "0", ExitOK},
		{[]string{"serve", "--listen", ":8443", "--unmatched=allow"}, "0", ExitOK},
		{[]string{"node-agent", "--dir", "/etc/crio/policies"}, "1", ExitDenied},
		{[]string{"serve", "--no-such-flag"}, "2", ExitUndecided},
		{[]string{"policy", "impact", "--policy", "strict.yaml", "-o", "json"}, "1", ExitDenied},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fakeServer(t, tc.code)
			var out, errOut bytes.Buffer
			code := Execute(context.Background(), tc.args, &out, &errOut)
			if code != tc.want {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.want, errOut.String())
			}
			if want := "signet-server " + strings.Join(tc.args, " ") + "\n"; out.String() != want {
				t.Errorf("stdout %q, want %q", out.String(), want)
			}
			if errOut.String() != "to-stderr\n" {
				t.Errorf("stderr %q, want only signet-server's", errOut.String())
			}
		})
	}
}

// Without signet-server, a cluster command says where it looked and how
// to get it.
func TestClusterCommandWithoutSignetServer(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	var out, errOut bytes.Buffer
	if code := Execute(context.Background(), []string{"serve", "--listen", ":8443"}, &out, &errOut); code != ExitUndecided {
		t.Fatalf("exit %d, want %d", code, ExitUndecided)
	}
	for _, want := range []string{"signet serve runs signet-server", "next to signet nor on PATH", "make build"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("stderr %q lacks %q", errOut.String(), want)
		}
	}
}

// The signet binary does not link the Kubernetes client libraries: their
// package initialization is about a quarter of its start-up.
func TestSignetBinaryLeavesOutKubernetesClients(t *testing.T) {
	deps := goListDeps(t, "github.com/signet-dev/signet/cmd/signet")
	for _, dep := range deps {
		for _, heavy := range []string{"sigs.k8s.io/controller-runtime", "k8s.io/client-go", "github.com/prometheus/client_golang"} {
			if dep == heavy || strings.HasPrefix(dep, heavy+"/") {
				t.Errorf("cmd/signet depends on %s (package %s): the commands that need it belong in internal/cli/server", heavy, dep)
			}
		}
	}
	if t.Failed() {
		return
	}
	found := false
	for _, dep := range goListDeps(t, "github.com/signet-dev/signet/cmd/signet-server") {
		found = found || strings.HasPrefix(dep, "sigs.k8s.io/controller-runtime/")
	}
	if !found {
		t.Error("go list finds no controller-runtime package under cmd/signet-server: the check above cannot see what it looks for")
	}
}

// goListDeps lists the packages pkg depends on, with the go command.
func goListDeps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}
