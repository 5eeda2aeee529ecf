package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/pflag"
	"golang.org/x/sync/semaphore"

	"github.com/signet-dev/signet/internal/admission"
	"github.com/signet-dev/signet/internal/listener"
	"github.com/signet-dev/signet/internal/local"
)

// Bounds of signet serve's listener. With the defaults, request bodies hold
// at most 64 MiB at once (maxInFlightBytes), against the chart's 512Mi
// memory limit; a single review may be up to admission.MaxBodyBytes (7 MiB).
const (
	defaultMaxInFlight      = 64
	defaultMaxInFlightBytes = 64 << 20
	defaultMaxConnections   = 512
	// metricsInFlight bounds concurrent /metrics scrapes.
	metricsInFlight = 4
)

// servingOptions are the bounds and client authentication of signet
// serve's HTTPS listener.
type servingOptions struct {
	maxInFlight      int
	maxInFlightBytes int64
	maxConnections   int
	clientCAFile     string
}

func (o *servingOptions) AddFlags(f *pflag.FlagSet) {
	f.IntVar(&o.maxInFlight, "max-in-flight", defaultMaxInFlight, "most admission requests (/validate, /mutate) served at once; more wait up to 2s for a turn, then are answered 503, which the API server treats as a webhook failure (failurePolicy)")
	f.Int64Var(&o.maxInFlightBytes, "max-in-flight-bytes", defaultMaxInFlightBytes, "most bytes of admission request bodies held at once, taken as they arrive; a request that needs more is answered 503 at once. Keep it well below the container's memory limit")
	f.IntVar(&o.maxConnections, "max-connections", defaultMaxConnections, "most connections open at once; more are closed as soon as they are accepted")
	f.StringVar(&o.clientCAFile, "client-ca-file", "", "PEM CA bundle: /validate and /mutate then require a client certificate signed by it (configure the API server to present one); /healthz, /readyz and /metrics do not")
}

func (o *servingOptions) Validate() error {
	if o.maxInFlight < 1 {
		return fmt.Errorf("--max-in-flight %d: must be at least 1", o.maxInFlight)
	}
	if o.maxInFlightBytes < admission.MaxBodyBytes+admission.BodyChunk {
		return fmt.Errorf("--max-in-flight-bytes %d: must be at least %d, so that one review of the largest size fits", o.maxInFlightBytes, admission.MaxBodyBytes+admission.BodyChunk)
	}
	if o.maxConnections < 1 {
		return fmt.Errorf("--max-connections %d: must be at least 1", o.maxConnections)
	}
	return nil
}

// limits are the listener's bounds. The headers must arrive within 5s and
// the whole request within 10s (the API server sends it at once, and waits
// 10s by default, 30s at most, for the answer); the answer may take the
// decision's time.
func (o *servingOptions) limits(decisionTimeout time.Duration) listener.Limits {
	return listener.Limits{
		MaxConns:          o.maxConnections,
		MaxHeaderBytes:    16 << 10,
		MaxBodyBytes:      admission.MaxBodyBytes + 1, // the handler tells "too large" from the extra byte
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      decisionTimeout + 10*time.Second,
		IdleTimeout:       2 * time.Minute,
	}
}

// inFlightWait is how long an admission request over --max-in-flight waits
// for a turn before it is answered 503: long enough for a burst (a
// Deployment of many replicas) to be served, short against the API
// server's webhook timeout (10 s by default).
const inFlightWait = 2 * time.Second

// bodyBudget is the admission handler's budget of body bytes.
func (o *servingOptions) bodyBudget() *semaphore.Weighted {
	return semaphore.NewWeighted(o.maxInFlightBytes)
}

// admission bounds an admission handler: at most --max-in-flight at once
// and, with --client-ca-file, only for clients with a verified certificate.
func (o *servingOptions) admission(h http.Handler) http.Handler {
	h = listener.LimitInFlight(h, o.maxInFlight, inFlightWait)
	if o.clientCAFile != "" {
		h = requireClientCert(h)
	}
	return h
}

// metrics serves /metrics with at most metricsInFlight scrapes at once.
func (o *servingOptions) metrics(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: metricsInFlight})
}

// clientAuth sets cfg to ask for client certificates signed by
// --client-ca-file (the admission handlers require one; the probes and
// /metrics are served without).
func (o *servingOptions) clientAuth(cfg *tls.Config) error {
	if o.clientCAFile == "" {
		return nil
	}
	data, err := local.ReadFile(o.clientCAFile, 1<<20)
	if err != nil {
		return fmt.Errorf("--client-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return fmt.Errorf("--client-ca-file %s: no PEM certificate in it", o.clientCAFile)
	}
	cfg.ClientCAs = pool
	cfg.ClientAuth = tls.VerifyClientCertIfGiven
	return nil
}

// errNoClientCert is what a request to an admission path without a
// verified client certificate is told.
var errNoClientCert = errors.New("a client certificate signed by --client-ca-file is required")

// requireClientCert refuses requests without a verified client certificate
// (the TLS handshake verified any that was given).
func requireClientCert(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, errNoClientCert.Error(), http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
