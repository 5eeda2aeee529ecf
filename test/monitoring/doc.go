// Package monitoring checks what the Helm chart gives Prometheus and
// Grafana (deploy/helm/signet, metrics.*) with the real tools: bin/helm
// renders the PrometheusRule and the dashboard, bin/promtool (Debian's
// prometheus package, `make tools`) checks the rules and runs their unit
// tests (testdata/alerts_test.yaml), and every metric the alerts and the
// dashboard query must be one signet defines.
package monitoring
