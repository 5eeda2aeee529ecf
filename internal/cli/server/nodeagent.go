package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/listener"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/nodeagent"
	"github.com/signet-dev/signet/internal/policyjson"
)

type nodeAgentOptions struct {
	dir           string
	registriesDir string
	listen        string
	clusterSettings
	allowLossy bool
	minRuntime policyjson.Runtime
	resync     time.Duration
}

func newNodeAgentCommand() *cobra.Command {
	o := &nodeAgentOptions{}
	cmd := &cobra.Command{
		Use:   "node-agent --dir DIR",
		Short: "Keep a node's CRI-O signature policies (<dir>/<namespace>.json) in step with the cluster's policies",
		Long: `node-agent runs on every node (a DaemonSet) and keeps CRI-O's
signature_policy_dir in step with the cluster's ClusterImagePolicy and
ImagePolicy objects: <dir>/<namespace>.json for every namespace, the policy.json
that 'signet policy export --to containers-policy' writes, so the node enforces
at pull time what signet enforces at admission (a second line of defence).

Files are replaced atomically and only when their content changes; the file of
a deleted namespace is removed. A namespace whose policies policy.json cannot
express gets a file that rejects every image they govern (fail closed), a log
line saying why and signet_node_agent_fail_closed{namespace} = 1 on /metrics.

The agent never fetches a TUF mirror. A remote TrustRoot is read from the state
signet serve's leader saves of it (the ConfigMap signet-trustroot-NAME), verified
from the TrustRoot's initial root; until it exists, policies naming that
TrustRoot reject every image they select. TrustRoots and the ConfigMaps of
signet's namespace are watched, so new material applies at once.

--min-runtime names the oldest CRI-O (crio-1.MINOR) or containers-image
(containers-image-5.MINOR) on the nodes; default crio-1.28. containers-image
rejects a whole policy.json with a field it does not know, so the files use only
the fields that version reads: a requirement met by any one of several keys
(keyDatas) or Rekor logs (rekorPublicKeyDatas) needs crio-1.32
(containers-image 5.33); for older runtimes such a namespace fails closed, or
with --allow-lossy requires every key (only the newest Rekor log).

--unmatched, --exclude-namespace, --namespace-opt-in and
--namespace-opt-in-label must be those of signet serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
			return o.run(cmd.Context(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&o.dir, "dir", "", "CRI-O's signature policy directory (signature_policy_dir) to keep <namespace>.json files in")
	f.StringVar(&o.registriesDir, "registries-dir", "", "registries.d directory to write signet.yaml (use-sigstore-attachments for the scopes that verify signatures) to; empty: none")
	f.StringVar(&o.listen, "listen", ":9464", "address to serve /healthz, /readyz and /metrics on (plain HTTP); empty: none")
	f.BoolVar(&o.allowLossy, "allow-lossy", false, "apply stricter translations to what policy.json cannot express instead of failing closed")
	o.minRuntime = policyjson.DefaultRuntime
	f.Var(&o.minRuntime, "min-runtime", "oldest runtime on the nodes, crio-1.MINOR or containers-image-5.MINOR: the files use only the policy.json fields it reads (several keys in one requirement need crio-1.32)")
	f.DurationVar(&o.resync, "resync", time.Minute, "rewrite every file at least this often (re-reading key Secrets)")
	return cmd
}

func (o *nodeAgentOptions) Validate() error {
	if o.dir == "" {
		return errors.New("give --dir, CRI-O's signature policy directory")
	}
	if o.resync < time.Second {
		return errors.New("--resync must be at least 1s")
	}
	if err := o.validate(); err != nil {
		return err
	}
	return nil
}

// nodeAgentLimits bound the node agent's listener: it serves probes and
// metrics only (GET, no body), with a 128Mi memory limit in the chart; an
// idle plain-HTTP connection holds a few KiB.
func nodeAgentLimits() listener.Limits {
	return listener.Limits{MaxConns: 256, MaxBodyBytes: 1 << 10}
}

// statusServer is the node agent's /healthz, /readyz (200 once ready is
// closed) and /metrics (at most metricsInFlight scrapes at once) on addr,
// bounded by nodeAgentLimits.
func statusServer(ctx context.Context, addr string, ready <-chan struct{}, reg *prometheus.Registry) (net.Listener, *http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", readyz(ready, nil, "policy files are not written yet"))
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: metricsInFlight}))
	l := nodeAgentLimits()
	ln, err := listener.Listen(ctx, addr, l.MaxConns)
	if err != nil {
		return nil, nil, err
	}
	return ln, listener.NewServer(mux, l), nil
}

func (o *nodeAgentOptions) run(ctx context.Context, logOut io.Writer) error {
	log := slog.New(slog.NewJSONHandler(logOut, nil))
	var tr *root.TrustedRoot
	trustFn := func() (root.TrustedMaterial, error) {
		if tr != nil {
			return tr, nil
		}
		var err error
		tr, err = local.TrustedRoot(o.trustedRoot)
		return tr, err
	}
	restCfg, err := o.restConfig()
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	reg := prometheus.NewRegistry()
	agent, err := nodeagent.New(restCfg, &nodeagent.Agent{
		Dir:           o.dir,
		RegistriesDir: o.registriesDir,
		Namespace:     o.namespace,
		Config:        o.policyConfig(),
		AllowLossy:    o.allowLossy,
		Runtime:       o.minRuntime,
		Trust:         trustFn,
		Resync:        o.resync,
		Log:           log,
		Metrics:       reg,
	})
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	if o.listen != "" {
		ln, srv, err := statusServer(ctx, o.listen, agent.Synced(), reg)
		if err != nil {
			return cli.WithExitCode(cli.ExitUndecided, err)
		}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
	}
	log.Info("node agent started", "dir", o.dir, "registriesDir", o.registriesDir)
	if err := agent.Run(ctx); err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	return nil
}
