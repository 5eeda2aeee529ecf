// Package cli implements signet's command line: one file per subcommand, each
// with an options struct that registers its flags and validates them. Exit codes
// are shared by every command: 0 success (verified, allowed), 1 the policy is
// not met (denied), 2 signet could not decide or the command was used wrongly.
//
// The commands that run in a cluster (serve, node-agent) are in package
// server, which links the Kubernetes client libraries; this package does
// not, so the signet binary starts without their package initialization
// (about a quarter of its start-up). In the signet binary, those two
// commands run the signet-server binary (see delegate.go).
//
// This package holds commands only. What they load from the machine they
// run on (bounded files, the default trusted root, TrustRoots among policy
// files, registry clients), which package server's commands load too, is in
// package local. Package server builds on the command tree (NewRootCommand,
// Run), the exit codes (WithExitCode) and the flags the two share
// (--crossplane-registry).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes shared by every subcommand.
const (
	ExitOK        = 0
	ExitDenied    = 1
	ExitUndecided = 2
)

// exitError carries a specific exit code out of a command's RunE.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// WithExitCode makes a command exit with code and print err.
func WithExitCode(code int, err error) error { return &exitError{code: code, err: err} }

// ExitCode makes a command exit with code after it has said everything.
func ExitCode(code int) error { return WithExitCode(code, errSilent) }

// NewRootCommand returns the signet command tree. cluster are the commands
// of package server (serve, node-agent, policy impact: one whose
// ParentAnnotation is "policy" goes under signet policy); without them,
// commands of those names run signet-server.
func NewRootCommand(cluster ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:   "signet",
		Short: "Enforce container image signature and attestation policies",
		Long: `signet checks that container images are signed and attested the way your
policies require: as a Kubernetes admission webhook for every workload the API
server admits, and from the command line for any image you ask about.

Exit codes: 0 verified or allowed, 1 denied by policy, 2 could not decide or
bad usage.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	policyCmd := newPolicyCommand()
	root.AddCommand(newVersionCommand(), newVerifyCommand(), newVerifyBundleCommand(), policyCmd, newTrustRootCommand())
	if len(cluster) == 0 {
		cluster = delegatedCommands()
	}
	for _, c := range cluster {
		if c.Annotations[ParentAnnotation] == "policy" {
			policyCmd.AddCommand(c)
		} else {
			root.AddCommand(c)
		}
	}
	return root
}

// Execute runs the command line in args and returns the process exit code.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, NewRootCommand(), args, stdout, stderr)
}

// Run runs the command line in args on root and returns the process exit
// code.
func Run(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if err.Error() != "" {
		fmt.Fprintln(stderr, "Error:", err)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	// Flag parsing and argument errors are usage errors.
	return ExitUndecided
}
