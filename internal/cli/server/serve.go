package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/admission"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/listener"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
)

// trustReadyWait bounds how long /readyz waits for remote TrustRoots'
// first fetch.
const trustReadyWait = 30 * time.Second

type serveOptions struct {
	logLevel       string
	listen         string
	tlsCertDir     string
	tlsHosts       []string
	caOut          string
	policies       string
	validatingName string
	mutatingName   string
	allowHTTP      bool
	timeout        time.Duration
	cacheTTL       time.Duration
	cacheNegTTL    time.Duration
	cacheSize      int
	enableHTTP2    bool
	imageFields    []string
	crossplaneReg  string
	tlsSecret      string
	certValidity   time.Duration
	tuf            tufOptions
	serving        servingOptions
	clusterSettings
}

func newServeCommand() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook (validate and mutate) with its policy controller",
		Long: `serve runs signet's admission webhook over HTTPS:

  /validate  ValidatingAdmissionWebhook: deny images that do not meet policy
  /mutate    MutatingAdmissionWebhook: pin tags to the verified digest
  /healthz   alive
  /readyz    ready once policies (and trust roots) are loaded
  /metrics   Prometheus metrics

Policies come from the cluster (ClusterImagePolicy and ImagePolicy objects,
watched; in-cluster configuration or --kubeconfig) or, with --policies DIR,
from files, without a cluster.

Without --tls-cert-dir, serve makes its own CA and serving certificate for
--tls-host names, writes the CA to --ca-out if given, and injects it into the
webhook configurations named by --validating-webhook / --mutating-webhook.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
			return o.run(cmd.Context(), cmd.ErrOrStderr())
		},
	}
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&o.listen, "listen", ":8443", "address to serve HTTPS on")
	f.StringVar(&o.tlsCertDir, "tls-cert-dir", "", "directory with tls.crt and tls.key (default: a self-generated certificate)")
	f.StringArrayVar(&o.tlsHosts, "tls-host", []string{"localhost", "127.0.0.1", "signet-webhook.signet-system.svc"}, "DNS name or IP of the self-generated certificate (repeatable)")
	f.StringVar(&o.tlsSecret, "tls-secret", "", "keep the self-generated certificate in this Secret of --namespace, shared by every replica and rotated before expiry (needs a cluster)")
	f.DurationVar(&o.certValidity, "cert-validity", 365*24*time.Hour, "validity of self-generated certificates; with --tls-secret they are rotated after two thirds of it")
	f.StringVar(&o.caOut, "ca-out", "", "write the self-generated CA certificate (PEM) to this file")
	f.StringVar(&o.policies, "policies", "", "load policies from this file or directory instead of the cluster")
	f.StringVar(&o.validatingName, "validating-webhook", "", "ValidatingWebhookConfiguration to inject the self-generated CA into")
	f.StringVar(&o.mutatingName, "mutating-webhook", "", "MutatingWebhookConfiguration to inject the self-generated CA into")
	o.tuf.AddFlags(f)
	o.serving.AddFlags(f)
	f.BoolVar(&o.allowHTTP, "allow-http-registry", false, "talk plain HTTP to registries (loopback test registries)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug (also every plain allow), info (denials, warnings, changes), warn or error")
	f.DurationVar(&o.timeout, "decision-timeout", 20*time.Second, "deadline of one admission decision; keep it below the webhook's timeoutSeconds")
	f.DurationVar(&o.cacheTTL, "cache-ttl", 10*time.Minute, "how long a verified result is reused")
	f.DurationVar(&o.cacheNegTTL, "cache-negative-ttl", 30*time.Second, "how long a definite denial is reused")
	f.IntVar(&o.cacheSize, "cache-size", 100000, "most cached results")
	f.StringArrayVar(&o.imageFields, "image-field", nil, "declare the image fields of another kind, KIND.GROUP=PATH[,PATH...] where a path like spec.steps[].image walks lists, e.g. Task.tekton.dev=spec.steps[].image (repeatable; add the kind to the webhook rules too)")
	f.StringVar(&o.crossplaneReg, "crossplane-registry", workload.DefaultCrossplaneRegistry, cli.CrossplaneRegistryUsage)
	f.BoolVar(&o.enableHTTP2, "enable-http2", false, "serve HTTP/2 (off by default: HTTP/2 rapid-reset and stream exhaustion attacks)")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (o *serveOptions) Validate() error {
	if err := new(slog.Level).UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if err := o.tuf.Validate(o.trustedRoot); err != nil {
		return err
	}
	if err := o.serving.Validate(); err != nil {
		return err
	}
	if o.timeout <= 0 || o.timeout > 29*time.Second {
		return errors.New("--decision-timeout must be positive and below 30s, the longest webhook timeout")
	}
	if o.tlsSecret != "" && o.tlsCertDir != "" {
		return errors.New("give --tls-secret or --tls-cert-dir, not both")
	}
	if o.certValidity < 3*time.Second {
		return errors.New("--cert-validity is too short")
	}
	if err := cli.ValidateCrossplaneRegistry(o.crossplaneReg); err != nil {
		return err
	}
	if o.policies != "" && (o.validatingName != "" || o.mutatingName != "" || o.tlsSecret != "") && o.kubeconfig == "" {
		return errors.New("--validating-webhook/--mutating-webhook need a cluster: give --kubeconfig")
	}
	return nil
}

func (o *serveOptions) run(ctx context.Context, logOut io.Writer) error {
	var level slog.Level
	_ = level.UnmarshalText([]byte(o.logLevel)) // checked by Validate
	log := slog.New(slog.NewJSONHandler(logOut, &slog.HandlerOptions{Level: level}))
	metrics := newServeMetrics()

	trustMetrics := controller.NewTrustRootMetrics(metrics.registry)
	defaultRoot, err := newDefaultTrust(o.trustedRoot, o.tuf, trustMetrics)
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	trustFn, trustVersion := defaultRoot.Material, defaultRoot.Version()
	excluded := append([]string{o.namespace}, o.excluded...)
	cfg := policy.Config{Unmatched: o.unmatched, ExcludedNamespaces: excluded, NamespaceOptIn: o.optIn, TrustVersion: trustVersion}

	rt := metrics.transport(registry.NewTransport())
	rc, err := cli.NewRegistryClientWith(o.allowHTTP, rt)
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	custom, err := parseImageFields(o.imageFields)
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	opts := []workload.Option{workload.CrossplaneRegistry(o.crossplaneReg)}
	for _, c := range custom {
		opts = append(opts, c)
	}
	ex, err := workload.NewExtractor(opts...)
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	cache := check.NewCache(o.cacheTTL, o.cacheNegTTL, o.cacheSize)
	h := &admission.Handler{
		Decider: &check.Decider{Registry: rc, Cache: cache, Clients: &check.Clients{
			New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
				return cli.NewRegistryClientWith(o.allowHTTP, rt, kc)
			},
		}},
		Extractor:  ex,
		Timeout:    o.timeout,
		Log:        log,
		Observe:    metrics.observe,
		BodyBudget: o.serving.bodyBudget(),
	}
	metrics.cache = cache
	// Registry hosts are labelled by name only when a policy names them.
	metrics.knownHost = func(host string) bool {
		if h.Snapshot == nil { // set below, before anything is served
			return false
		}
		snap := h.Snapshot()
		return snap != nil && snap.KnownHost(host)
	}

	var ready atomic.Bool
	if o.policies != "" {
		snap, err := loadPolicyFiles(ctx, o.policies, cfg, trustFn)
		if err != nil {
			return cli.WithExitCode(cli.ExitUndecided, err)
		}
		var current atomic.Pointer[policy.Snapshot]
		current.Store(snap)
		h.Snapshot = current.Load
		ready.Store(true)
		// A new default root (--tuf) recompiles the files.
		go defaultRoot.Run(ctx, log, func() {
			c := cfg
			c.TrustVersion = defaultRoot.Version()
			if snap, err := loadPolicyFiles(ctx, o.policies, c, trustFn); err == nil {
				current.Store(snap)
			} else {
				log.Error("recompiling the policy files after a trusted root refresh", "err", err)
			}
		})
	}

	var cert tls.Certificate
	var caPEM []byte
	if o.tlsSecret == "" {
		if cert, caPEM, err = o.certificate(); err != nil {
			return cli.WithExitCode(cli.ExitUndecided, err)
		}
		if o.caOut != "" && caPEM != nil {
			if err := os.WriteFile(o.caOut, caPEM, 0o644); err != nil { //nolint:gosec // G306: a CA certificate is public; other tools read it
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
		}
	}
	var certs *controller.CertManager

	if o.policies == "" || o.validatingName != "" || o.mutatingName != "" || o.tlsSecret != "" {
		restCfg, err := o.restConfig()
		if err != nil {
			return cli.WithExitCode(cli.ExitUndecided, err)
		}
		if o.tlsSecret != "" {
			certs = &controller.CertManager{Config: restCfg, Namespace: o.namespace, SecretName: o.tlsSecret, Hosts: o.tlsHosts,
				Validity: o.certValidity, Validating: o.validatingName, Mutating: o.mutatingName, CAFile: o.caOut, Log: log}
			if err := certs.Start(ctx); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, fmt.Errorf("serving certificate: %w", err))
			}
		}
		if caPEM != nil && (o.validatingName != "" || o.mutatingName != "") {
			if err := controller.InjectCABundle(ctx, restCfg, o.validatingName, o.mutatingName, caPEM); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, fmt.Errorf("injecting the CA bundle: %w", err))
			}
		}
		if o.policies == "" {
			ctl, err := controller.New(restCfg, &controller.Controller{Namespace: o.namespace, Config: cfg, Trust: trustFn, Log: log,
				TrustVersion: defaultRoot.Version, Metrics: trustMetrics})
			if err != nil {
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
			go defaultRoot.Run(ctx, log, ctl.Refresh)
			h.Snapshot = ctl.Snapshot
			h.Namespaces = ctl
			h.Credentials = ctl
			go func() {
				if err := ctl.Run(ctx); err != nil && ctx.Err() == nil {
					log.Error("policy controller failed", "err", err)
					return
				}
				// Remote TrustRoots are fetched in the background: wait for
				// their first attempt, but not for ever (an unreachable mirror
				// must not keep signet unready; its policies fail closed).
				for deadline := time.Now().Add(trustReadyWait); !ctl.TrustRootsSettled() && time.Now().Before(deadline) && ctx.Err() == nil; {
					time.Sleep(100 * time.Millisecond)
				}
				ready.Store(true)
			}()
		}
	}

	mux := http.NewServeMux()
	mux.Handle("/validate", o.serving.admission(h.Validate()))
	mux.Handle("/mutate", o.serving.admission(h.Mutate()))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "policies are not loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("/metrics", o.serving.metrics(metrics.registry))

	tlsCfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if certs != nil {
		tlsCfg = &tls.Config{GetCertificate: certs.GetCertificate, MinVersion: tls.VersionTLS12}
	}
	if !o.enableHTTP2 {
		tlsCfg.NextProtos = []string{"http/1.1"}
	}
	if err := o.serving.clientAuth(tlsCfg); err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	srv := listener.NewServer(mux, o.serving.limits(o.timeout))
	srv.TLSConfig = tlsCfg
	if !o.enableHTTP2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	ln, err := listener.Listen(ctx, o.listen, o.serving.maxConnections)
	if err != nil {
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
	log.Info("serving", "address", ln.Addr().String(), "policies", o.policiesSource())
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return nil
	case err := <-errc:
		return cli.WithExitCode(cli.ExitUndecided, err)
	}
}

func (o *serveOptions) policiesSource() string {
	if o.policies != "" {
		return o.policies
	}
	return "cluster"
}

func (o *serveOptions) certificate() (tls.Certificate, []byte, error) {
	if o.tlsCertDir != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(o.tlsCertDir, "tls.crt"), filepath.Join(o.tlsCertDir, "tls.key"))
		return cert, nil, err
	}
	sc, err := controller.NewServingCert(o.tlsHosts, o.certValidity)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return sc.Cert, sc.CAPEM, nil
}

func loadPolicyFiles(ctx context.Context, path string, cfg policy.Config, trustFn func() (root.TrustedMaterial, error)) (*policy.Snapshot, error) {
	set, err := manifests.Load(path)
	if err != nil {
		return nil, err
	}
	res := manifests.Resolver{Set: set, Default: trustFn, TrustRoot: cli.FileTrustRoot}
	var compiled []*policy.Policy
	var invalid []string
	for _, obj := range set.Policies {
		p := policy.CompileObject(ctx, obj, res)
		if p.Err != nil {
			invalid = append(invalid, p.Err.Error())
		}
		compiled = append(compiled, p)
	}
	if len(invalid) > 0 {
		return nil, fmt.Errorf("invalid policies in %s:\n%s", path, strings.Join(invalid, "\n"))
	}
	return policy.NewSnapshot(compiled, cfg)
}

// serveMetrics are the Prometheus metrics of signet serve. Every label
// takes its values from a bounded set: kinds from those signet knows
// (admission.Handler.Observe), decisions allowed or denied, registry hosts
// from those a policy names (knownHost), else "other".
type serveMetrics struct {
	registry  *prometheus.Registry
	latency   *prometheus.HistogramVec
	requests  *prometheus.CounterVec
	cache     *check.Cache
	knownHost func(host string) bool
}

func newServeMetrics() *serveMetrics {
	m := &serveMetrics{registry: prometheus.NewRegistry()}
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_admission_duration_seconds",
		Help:    "Time to answer an admission request, by object kind and decision.",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30},
	}, []string{"kind", "decision"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_registry_requests_total",
		Help: "Requests to registries, by registry host (\"other\" for a host no policy names) and result (HTTP status class, or error).",
	}, []string{"host", "result"})
	m.registry.MustRegister(m.latency, m.requests, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "signet_verification_cache_hits_total", Help: "Verified results reused from the cache.",
	}, func() float64 {
		if m.cache == nil {
			return 0
		}
		h, _, _ := m.cache.Stats()
		return float64(h)
	}))
	m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "signet_verification_cache_misses_total", Help: "Verifications not found in the cache (each one verifies).",
	}, func() float64 {
		if m.cache == nil {
			return 0
		}
		_, miss, _ := m.cache.Stats()
		return float64(miss)
	}))
	return m
}

func (m *serveMetrics) observe(kind, decision string, d time.Duration) {
	m.latency.WithLabelValues(kind, decision).Observe(d.Seconds())
}

// parseImageFields parses --image-field values: KIND.GROUP=PATH[,PATH...]
// (KIND alone for the core group).
func parseImageFields(values []string) ([]workload.Custom, error) {
	var out []workload.Custom
	for _, v := range values {
		kindGroup, paths, ok := strings.Cut(v, "=")
		if !ok || kindGroup == "" || paths == "" {
			return nil, fmt.Errorf("--image-field %q: want KIND.GROUP=PATH[,PATH...]", v)
		}
		kind, group, _ := strings.Cut(kindGroup, ".")
		out = append(out, workload.Custom{Kind: workload.Kind{Group: group, Kind: kind}, Paths: strings.Split(paths, ",")})
	}
	return out, nil
}

// transport counts registry requests by host and result.
func (m *serveMetrics) transport(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(r)
		result := "error"
		if err == nil {
			result = fmt.Sprintf("%dxx", resp.StatusCode/100)
		}
		m.requests.WithLabelValues(m.hostLabel(r.URL.Host), result).Inc()
		return resp, err
	})
}

// hostLabel is host when a policy names it, else "other": the images
// admitted, and the token servers registries send signet to, name any host
// they like.
func (m *serveMetrics) hostLabel(host string) string {
	if m.knownHost != nil && m.knownHost(host) {
		return host
	}
	return "other"
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
