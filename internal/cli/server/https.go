package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/signet-dev/signet/internal/admission"
	"github.com/signet-dev/signet/internal/listener"
)

// routes are signet serve's HTTPS endpoints: the admission handlers bounded
// by servingOptions.admission, the probes, and /metrics unless
// --metrics-listen serves it elsewhere.
// Once stopping is closed, /readyz answers 503 and every answer closes its
// connection (see serveUntilDone).
func (o *serveOptions) routes(h *admission.Handler, ready, stopping <-chan struct{}, metrics *serveMetrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/validate", o.serving.admission(h.Validate()))
	mux.Handle("/mutate", o.serving.admission(h.Mutate()))
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", readyz(ready, stopping, "policies are not loaded yet"))
	if o.metricsListen == "" {
		mux.Handle("/metrics", o.serving.metrics(metrics.registry))
	}
	return closeWhenStopping(mux, stopping)
}

// closeWhenStopping makes every answer given once stopping is closed end
// its connection ("Connection: close"), so a client sends its next request
// on a new connection, which the load balancer gives to another replica,
// instead of on a kept-alive one this replica will close: a request written
// onto a connection the server is closing fails, and the API server does
// not send an admission request again.
func closeWhenStopping(next http.Handler, stopping <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-stopping:
			w.Header().Set("Connection", "close")
		default:
		}
		next.ServeHTTP(w, r)
	})
}

// https opens the listener (--listen, --max-connections) and makes the
// server for handler with the listener's bounds, HTTP/1.1 only unless
// --enable-http2.
func (o *serveOptions) https(ctx context.Context, handler http.Handler, tlsCfg *tls.Config) (*http.Server, net.Listener, error) {
	srv := listener.NewServer(handler, o.serving.limits(o.timeout))
	srv.TLSConfig = tlsCfg
	if !o.enableHTTP2 {
		tlsCfg.NextProtos = []string{"http/1.1"}
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	ln, err := listener.Listen(ctx, o.listen, o.serving.maxConnections)
	if err != nil {
		return nil, nil, err
	}
	return srv, ln, nil
}

// metricsMaxConns bounds the connections open at once to --metrics-listen:
// a few scrapers, each with a kept-alive connection.
const metricsMaxConns = 16

// metricsHTTP opens --metrics-listen and makes its plain-HTTP server of
// /metrics alone, bounded as the HTTPS listener is (header size and
// timeouts, listener.Limits' defaults) with at most metricsMaxConns
// connections and metricsInFlight scrapes at once. It returns a nil server
// without --metrics-listen.
func (o *serveOptions) metricsHTTP(ctx context.Context, metrics *serveMetrics) (*http.Server, net.Listener, error) {
	if o.metricsListen == "" {
		return nil, nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", o.serving.metrics(metrics.registry))
	srv := listener.NewServer(mux, listener.Limits{MaxConns: metricsMaxConns, MaxHeaderBytes: 16 << 10, ReadHeaderTimeout: 5 * time.Second})
	ln, err := listener.Listen(ctx, o.metricsListen, metricsMaxConns)
	if err != nil {
		return nil, nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	return srv, ln, nil
}

// stopPlan is how a server stops when serve is told to (SIGTERM), as a
// replica behind a Service must: for delay it goes on serving every
// connection it is given, while /readyz answers 503 and the endpoints (or
// any load balancer probing /readyz) take it out of rotation, and its
// answers close their connections; then it stops accepting and gives the
// requests in flight up to grace to finish (a decision takes at most
// --decision-timeout). Requests still running after grace are cut.
type stopPlan struct {
	delay, grace time.Duration
}

// serveUntilDone runs serve (srv's Serve or ServeTLS) until ctx ends, then
// stops as plan says; the delay applies only when signal ended (the process
// was told to stop), not when another server failed.
func serveUntilDone(ctx, signal context.Context, srv *http.Server, serve func() error, plan stopPlan) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	if signal.Err() != nil && plan.delay > 0 {
		select {
		case <-time.After(plan.delay):
		case err := <-errc:
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), plan.grace)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		_ = srv.Close()
		return fmt.Errorf("requests still in flight %s after the listener closed were cut: %w", plan.grace, err)
	}
	return nil
}
