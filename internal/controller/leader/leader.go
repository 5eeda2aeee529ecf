// Package leader elects the replica of signet serve that does what must
// be done once: write the status of policies and TrustRoots, save the TUF
// state of remote TrustRoots. The replicas hold an election through the
// Lease signet-controller in signet's namespace (client-go's leader
// election: a 15 s lease, renewed within 10 s, tried every 2 s, released
// when the process stops). Every replica keeps serving admission whether it
// leads or not, and one that loses the Lease stands again.
//
// controller-runtime's manager runs this same elector, but ends every
// runnable it manages when the Lease is lost (the process is meant to
// exit); a signet replica must keep serving admission instead.
package leader

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// Lease is the name of the Lease replicas elect a leader with.
const Lease = "signet-controller"

// Election is one replica's part in the election.
type Election struct {
	elector *leaderelection.LeaderElector
	leading atomic.Bool
}

// New prepares this replica's part in the election held in namespace;
// onStart is called each time it starts leading. Nothing runs until Run.
func New(cfg *rest.Config, namespace string, log *slog.Logger, onStart func()) (*Election, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	id, _ := os.Hostname()
	id += "-" + time.Now().Format("150405.000000")
	e := &Election{}
	e.elector, err = leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: namespace, Name: Lease},
			Client:     cs.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: id},
		},
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Name:            Lease,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				e.leading.Store(true)
				log.Info("leading: writing policy status")
				onStart()
			},
			OnStoppedLeading: func() {
				e.leading.Store(false)
				log.Info("no longer leading")
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Run stands for election until ctx ends, and again each time the Lease
// is lost.
func (e *Election) Run(ctx context.Context) {
	for ctx.Err() == nil {
		e.elector.Run(ctx) // returns when leadership is lost; stand again
	}
}

// Leading reports whether this replica holds the Lease now.
func (e *Election) Leading() bool { return e.leading.Load() }
