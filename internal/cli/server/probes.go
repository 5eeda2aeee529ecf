package server

import (
	"io"
	"net/http"
)

// healthz answers that the process is alive.
func healthz(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") }

// readyz answers 200 once ready is closed, and 503 saying what it waits
// for until then; 503 again once stopping is closed (the process was told
// to stop and serves only until the load balancer has noticed). A nil
// stopping never closes. (controller-runtime's healthz.Handler answers 500
// with "reason withheld", and logs through a logger signet does not set
// up.)
func readyz(ready, stopping <-chan struct{}, waiting string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-stopping:
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		default:
		}
		select {
		case <-ready:
			_, _ = io.WriteString(w, "ok\n")
		default:
			http.Error(w, waiting, http.StatusServiceUnavailable)
		}
	}
}
