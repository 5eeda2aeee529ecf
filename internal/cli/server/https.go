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
func (o *serveOptions) routes(h *admission.Handler, ready <-chan struct{}, metrics *serveMetrics) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/validate", o.serving.admission(h.Validate()))
	mux.Handle("/mutate", o.serving.admission(h.Mutate()))
	mux.HandleFunc("/healthz", healthz)
	mux.HandleFunc("/readyz", readyz(ready, "policies are not loaded yet"))
	if o.metricsListen == "" {
		mux.Handle("/metrics", o.serving.metrics(metrics.registry))
	}
	return mux
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

// serveUntilDone runs serve (srv's Serve or ServeTLS) until ctx ends, then
// gives the requests in flight up to 10 s to finish.
func serveUntilDone(ctx context.Context, srv *http.Server, serve func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return nil
	case err := <-errc:
		return err
	}
}
