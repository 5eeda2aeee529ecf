// Package controller keeps signet's policy snapshot in step with the
// cluster: it watches ClusterImagePolicy, ImagePolicy and Namespace objects
// (and reads the Secrets policies refer to), compiles a new immutable
// snapshot on every change and swaps it in atomically, and writes each
// policy's Ready condition.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// Scheme knows the kinds the controller reads.
func Scheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Controller watches policies and serves the current snapshot.
type Controller struct {
	// Namespace is where signet runs: secretRefs without a namespace look
	// here.
	Namespace string
	Config    policy.Config
	// Trust returns the default trusted material.
	Trust func() (root.TrustedMaterial, error)
	// TrustVersion, if set, names the default trusted material now (it
	// changes when a TUF refresh of the default root yields a new one);
	// otherwise Config.TrustVersion does.
	TrustVersion func() string
	// Metrics records TrustRoot refreshes; nil records nothing.
	Metrics *TrustRootMetrics
	Log     *slog.Logger

	trustRoots *trustRoots

	client client.Client
	cache  cache.Cache
	config *rest.Config
	leader atomic.Bool
	snap   atomic.Pointer[policy.Snapshot]
	kick   chan struct{}
}

// New connects to the cluster.
func New(cfg *rest.Config, c *Controller) (*Controller, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	c.client, c.cache, c.kick, c.config = cl, ca, make(chan struct{}, 1), cfg
	c.trustRoots = newTrustRoots(configMapReader(cl, c.Namespace), c.Metrics)
	c.trustRoots.loadCache = trustCacheReader(cl, c.Namespace)
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return c, nil
}

// Snapshot returns the current snapshot (nil until the first sync).
func (c *Controller) Snapshot() *policy.Snapshot { return c.snap.Load() }

// Labels implements admission.Namespaces from the informer cache.
func (c *Controller) Labels(ctx context.Context, name string) (map[string]string, error) {
	var ns corev1.Namespace
	if err := c.cache.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

// Run watches until ctx ends. It returns once the cache is synced and the
// first snapshot is built, running the rest in the background; errors
// after that are logged.
func (c *Controller) Run(ctx context.Context) error {
	// Namespaces are cached for their labels; a change to one needs no
	// new snapshot.
	watched := []client.Object{&v1alpha1.ClusterImagePolicy{}, &v1alpha1.ImagePolicy{}, &v1alpha1.TrustRoot{}}
	if err := StartWatches(ctx, c.cache, c.Log, c.trigger, watched, &corev1.Namespace{}); err != nil {
		return err
	}
	if err := c.rebuild(ctx); err != nil {
		return err
	}
	if err := c.elect(ctx, c.config); err != nil {
		return err
	}
	go c.loop(ctx)
	go c.trustLoop(ctx)
	return nil
}

// Refresh rebuilds the snapshot now (e.g. after a Secret changed).
func (c *Controller) Refresh() { c.trigger() }

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *Controller) loop(ctx context.Context) {
	// Secrets are read directly, not watched: re-read them periodically so
	// a rotated key takes effect without touching the policy.
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.kick:
		case <-tick.C:
		}
		// Coalesce bursts of events.
		time.Sleep(50 * time.Millisecond)
		select {
		case <-c.kick:
		default:
		}
		if err := c.rebuild(ctx); err != nil && ctx.Err() == nil {
			c.Log.Error("rebuilding the policy snapshot", "err", err)
		}
	}
}

// resolver reads Secrets through the API (uncached: signet has no reason to
// watch every Secret) and the default trust root.
type resolver struct {
	c *Controller
}

var _ policy.Resolver = resolver{}

func (r resolver) SecretKeys(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return ReadSecret(ctx, r.c.client, r.c.Namespace, namespace, name)
}

// ReadSecret reads a Secret's data by name, uncached, from namespace (or
// defaultNamespace when it is ""), for policy.Resolver implementations.
func ReadSecret(ctx context.Context, c client.Client, defaultNamespace, namespace, name string) (map[string][]byte, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, fmt.Errorf("reading the Secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}

func (r resolver) TrustedMaterial(_ context.Context, name string) (root.TrustedMaterial, error) {
	if name != "" {
		return r.c.trustRoots.material(name)
	}
	return r.c.Trust()
}

// CompiledPolicy is one policy object from the cache with its compiled
// form and its status, for the leader to write.
type CompiledPolicy struct {
	Object client.Object
	Status *v1alpha1.ImagePolicyStatus
	Policy *policy.Policy
}

// CompilePolicies lists the ClusterImagePolicies and ImagePolicies in r and
// compiles each with res (signet serve's controller and the node agent).
func CompilePolicies(ctx context.Context, r client.Reader, res policy.Resolver) ([]CompiledPolicy, error) {
	var cips v1alpha1.ClusterImagePolicyList
	if err := r.List(ctx, &cips); err != nil {
		return nil, err
	}
	var ips v1alpha1.ImagePolicyList
	if err := r.List(ctx, &ips); err != nil {
		return nil, err
	}
	out := make([]CompiledPolicy, 0, len(cips.Items)+len(ips.Items))
	for i := range cips.Items {
		o := &cips.Items[i]
		p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindClusterImagePolicy, Name: o.Name, Spec: o.Spec}, res)
		out = append(out, CompiledPolicy{o, &o.Status, p})
	}
	for i := range ips.Items {
		o := &ips.Items[i]
		p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindImagePolicy, Name: o.Name, Namespace: o.Namespace, Spec: o.Spec}, res)
		out = append(out, CompiledPolicy{o, &o.Status, p})
	}
	return out, nil
}

// Policies returns the compiled policies of cps.
func Policies(cps []CompiledPolicy) []*policy.Policy {
	out := make([]*policy.Policy, len(cps))
	for i, cp := range cps {
		out[i] = cp.Policy
	}
	return out
}

func (c *Controller) rebuild(ctx context.Context) error {
	// Trust roots first: policies naming one compile against its material.
	cfg, trustRoots, err := c.syncTrustRoots(ctx)
	if err != nil {
		return err
	}
	targets, err := CompilePolicies(ctx, c.cache, resolver{c: c})
	if err != nil {
		return err
	}
	compiled := Policies(targets)
	snap, err := policy.NewSnapshot(compiled, cfg)
	if err != nil {
		return err
	}
	c.snap.Store(snap)
	c.Log.Info("policy snapshot loaded", "policies", len(compiled))
	c.writeTrustRootStatus(ctx, trustRoots)

	if !c.leader.Load() {
		return nil // the leader writes status
	}
	for _, t := range targets {
		cond := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Loaded", Message: "the policy is enforced", ObservedGeneration: t.Object.GetGeneration()}
		if t.Policy.Err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Invalid", t.Policy.Err.Error()+"; images it selects are denied"
		}
		existing := meta.FindStatusCondition(t.Status.Conditions, "Ready")
		if existing != nil && existing.Status == cond.Status && existing.Reason == cond.Reason && existing.Message == cond.Message &&
			existing.ObservedGeneration == cond.ObservedGeneration && t.Status.ObservedGeneration == t.Object.GetGeneration() {
			continue
		}
		changed := existing == nil || existing.Status != cond.Status || existing.Message != cond.Message
		meta.SetStatusCondition(&t.Status.Conditions, cond)
		t.Status.ObservedGeneration = t.Object.GetGeneration()
		if err := c.client.Status().Update(ctx, t.Object); err != nil {
			c.Log.Warn("writing policy status", "policy", t.Policy.Object.ID(), "err", err)
			continue
		}
		if changed {
			c.event(ctx, t.Object, t.Policy.Object.Kind, cond)
		}
	}
	return nil
}

// event records a policy's new Ready condition as a Kubernetes Event on it
// (`kubectl describe` shows it), in the policy's namespace, or "default" for
// a cluster-scoped policy. Failing to record one is logged, never fatal.
func (c *Controller) event(ctx context.Context, obj client.Object, kind string, cond metav1.Condition) {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	typ := corev1.EventTypeNormal
	if cond.Status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: obj.GetName() + "."},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: cond.Reason, Message: cond.Message, Type: typ,
		Source:         corev1.EventSource{Component: "signet"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "signet.dev/controller", ReportingInstance: hostname(),
	}
	if err := c.client.Create(ctx, ev); err != nil {
		c.Log.Warn("recording an event", "object", obj.GetName(), "err", err)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// StartWatches starts ca's informers: a change to any watched object calls
// onChange; cached objects are only kept in the cache. It returns once
// every cache has synced; the informers run until ctx ends.
func StartWatches(ctx context.Context, ca cache.Cache, log *slog.Logger, onChange func(), watched []client.Object, cached ...client.Object) error {
	for _, obj := range append(append([]client.Object(nil), watched...), cached...) {
		inf, err := ca.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
		if !slices.Contains(watched, obj) {
			continue
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { onChange() },
			UpdateFunc: func(_, _ any) { onChange() },
			DeleteFunc: func(any) { onChange() },
		}); err != nil {
			return err
		}
	}
	go func() {
		if err := ca.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("policy watch stopped", "err", err)
		}
	}()
	if !ca.WaitForCacheSync(ctx) {
		return errors.New("policy caches did not sync")
	}
	return nil
}

// PullSecrets implements admission.Credentials: the named Secrets of the
// namespace, then the imagePullSecrets of the service account. A missing
// Secret is skipped, as the kubelet does; a missing service account means
// none.
func (c *Controller) PullSecrets(ctx context.Context, namespace string, names []string, serviceAccount string) ([]map[string][]byte, error) {
	if serviceAccount != "" {
		var sa corev1.ServiceAccount
		err := c.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: serviceAccount}, &sa)
		switch {
		case err == nil:
			for _, ref := range sa.ImagePullSecrets {
				names = append(names, ref.Name)
			}
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
		}
	}
	var out []map[string][]byte
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		var s corev1.Secret
		err := c.client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: n}, &s)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("reading the pull secret %s/%s: %w", namespace, n, err)
		}
		if s.Type == corev1.SecretTypeDockerConfigJson || s.Type == corev1.SecretTypeDockercfg {
			out = append(out, s.Data)
		}
	}
	return out, nil
}

func metaFor(namespace, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: namespace, Name: name}
}
