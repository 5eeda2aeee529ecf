// Package server holds signet's cluster commands, serve, node-agent and
// policy impact, which link the Kubernetes client libraries. The signet-server binary runs
// the whole command tree with them; the signet binary runs signet-server
// for them (see package cli).
//
// signet serve, one file per part:
//
//   - serve.go: the command, its flags and Validate;
//   - wiring.go: run, the start-up in order;
//   - settings.go: the flags serve shares with node-agent, the cluster
//     connection;
//   - defaulttrust.go: the default trusted root (--trusted-root, --tuf);
//   - policies.go, policyfiles.go: where the policies come from: the
//     cluster, through package controller, or files (--policies);
//   - handler.go: the admission handler;
//   - certificate.go: the serving certificate;
//   - https.go, serving.go: the endpoints, the listener and its bounds;
//   - probes.go: /healthz and /readyz, which answers from a signal;
//   - metrics.go, registrytransport.go: the metrics, and the transport
//     that counts registry requests.
//
// signet policy impact: impact.go (the command and the scan), impactread.go
// (what it reads with the caller's credentials), impactprint.go (its
// output).
package server

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/cli"
)

// Commands returns signet serve, signet node-agent and signet policy
// impact (under signet policy: cli.ParentAnnotation).
func Commands() []*cobra.Command {
	impact := newPolicyImpactCommand()
	impact.Annotations = map[string]string{cli.ParentAnnotation: "policy"}
	return []*cobra.Command{newServeCommand(), newNodeAgentCommand(), impact}
}

// NewRootCommand returns the whole command tree: signet's commands and these.
func NewRootCommand() *cobra.Command { return cli.NewRootCommand(Commands()...) }

// Execute runs the command line in args on the whole command tree and
// returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Run(ctx, NewRootCommand(), args, stdout, stderr)
}
