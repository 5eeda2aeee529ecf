package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/controller"
)

// serveMetrics are the Prometheus metrics of signet serve. Every label
// takes its values from a bounded set: kinds from those signet knows
// (admission.Handler.Observe), decisions allowed, denied or error, policies
// the first maxPolicyLabels seen, else "other", registry hosts
// from those a policy names (knownHost), else "other", TrustRoots from
// the cluster's objects.
type serveMetrics struct {
	registry   *prometheus.Registry
	latency    *prometheus.HistogramVec
	requests   *prometheus.CounterVec
	policies   *policyResults
	trustRoots *controller.TrustRootMetrics
	// cache and knownHost are set by the admission handler that counts
	// (admissionHandler).
	cache     *check.Cache
	knownHost func(host string) bool
}

func newServeMetrics() *serveMetrics {
	m := &serveMetrics{registry: prometheus.NewRegistry()}
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "signet_admission_duration_seconds",
		Help:    "Time to answer an admission request, by object kind and decision: allowed, denied, or error (signet could not decide or failed; answered 5xx).",
		Buckets: []float64{.001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30},
	}, []string{"kind", "decision"})
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signet_registry_requests_total",
		Help: "Requests to registries, by registry host (\"other\" for a host no policy names) and result (HTTP status class, or error).",
	}, []string{"host", "result"})
	m.policies = newPolicyResults()
	m.registry.MustRegister(m.latency, m.requests, m.policies.vec, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
	m.trustRoots = controller.NewTrustRootMetrics(m.registry)
	return m
}

func (m *serveMetrics) observe(kind, decision string, d time.Duration) {
	m.latency.WithLabelValues(kind, decision).Observe(d.Seconds())
}

func (m *serveMetrics) observeDecisions(decisions []check.Decision) {
	m.policies.observe(decisions)
}
