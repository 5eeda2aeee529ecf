package server

import (
	"fmt"
	"net/http"
)

// transport counts registry requests by host and result in
// signet_registry_requests_total.
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
