package server

import (
	"context"
	"log/slog"

	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/internal/admission"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/policy"
)

// policySource is where signet serve's policies come from: files compiled
// at start-up (--policies), or the cluster's, kept by the controller.
type policySource struct {
	// snapshot returns the current policies (nil until loaded).
	snapshot func() *policy.Snapshot
	// namespaces and credentials read the cluster; nil without one (no
	// namespace labels; signet's own credentials only).
	namespaces  admission.Namespaces
	credentials admission.Credentials
	// ready is closed once the first snapshot is loaded.
	ready <-chan struct{}
	// run keeps the snapshot current until ctx ends.
	run func(ctx context.Context)
	// leading reports whether this replica leads (nil: policies from
	// files, no cluster to audit).
	leading func() bool
	// auditNamespaces reads namespace labels and pull secrets for the
	// audit (the controller).
	auditNamespaces audit.Namespaces
}

// loadPolicies compiles the policy files (--policies), or connects the
// policy controller to the cluster; nothing runs until the source's run.
func (o *serveOptions) loadPolicies(ctx context.Context, log *slog.Logger, cluster *rest.Config, defaultRoot *defaultTrust, metrics *serveMetrics) (*policySource, error) {
	cfg := o.policyConfig()
	cfg.TrustVersion = defaultRoot.Version()
	if o.policies != "" {
		return filePolicies(ctx, log, o.policies, cfg, defaultRoot)
	}
	return clusterPolicies(log, cluster, o.namespace, o.fallbackSA, cfg, defaultRoot, metrics.trustRoots)
}

// clusterPolicies are the cluster's policies, kept by the controller; a new
// default root (--tuf) recompiles them.
func clusterPolicies(log *slog.Logger, cluster *rest.Config, namespace, fallbackSA string, cfg policy.Config, defaultRoot *defaultTrust, metrics *controller.TrustRootMetrics) (*policySource, error) {
	ctl, err := controller.New(cluster, &controller.Controller{Namespace: namespace, FallbackServiceAccount: fallbackSA, Config: cfg, Trust: defaultRoot.Material, Log: log,
		TrustVersion: defaultRoot.Version, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	return &policySource{
		snapshot:        ctl.Snapshot,
		namespaces:      ctl,
		credentials:     ctl,
		ready:           ctl.Ready(),
		leading:         ctl.Leading,
		auditNamespaces: ctl,
		run: func(ctx context.Context) {
			go defaultRoot.Run(ctx, log, ctl.Refresh)
			if err := ctl.Run(ctx); err != nil && ctx.Err() == nil {
				log.Error("policy controller failed", "err", err)
			}
		},
	}, nil
}
