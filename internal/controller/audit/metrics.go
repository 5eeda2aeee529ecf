package audit

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the audit's Prometheus metrics; a nil *Metrics records
// nothing. The policy label takes policy IDs (objects in the cluster) and
// audit's own names ((unmatched), ...).
type Metrics struct {
	results  *prometheus.GaugeVec
	duration prometheus.Histogram
	lastScan *prometheus.GaugeVec
	errors   prometheus.Counter
	objects  prometheus.Counter
	limited  *prometheus.CounterVec
}

// NewMetrics registers the audit's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		results: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_audit_results",
			Help: "Current audit results (one per object, image field and policy), by policy and result (pass, fail, warn, error, skip).",
		}, []string{"policy", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signet_audit_scan_duration_seconds",
			Help:    "Time a full audit scan took.",
			Buckets: []float64{.1, .5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600},
		}),
		lastScan: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_audit_last_complete_scan_timestamp_seconds",
			Help: "When the last full audit scan completed, Unix seconds; when this replica started leading until then. Only the leader, which audits, has it.",
		}, nil),
		errors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signet_audit_scan_errors_total",
			Help: "Objects the audit could not read as admission would, and report writes that failed.",
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_audit_rate_limited_total",
			Help: "Times a registry answered the audit 429 and the audit slowed down, by registry host.",
		}, []string{"host"}),
	}
	m.objects = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "signet_audit_objects_decided_total",
		Help: "Objects the audit decided (each decision reads the verification cache first): a full scan decides every object, a policy change only those whose images it selects.",
	})
	reg.MustRegister(m.results, m.duration, m.lastScan, m.errors, m.limited, m.objects)
	return m
}

func (m *Metrics) scanned(d time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	m.lastScan.WithLabelValues().SetToCurrentTime()
}

// lead starts the leader's series: a scan that never completes is stale
// from the moment this replica took over.
func (m *Metrics) lead() {
	if m != nil {
		m.lastScan.WithLabelValues().SetToCurrentTime()
	}
}

// stepDown removes the series only the leader has: another replica audits
// now, and its figures are the ones to read.
func (m *Metrics) stepDown() {
	if m != nil {
		m.lastScan.Reset()
		m.results.Reset()
	}
}

func (m *Metrics) decided() {
	if m != nil {
		m.objects.Inc()
	}
}

func (m *Metrics) scanError() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) rateLimited(host string) {
	if m != nil {
		m.limited.WithLabelValues(host).Inc()
	}
}

// updateMetrics sets the results gauge from the current results.
func (s *Scanner) updateMetrics() {
	if s.Metrics == nil {
		return
	}
	type label struct{ policy, result string }
	counts := map[label]int{}
	for _, r := range s.Results() {
		counts[label{r.Policy, string(r.Effect)}]++
	}
	s.Metrics.results.Reset()
	for l, n := range counts {
		s.Metrics.results.WithLabelValues(l.policy, l.result).Set(float64(n))
	}
}
