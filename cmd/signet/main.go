// Command signet enforces container image signature and attestation policies.
// It builds a signal-aware context, runs the root command and sets the exit code;
// everything else lives in internal/cli. signet serve and signet node-agent run
// the signet-server binary (cmd/signet-server), which links the Kubernetes
// client libraries that this one leaves out to start faster.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/startup"
)

func main() {
	startup.Done()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
