package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// ServerBinary runs signet's cluster commands. It is built from
// cmd/signet-server next to signet (make build) and the container image
// holds both.
const ServerBinary = "signet-server"

// ClusterCommands are the commands of signet-server that signet runs for
// the user: their parent ("" for top level, "policy" for signet policy),
// names and what they do, as signet --help lists them.
var ClusterCommands = []struct{ Parent, Name, Short string }{
	{"", "serve", "Run the admission webhook (validate and mutate) with its policy controller"},
	{"", "node-agent", "Keep a node's CRI-O signature policies (<dir>/<namespace>.json) in step with the cluster's policies"},
	{"policy", "impact", "Show what policies would change for the workloads running in a cluster, or what it denies today"},
}

// ParentAnnotation, in a cluster command's Annotations, names the command
// it belongs under ("policy"); without it, it is a top-level command.
const ParentAnnotation = "signet.dev/parent"

// delegatedCommands are the cluster commands as signet has them: each runs
// signet-server with the same arguments (flags and --help included).
func delegatedCommands() []*cobra.Command {
	out := make([]*cobra.Command, 0, len(ClusterCommands))
	for _, c := range ClusterCommands {
		path := strings.TrimSpace(c.Parent + " " + c.Name)
		out = append(out, &cobra.Command{
			Use:   c.Name,
			Short: c.Short,
			Long: c.Short + ".\n\n" + `This command is in ` + ServerBinary + `, which signet runs with the same
arguments: signet ` + path + ` --help lists its flags.`,
			Annotations:        map[string]string{ParentAnnotation: c.Parent},
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				server, err := findServer(path)
				if err != nil {
					return WithExitCode(ExitUndecided, err)
				}
				return runServer(cmd, server, append(strings.Fields(path), args...))
			},
		})
	}
	return out
}

// findServer looks for signet-server next to this executable, then on PATH.
func findServer(command string) (string, error) {
	exe, err := os.Executable()
	if err == nil {
		exe, err = filepath.EvalSymlinks(exe)
	}
	if err == nil {
		p := filepath.Join(filepath.Dir(exe), ServerBinary)
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			return p, nil
		}
	}
	if p, err := exec.LookPath(ServerBinary); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("signet %s runs %s, found neither next to signet nor on PATH: build both with make build (bin/%s), or use the container image, which has both",
		command, ServerBinary, ServerBinary)
}

// runServer runs signet-server with args. When the command writes to the
// process's own standard output and error (the signet binary), signet-server
// replaces this process where the system allows, so signals, the process ID
// and the exit code are its own; otherwise it runs as a child whose output
// goes where the command's goes, stopped with an interrupt when the
// command's context ends, and its exit code is the command's.
func runServer(cmd *cobra.Command, path string, args []string) error {
	if cmd.OutOrStdout() == os.Stdout && cmd.ErrOrStderr() == os.Stderr {
		err := execServer(path, append([]string{path}, args...))
		if !errors.Is(err, errors.ErrUnsupported) {
			return WithExitCode(ExitUndecided, fmt.Errorf("running %s: %w", path, err))
		}
	}
	child := exec.CommandContext(cmd.Context(), path, args...) //nolint:gosec // G204: signet-server, with the user's own arguments
	child.Stdin, child.Stdout, child.Stderr = cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr()
	child.Cancel = func() error { return child.Process.Signal(os.Interrupt) }
	child.WaitDelay = 30 * time.Second
	err := child.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee) && ee.ExitCode() > 0:
		return WithExitCode(ee.ExitCode(), errSilent)
	}
	return WithExitCode(ExitUndecided, fmt.Errorf("running %s: %w", path, err))
}
