// Package server holds signet's cluster commands, serve and node-agent,
// which link the Kubernetes client libraries. The signet-server binary runs
// the whole command tree with them; the signet binary runs signet-server
// for them (see package cli).
package server

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/cli"
)

// Commands returns signet serve and signet node-agent.
func Commands() []*cobra.Command {
	return []*cobra.Command{newServeCommand(), newNodeAgentCommand()}
}

// NewRootCommand returns the whole command tree: signet's commands and these.
func NewRootCommand() *cobra.Command { return cli.NewRootCommand(Commands()...) }

// Execute runs the command line in args on the whole command tree and
// returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, NewRootCommand(), args, stdout, stderr)
}
