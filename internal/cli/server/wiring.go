package server

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/client-go/rest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

// run is signet serve's start-up, in order. Everything a wrong flag, file
// or cluster can make fail is built first, and nothing runs until all of
// it is: the default trust root, the cluster connection, the policies, the
// admission handler, the audit, the serving certificate, the listeners
// (HTTPS, and --metrics-listen's). Then the background work starts (trust
// root refreshes, the policy controller, the audit, certificate rotation)
// and both are
// served until ctx ends. /readyz answers 200 once policies.ready is
// closed: at once for files, when the controller has loaded the cluster's
// policies otherwise.
func (o *serveOptions) run(ctx context.Context, logOut io.Writer) error {
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: o.level}))
	// controller-runtime's informers log through logr: into the same log.
	ctrllog.SetLogger(logr.FromSlogHandler(log.Handler()))
	metrics := newServeMetrics()
	defaultRoot, err := newDefaultTrust(o.trustedRoot, o.tuf, metrics.trustRoots)
	if err != nil {
		return err
	}
	var cluster *rest.Config
	if o.needsCluster() {
		if cluster, err = o.restConfig(); err != nil {
			return err
		}
	}
	policies, err := o.loadPolicies(ctx, log, cluster, defaultRoot, metrics)
	if err != nil {
		return err
	}
	handler, err := o.admissionHandler(log, policies, metrics)
	if err != nil {
		return err
	}
	scanner, err := o.audit(log, cluster, policies, handler, metrics)
	if err != nil {
		return err
	}
	tlsCfg, certs, err := o.servingTLS(ctx, log, cluster)
	if err != nil {
		return err
	}
	srv, ln, err := o.https(ctx, o.routes(handler, policies.ready, ctx.Done(), metrics), tlsCfg)
	if err != nil {
		return err
	}
	msrv, mln, err := o.metricsHTTP(ctx, metrics)
	if err != nil {
		ln.Close()
		return err
	}

	go policies.run(ctx)
	if scanner != nil {
		go scanner.Run(ctx)
	}
	if certs != nil {
		go certs.Run(ctx)
	}
	// Either server failing stops the other, and serve. Told to stop, both
	// go on serving for --shutdown-delay (the Lease, the controller and the
	// audit stop at once), then drain.
	plan := stopPlan{delay: o.shutdownDelay, grace: o.timeout + drainMargin}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return serveUntilDone(gctx, ctx, srv, func() error { return srv.ServeTLS(ln, "", "") }, plan)
	})
	if msrv != nil {
		log.Info("serving metrics", "address", mln.Addr().String())
		g.Go(func() error { return serveUntilDone(gctx, ctx, msrv, func() error { return msrv.Serve(mln) }, plan) })
	}
	log.Info("serving", "address", ln.Addr().String(), "policies", o.policiesSource())
	stopping := context.AfterFunc(ctx, func() {
		log.Info("stopping: /readyz answers 503 and answers close their connections until the delay ends; then the listener closes and requests in flight finish",
			"delay", o.shutdownDelay.String(), "drain", plan.grace.String())
	})
	err = g.Wait()
	stopping() // a server failed: not told to stop
	log.Info("stopped")
	return err
}

// drainMargin is what the drain gives a request beyond --decision-timeout:
// reading it and writing its answer.
const drainMargin = 2 * time.Second
