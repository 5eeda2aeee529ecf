package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/controller"
	caudit "github.com/signet-dev/signet/internal/controller/audit"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
)

// impactOptions are signet policy impact's flags.
type impactOptions struct {
	clusterSettings
	policies      []string
	scope         string
	output        string
	allowHTTP     bool
	imageFields   []string
	crossplaneReg string
	timeout       time.Duration

	// Parsed by Validate.
	extractor *workload.Extractor
}

// impactPageSize is how many objects one List call reads.
const impactPageSize = 500

// impactParallel is how many objects are decided at once (each decides its
// images with the Decider's own parallelism).
const impactParallel = 4

func newPolicyImpactCommand() *cobra.Command {
	o := &impactOptions{}
	cmd := &cobra.Command{
		Use:   "impact [--policy FILE|DIR...] [--kubeconfig FILE] [--namespace NS] [-o text|json]",
		Short: "Show what policies would change for the workloads running in a cluster, or what it denies today",
		Long: `policy impact reads the workloads of a cluster (Pods, the templates of
Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, ReplicationControllers
and unowned ReplicaSets, Crossplane packages, --image-field kinds) with your
credentials, decides their images the way admission would under the cluster's
ClusterImagePolicies and ImagePolicies, and again with the --policy files added
(a file's policy replaces the cluster's of the same kind, name and namespace),
and prints per namespace and object each image whose outcome changes (allowed,
warned, denied, undecided), with the reason, then a summary line. It writes
nothing. A running Pod's container is decided at the digest the kubelet
reported for it.

Without --policy it lists what the cluster denies, warns about or cannot decide
today.

Give the cluster settings signet serve runs with (--unmatched,
--exclude-namespace, --namespace-opt-in, --namespace-opt-in-label,
--image-field, --crossplane-registry, --trusted-root); serve's --namespace
is --signet-namespace here. Registry credentials are your Docker config plus
each object's pull secrets, when you may read them.

Exit codes: 0 nothing (newly) denied, 1 some image would be denied, 2 could not
decide (an image undecided, a kind that could not be read, bad input, no
cluster).

-o json prints one object: {"compared", "entries": [{"object", "path",
"image", "digest", "before", "outcome", "policies", "reasons"}], "summary":
{"objects", "images", "denied", "warned", "undecided", "allowed", "unread"}},
entries sorted by namespace, kind, name and path.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.addFlagsNamed(f, "signet-namespace")
	f.StringArrayVar(&o.policies, "policy", nil, "policy file or directory (YAML or JSON; repeatable) to add to the cluster's; Secrets and TrustRoots they name may be in the same files, else are read from the cluster")
	f.StringVar(&o.scope, "namespace", "", "read only this namespace's objects (default: every namespace, and cluster-scoped objects)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&o.allowHTTP, "allow-http-registry", false, "talk plain HTTP to registries (loopback test registries)")
	f.StringArrayVar(&o.imageFields, "image-field", nil, "the image fields of another kind, as signet serve's --image-field (repeatable)")
	f.StringVar(&o.crossplaneReg, "crossplane-registry", workload.DefaultCrossplaneRegistry, cli.CrossplaneRegistryUsage)
	f.DurationVar(&o.timeout, "timeout", 30*time.Minute, "give up (exit 2) after this long")
	return cmd
}

// Validate checks the flags.
func (o *impactOptions) Validate() error {
	if err := o.validate(); err != nil {
		return err
	}
	switch o.output {
	case "text", "json":
	default:
		return fmt.Errorf("--output must be text or json, not %q", o.output)
	}
	if o.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	if err := cli.ValidateCrossplaneRegistry(o.crossplaneReg); err != nil {
		return err
	}
	var err error
	o.extractor, err = newExtractor(o.imageFields, o.crossplaneReg)
	return err
}

func (o *impactOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	undecided := func(err error) error { return cli.WithExitCode(cli.ExitUndecided, err) }
	var set *manifests.Set
	if len(o.policies) > 0 {
		var err error
		if set, err = manifests.Load(o.policies...); err != nil {
			return undecided(fmt.Errorf("reading --policy: %w", err))
		}
		if len(set.Policies) == 0 {
			return undecided(fmt.Errorf("no ClusterImagePolicy or ImagePolicy found in --policy %v", o.policies))
		}
	}
	cl, host, err := o.client()
	if err != nil {
		return undecided(err)
	}
	trust := o.defaultTrust()
	clusterRes := &controller.APIResolver{Client: cl, Namespace: o.namespace, Trust: trust}
	cps, err := controller.CompilePolicies(ctx, cl, clusterRes)
	if err != nil {
		return undecided(fmt.Errorf("reading the policies of the cluster at %s: %w", host, err))
	}
	for _, cp := range cps {
		if cp.Policy.Err != nil {
			fmt.Fprintf(stderr, "warning: the cluster's %v (images it selects are denied)\n", cp.Policy.Err)
		}
	}
	cfg := o.policyConfig()
	current := controller.Policies(cps)
	before, err := policy.NewSnapshot(current, cfg)
	if err != nil {
		return undecided(err)
	}
	var after *policy.Snapshot
	if set != nil {
		res := filesThenCluster{files: manifests.Resolver{Set: set, DefaultNamespace: o.namespace, TrustRoot: local.TrustRoot, Default: trust}, cluster: clusterRes}
		var given []*policy.Policy
		for _, obj := range set.Policies {
			p := policy.CompileObject(ctx, obj, res)
			if p.Err != nil {
				fmt.Fprintf(stderr, "warning: %v (images it selects are denied)\n", p.Err)
			}
			given = append(given, p)
		}
		if after, err = policy.NewSnapshot(withPolicies(current, given), cfg); err != nil {
			return undecided(err)
		}
	}
	rc, err := local.RegistryClient(o.allowHTTP, nil)
	if err != nil {
		return undecided(err)
	}
	// One Decider and one cache for both evaluations: each (digest,
	// policy) is verified once, and a policy both snapshots hold once.
	dc := &check.Decider{Registry: rc, Cache: check.NewCache(o.timeout, o.timeout, 1<<20), Clients: &check.Clients{
		New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
			return local.RegistryClient(o.allowHTTP, nil, kc)
		},
	}}
	sc := &impactScan{
		auditor: &audit.Auditor{Decider: dc, Namespaces: &callerNamespaces{client: cl, warn: stderr}},
		before:  before, after: after,
		progress: newProgress(stderr),
	}
	err = sc.scan(ctx, cl, o.extractor, o.scope)
	sc.progress.done()
	if err != nil {
		return undecided(err)
	}
	im := audit.NewImpact(after != nil, sc.entries, sc.objects, sc.images, sc.unread)
	if err := writeImpact(stdout, o.output, im); err != nil {
		return undecided(err)
	}
	return impactExit(im)
}

// client connects to the cluster with the caller's credentials; host is
// where, for messages.
func (o *impactOptions) client() (cl client.Client, host string, err error) {
	restCfg, err := o.restConfig()
	if err != nil {
		return nil, "", fmt.Errorf("reading the kubeconfig: %w", err)
	}
	scheme, err := controller.Scheme()
	if err != nil {
		return nil, "", err
	}
	if cl, err = client.New(restCfg, client.Options{Scheme: scheme}); err != nil {
		return nil, "", fmt.Errorf("connecting to the cluster at %s: %w", restCfg.Host, err)
	}
	return cl, restCfg.Host, nil
}

// defaultTrust reads --trusted-root (or the embedded root) once, when a
// policy needs it.
func (o *impactOptions) defaultTrust() func() (root.TrustedMaterial, error) {
	var once sync.Once
	var tr *root.TrustedRoot
	var err error
	return func() (root.TrustedMaterial, error) {
		once.Do(func() { tr, err = local.TrustedRoot(o.trustedRoot) })
		if err != nil {
			return nil, err
		}
		return tr, nil
	}
}

// withPolicies is current with given added, each replacing the policy of
// the same kind, name and namespace.
func withPolicies(current, given []*policy.Policy) []*policy.Policy {
	replaced := map[string]bool{}
	for _, p := range given {
		replaced[p.Object.ID()] = true
	}
	out := make([]*policy.Policy, 0, len(current)+len(given))
	for _, p := range current {
		if !replaced[p.Object.ID()] {
			out = append(out, p)
		}
	}
	return append(out, given...)
}

// impactExit: 1 when an image is (newly) denied, else 2 when one is
// undecided or something could not be read, else 0.
func impactExit(im audit.Impact) error {
	switch {
	case im.Summary.Denied > 0:
		return cli.ExitCode(cli.ExitDenied)
	case im.Summary.Undecided > 0 || len(im.Summary.Unread) > 0:
		return cli.ExitCode(cli.ExitUndecided)
	}
	return nil
}

// impactScan reads every object of the kinds the cluster serves and
// collects the entries of their images.
type impactScan struct {
	auditor       *audit.Auditor
	before, after *policy.Snapshot
	progress      *progress

	mu      sync.Mutex
	entries []audit.Entry
	objects int
	images  int
	unread  []string
}

func (sc *impactScan) scan(ctx context.Context, cl client.Client, ex *workload.Extractor, scope string) error {
	kinds, _ := caudit.Kinds(cl.RESTMapper(), ex)
	for _, k := range kinds {
		if scope != "" && !k.Namespaced {
			continue
		}
		if err := sc.scanKind(ctx, cl, ex, k, scope); err != nil {
			return err
		}
	}
	return nil
}

// scanKind reads the objects of k, a page at a time. A kind the caller may
// not list is unread (said once on stderr by the caller's output).
func (sc *impactScan) scanKind(ctx context.Context, cl client.Client, ex *workload.Extractor, k caudit.Kind, scope string) error {
	token := ""
	for {
		var list unstructured.UnstructuredList
		list.SetGroupVersionKind(k.GVK.GroupVersion().WithKind(k.GVK.Kind + "List"))
		opts := []client.ListOption{client.Limit(impactPageSize), client.Continue(token)}
		if scope != "" {
			opts = append(opts, client.InNamespace(scope))
		}
		if err := cl.List(ctx, &list, opts...); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("listing %s: %w", k.Resource.GroupResource(), ctx.Err())
			}
			sc.unread = append(sc.unread, fmt.Sprintf("%s: %v", k.Resource.GroupResource(), err))
			return nil
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(impactParallel)
		for i := range list.Items {
			s, ok, err := caudit.SubjectOf(ex, k, &list.Items[i])
			if err != nil {
				sc.mu.Lock()
				sc.unread = append(sc.unread, err.Error())
				sc.mu.Unlock()
				continue
			}
			if !ok {
				continue
			}
			g.Go(func() error {
				sc.evaluate(gctx, s)
				return nil
			})
		}
		_ = g.Wait()
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("deciding %s: %w", k.Resource.GroupResource(), err)
		}
		if token = list.GetContinue(); token == "" {
			return nil
		}
	}
}

// evaluate decides s under the cluster's policies (and the given ones).
func (sc *impactScan) evaluate(ctx context.Context, s audit.Subject) {
	now := sc.auditor.Evaluate(ctx, sc.before, s)
	var entries []audit.Entry
	if sc.after == nil {
		entries = audit.Current(s.Object, now)
	} else {
		entries = audit.Compare(s.Object, now, sc.auditor.Evaluate(ctx, sc.after, s))
	}
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.entries = append(sc.entries, entries...)
	sc.objects++
	sc.images += len(s.Images)
	sc.progress.update(sc.objects, sc.images)
}

// progress writes a line of progress to stderr when it is a terminal.
type progress struct {
	w    io.Writer
	last time.Time
	on   bool
}

func newProgress(stderr io.Writer) *progress {
	f, ok := stderr.(*os.File)
	if !ok {
		return &progress{}
	}
	fi, err := f.Stat()
	return &progress{w: stderr, on: err == nil && fi.Mode()&os.ModeCharDevice != 0}
}

func (p *progress) update(objects, images int) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\rdecided %d objects (%d images)...", objects, images)
}

func (p *progress) done() {
	if p.on && !p.last.IsZero() {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
