// Command signet-server runs signet in a cluster: signet serve (the
// admission webhook and its policy controller) and signet node-agent. It
// has every command of signet too; the signet binary leaves out the
// Kubernetes client libraries these two need, and runs this binary for
// them. It builds a signal-aware context, runs the command tree and sets the
// exit code; everything else lives in internal/cli and internal/cli/server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/internal/startup"
)

func main() {
	startup.Done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := server.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
