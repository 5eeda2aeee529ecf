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
		Name: "signet_verification_cache_misses_total", Help: "Verifications not found in the cache (each one verifies, unless the shared cache has it: signet_shared_cache_hits_total).",
	}, func() float64 {
		if m.cache == nil {
			return 0
		}
		_, miss, _ := m.cache.Stats()
		return float64(miss)
	}))
	m.registerShared()
	m.trustRoots = controller.NewTrustRootMetrics(m.registry)
	return m
}

// registerShared registers the shared cache's counters (--shared-cache;
// zero without one).
func (m *serveMetrics) registerShared() {
	for _, c := range []struct {
		name, help string
		value      func(check.SharedStats) uint64
	}{
		{"signet_shared_cache_hits_total", "Results read from the shared cache (another replica verified them).", func(s check.SharedStats) uint64 { return s.Hits }},
		{"signet_shared_cache_misses_total", "Lookups the shared cache had no entry for.", func(s check.SharedStats) uint64 { return s.Misses }},
		{"signet_shared_cache_invalid_total", "Shared cache entries not used because their MAC does not verify (not written by signet with this key, or altered) or they cannot be read; the image is verified instead.", func(s check.SharedStats) uint64 { return s.Invalid }},
		{"signet_shared_cache_errors_total", "Shared cache operations that failed or timed out (each starts a pause during which the cache is not used).", func(s check.SharedStats) uint64 { return s.Failures }},
		{"signet_shared_cache_skipped_total", "Shared cache operations not tried during a pause after a failure.", func(s check.SharedStats) uint64 { return s.BackedOff }},
		{"signet_shared_cache_writes_total", "Results written to the shared cache.", func(s check.SharedStats) uint64 { return s.Stored }},
	} {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 {
			if m.cache == nil || m.cache.Shared == nil {
				return 0
			}
			return float64(c.value(m.cache.Shared.Stats()))
		}))
	}
}

func (m *serveMetrics) observe(kind, decision string, d time.Duration) {
	m.latency.WithLabelValues(kind, decision).Observe(d.Seconds())
}

func (m *serveMetrics) observeDecisions(decisions []check.Decision) {
	m.policies.observe(decisions)
}
