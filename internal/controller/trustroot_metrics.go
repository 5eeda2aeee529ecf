package controller

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/trust"
)

// TrustRootMetrics are the Prometheus metrics of TrustRoot refreshes.
type TrustRootMetrics struct {
	refreshes *prometheus.CounterVec
	expiry    *prometheus.GaugeVec
}

// NewTrustRootMetrics registers signet_trustroot_refresh_total{trustroot,result}
// (result: success, error, expired) and
// signet_trustroot_expiry_timestamp_seconds{trustroot} (the earliest of the
// material's next expiry and its TUF metadata's expiry, Unix seconds).
func NewTrustRootMetrics(reg prometheus.Registerer) *TrustRootMetrics {
	m := &TrustRootMetrics{
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_trustroot_refresh_total",
			Help: "Trust root resolutions and TUF refreshes, by TrustRoot and result (success, error, expired).",
		}, []string{"trustroot", "result"}),
		expiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signet_trustroot_expiry_timestamp_seconds",
			Help: "When the trusted material in use (or its TUF metadata) first expires, Unix seconds, by TrustRoot.",
		}, []string{"trustroot"}),
	}
	reg.MustRegister(m.refreshes, m.expiry)
	return m
}

// Observe records one resolution of the trust root name.
func (m *TrustRootMetrics) Observe(name string, mat *trust.Material, err error, now time.Time) {
	if m == nil {
		return
	}
	result := "success"
	switch {
	case errors.Is(err, trust.ErrMetadataExpired):
		result = "expired"
	case err != nil:
		result = "error"
	}
	m.refreshes.WithLabelValues(name, result).Inc()
	if mat != nil {
		if exp := expiryOf(mat, now); !exp.IsZero() {
			m.expiry.WithLabelValues(name).Set(float64(exp.Unix()))
		}
	}
}

func (m *TrustRootMetrics) forget(name string) {
	if m == nil {
		return
	}
	m.expiry.DeleteLabelValues(name)
}

// expiryOf is the earliest of the material's next expiry and its TUF
// metadata's expiry; zero if neither has one.
func expiryOf(m *trust.Material, now time.Time) time.Time {
	var exp time.Time
	if s := trust.Describe(m.TrustedRoot, now); s.NextExpiry != nil {
		exp = s.NextExpiry.At
	}
	if !m.MetadataExpires.IsZero() && (exp.IsZero() || m.MetadataExpires.Before(exp)) {
		exp = m.MetadataExpires
	}
	return exp
}
