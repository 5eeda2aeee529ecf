// Package controller keeps signet serve's policy snapshot in step with the
// cluster. It watches ClusterImagePolicy, ImagePolicy, TrustRoot and
// Namespace objects (and reads the Secrets and ConfigMaps policies and
// TrustRoots name, by name, never watched), compiles a new immutable
// snapshot on every change and swaps it in atomically, so that admission
// never waits for a lock.
//
// One noun per file:
//
//   - controller.go: the Controller, its start-up and readiness, and the loop
//     that rebuilds the snapshot on every change (and every minute, for
//     rotated Secrets).
//   - policies.go: policy objects compiled into the snapshot; their Ready
//     condition and Events (the leader writes them).
//   - trustroot*.go: TrustRoot material (resolved, refreshed in the
//     background, saved for restarts and the node agent), its status and
//     metrics.
//   - watch.go: the kinds signet reads and the informers that call for a
//     rebuild.
//   - namespaces.go: namespace labels and pull secrets for the admission
//     handler.
//
// Package leader elects the replica that writes status; package servingcert
// keeps the serving certificate. The node agent builds on Scheme,
// StartWatches, CompilePolicies, ReadSecret and SavedRemote.
package controller

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/controller/leader"
	"github.com/signet-dev/signet/internal/policy"
)

// trustRootsReadyWait bounds how long readiness waits for the first fetch
// of remote TrustRoots: an unreachable mirror must not keep signet unready
// (the policies that name it deny what they select meanwhile).
const trustRootsReadyWait = 30 * time.Second

// Controller watches policies and serves the current snapshot.
type Controller struct {
	// Namespace is where signet runs: secretRefs without a namespace look
	// here.
	Namespace string
	// FallbackServiceAccount, if set, names a service account in
	// Namespace whose imagePullSecrets are tried after the matching
	// policies' pull secrets (see PullSecrets).
	FallbackServiceAccount string
	Config                 policy.Config
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
	leader *leader.Election
	snap   atomic.Pointer[policy.Snapshot]
	kick   chan struct{}
	ready  chan struct{}
}

// New connects to the cluster. Nothing is read or watched until Run.
func New(cfg *rest.Config, c *Controller) (*Controller, error) {
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	ca, err := cache.New(cfg, cache.Options{Scheme: scheme, ByObject: map[client.Object]cache.ByObject{
		// Service accounts are cached for their imagePullSecrets alone.
		&corev1.ServiceAccount{}: {Transform: func(o any) (any, error) {
			if sa, ok := o.(*corev1.ServiceAccount); ok {
				return &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: sa.Name, Namespace: sa.Namespace, UID: sa.UID, ResourceVersion: sa.ResourceVersion},
					ImagePullSecrets: sa.ImagePullSecrets}, nil
			}
			return o, nil
		}},
	}})
	if err != nil {
		return nil, err
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	c.client, c.cache, c.kick, c.ready = cl, ca, make(chan struct{}, 1), make(chan struct{})
	c.trustRoots = newTrustRoots(configMapReader(cl, c.Namespace), c.Metrics)
	c.trustRoots.loadCache = trustCacheReader(cl, c.Namespace)
	// A new leader writes every status at once.
	if c.leader, err = leader.New(cfg, c.Namespace, c.Log, c.trigger); err != nil {
		return nil, err
	}
	return c, nil
}

// Leading reports whether this replica leads now (it writes status, and
// runs the audit).
func (c *Controller) Leading() bool { return c.leader.Leading() }

// Snapshot returns the current snapshot (nil until the first sync).
func (c *Controller) Snapshot() *policy.Snapshot { return c.snap.Load() }

// Ready is closed once the caches have synced, the first snapshot is built
// and every remote TrustRoot has had its first fetch, successful or not
// (or 30 s have passed: those are fetched in the background).
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// Run watches the cluster and keeps the snapshot current until ctx ends:
// it starts the informers and waits for them to sync, builds the first
// snapshot, stands for leader election, fetches remote TrustRoots in the
// background, then rebuilds the snapshot on every change. It returns an
// error only when it cannot start (the caches do not sync, or the first
// snapshot cannot be built); errors after that are logged.
func (c *Controller) Run(ctx context.Context) error {
	// Namespaces are cached for their labels, service accounts for their
	// pull secrets; a change to one needs no new snapshot.
	watched := []client.Object{&v1alpha1.ClusterImagePolicy{}, &v1alpha1.ImagePolicy{}, &v1alpha1.TrustRoot{}}
	if err := StartWatches(ctx, c.cache, c.Log, c.trigger, watched, &corev1.Namespace{}, &corev1.ServiceAccount{}); err != nil {
		return err
	}
	if err := c.rebuild(ctx); err != nil {
		return err
	}
	go c.leader.Run(ctx)
	go c.trustLoop(ctx)
	go c.readyWhenTrustRootsSettle(ctx)
	c.loop(ctx)
	return nil
}

// readyWhenTrustRootsSettle closes c.ready once every remote TrustRoot has
// had its first fetch, or after trustRootsReadyWait.
func (c *Controller) readyWhenTrustRootsSettle(ctx context.Context) {
	wait := time.NewTimer(trustRootsReadyWait)
	defer wait.Stop()
	select {
	case <-c.trustRoots.firstFetched():
	case <-wait.C:
		c.Log.Warn("ready with remote TrustRoots not fetched yet; policies naming them deny what they select until they are", "waited", trustRootsReadyWait.String())
	case <-ctx.Done():
		return
	}
	close(c.ready)
}

// Refresh rebuilds the snapshot now (e.g. after a Secret changed).
func (c *Controller) Refresh() { c.trigger() }

func (c *Controller) trigger() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// loop rebuilds the snapshot after every change (a burst of events makes
// one rebuild) and every minute, until ctx ends.
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
