// Package nodeagent keeps a node's CRI-O signature policy directory in step
// with the cluster's signet policies: <dir>/<namespace>.json for every
// namespace (CRI-O's --signature-policy-dir), exported by policyjson, plus a
// registries.d file turning on sigstore attachments for the scopes that
// verify signatures.
//
// Files are replaced atomically (temporary file and rename in the same
// directory), unchanged files are not rewritten, and the files of deleted
// namespaces are removed. A namespace whose policies cannot be exported
// exactly gets the fail-closed file (reject for every scope its policies
// govern), a log line and the signet_node_agent_fail_closed gauge: the
// node never enforces less than signet does.
package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/policydir"
	"github.com/signet-dev/signet/internal/policyjson"
)

// Agent writes the policy files of one node.
type Agent struct {
	// Dir receives <namespace>.json (CRI-O's signature_policy_dir). It must
	// exist.
	Dir string
	// RegistriesDir, when set, receives signet.yaml, the registries.d
	// entries for every namespace's scopes.
	RegistriesDir string
	// Namespace is signet's own: where secretRefs without a namespace look.
	Namespace string
	// Config holds the cluster settings, as signet serve's flags.
	Config policy.Config
	// AllowLossy applies stricter translations instead of failing closed.
	AllowLossy bool
	// Runtime is the oldest containers-image the node's runtime links (the
	// zero value: policyjson.DefaultRuntime, CRI-O 1.28); what it cannot
	// read fails the namespace closed.
	Runtime policyjson.Runtime
	// Trust returns the default trusted material.
	Trust func() (root.TrustedMaterial, error)
	// Resync is how often everything is rebuilt even without events (so a
	// rotated key Secret takes effect). Default one minute.
	Resync time.Duration
	Log    *slog.Logger
	// Metrics registers the agent's metrics when set.
	Metrics prometheus.Registerer

	cache      cache.Cache
	kick       chan struct{}
	failClosed *prometheus.GaugeVec
	synced     chan struct{}

	resolver *controller.APIResolver
}

// New connects the agent to the cluster.
func New(cfg *rest.Config, a *Agent) (*Agent, error) {
	if a.Dir == "" {
		return nil, errors.New("no policy directory")
	}
	if fi, err := os.Stat(a.Dir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("the policy directory %s does not exist", a.Dir)
	}
	scheme, err := controller.Scheme()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	// ConfigMaps are watched in signet's namespace only (TrustRoot material
	// and the TUF state signet serve saves); everything else cluster-wide.
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{a.Namespace: {}}},
	}})
	if err != nil {
		return nil, err
	}
	a.cache, a.kick, a.synced = ca, make(chan struct{}, 1), make(chan struct{})
	// Secrets and TrustRoots are read uncached: the agent has no reason to
	// watch Secrets.
	a.resolver = &controller.APIResolver{Client: cl, Namespace: a.Namespace, Trust: a.Trust}
	if a.Log == nil {
		a.Log = slog.Default()
	}
	if a.Resync <= 0 {
		a.Resync = time.Minute
	}
	a.failClosed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "signet_node_agent_fail_closed",
		Help: "1 for a namespace whose policies could not be exported exactly: its file rejects every image its policies govern.",
	}, []string{"namespace"})
	if a.Metrics != nil {
		if err := a.Metrics.Register(a.failClosed); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Synced is closed after the first files are written.
func (a *Agent) Synced() <-chan struct{} { return a.synced }

// Run watches policies, namespaces, TrustRoots and the ConfigMaps in
// signet's namespace, and rewrites the files on every change until ctx
// ends.
func (a *Agent) Run(ctx context.Context) error {
	// Namespaces matter here: each has a file of its own. TrustRoots and
	// ConfigMaps hold trusted material: a new one (the TUF state signet
	// serve saves, above all) can make a policy compile.
	watched := []client.Object{&v1alpha1.ClusterImagePolicy{}, &v1alpha1.ImagePolicy{}, &corev1.Namespace{}, &v1alpha1.TrustRoot{}, &corev1.ConfigMap{}}
	if err := controller.StartWatches(ctx, a.cache, a.Log, a.trigger, watched); err != nil {
		return err
	}
	if err := a.sync(ctx); err != nil {
		return err
	}
	close(a.synced)
	tick := time.NewTicker(a.Resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-a.kick:
		case <-tick.C:
		}
		// Coalesce bursts of events.
		time.Sleep(50 * time.Millisecond)
		select {
		case <-a.kick:
		default:
		}
		if err := a.sync(ctx); err != nil && ctx.Err() == nil {
			a.Log.Error("writing the policy files", "err", err)
		}
	}
}

func (a *Agent) trigger() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// sync exports every namespace's policies and writes the files.
func (a *Agent) sync(ctx context.Context) error {
	var nss corev1.NamespaceList
	if err := a.cache.List(ctx, &nss); err != nil {
		return err
	}
	res := a.resolver
	cps, err := controller.CompilePolicies(ctx, a.cache, res)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if cp.Policy.Err != nil {
			a.Log.Warn("policy does not compile; its files reject every image it selects", "policy", cp.Policy.Object.ID(), "err", cp.Policy.Err)
		}
	}
	compiled := controller.Policies(cps)
	want := map[string][]byte{}
	scopes := map[string]bool{}
	for _, ns := range nss.Items {
		if ns.DeletionTimestamp != nil {
			continue // terminating: its pods are going away; its file goes too
		}
		file, regs, err := a.export(ctx, compiled, ns, res)
		if err != nil {
			return err
		}
		want[ns.Name] = file
		for _, s := range regs.Scopes {
			scopes[s] = true
		}
	}
	ch, err := policydir.Sync(a.Dir, want)
	if len(ch.Written) > 0 || len(ch.Removed) > 0 {
		a.Log.Info("policy files written", "dir", a.Dir, "written", ch.Written, "removed", ch.Removed, "unchanged", len(ch.Unchanged))
	}
	for _, ns := range ch.Removed {
		a.failClosed.DeleteLabelValues(ns)
	}
	if err != nil {
		return err
	}
	if a.RegistriesDir != "" {
		var regs policyjson.Registries
		for s := range scopes {
			regs.Scopes = append(regs.Scopes, s)
		}
		sort.Strings(regs.Scopes)
		path := filepath.Join(a.RegistriesDir, "signet.yaml")
		data := regs.YAML()
		if data == nil {
			data = []byte("# Written by signet: no scope verifies signatures.\n")
		}
		if old, err := os.ReadFile(path); err != nil || string(old) != string(data) { //nolint:gosec // G304: our own file
			if err := policydir.WriteFileAtomic(path, data); err != nil {
				return err
			}
		}
	}
	return nil
}

// export renders one namespace's file: the exact export, or the
// fail-closed one with a log line saying why.
func (a *Agent) export(ctx context.Context, compiled []*policy.Policy, ns corev1.Namespace, res policy.Resolver) ([]byte, policyjson.Registries, error) {
	out, err := policyjson.Export(ctx, compiled, policyjson.Options{
		Target:     policy.Target{Namespace: ns.Name, NamespaceLabels: ns.Labels, Kind: "Pod"},
		Config:     a.Config,
		Resolver:   res,
		AllowLossy: a.AllowLossy,
		Runtime:    a.Runtime,
	})
	if out == nil {
		return nil, policyjson.Registries{}, err
	}
	file := out.File
	if err != nil {
		a.Log.Error("namespace policies cannot be exported exactly; its file rejects every image they govern", "namespace", ns.Name, "err", err)
		a.failClosed.WithLabelValues(ns.Name).Set(1)
		file = out.FailClosed
	} else {
		a.failClosed.WithLabelValues(ns.Name).Set(0)
	}
	data, err := file.MarshalIndent()
	if err != nil {
		return nil, policyjson.Registries{}, err
	}
	return data, out.Registries, nil
}
