package controller

import (
	"context"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderLease is the name of the Lease replicas elect a leader with.
const LeaderLease = "signet-controller"

// elect runs leader election until ctx ends: every replica serves
// admission; only the leader writes policy status (what must run once).
func (c *Controller) elect(ctx context.Context, cfg *rest.Config) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	id, _ := os.Hostname()
	id += "-" + time.Now().Format("150405.000000")
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metaFor(c.Namespace, LeaderLease),
		Client:     cs.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: id},
	}
	le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            LeaderLease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				c.leader.Store(true)
				c.Log.Info("leading: writing policy status")
				c.trigger()
			},
			OnStoppedLeading: func() {
				c.leader.Store(false)
				c.Log.Info("no longer leading")
			},
		},
	})
	if err != nil {
		return err
	}
	go func() {
		for ctx.Err() == nil {
			le.Run(ctx) // returns when leadership is lost; stand again
		}
	}()
	return nil
}
