package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// /readyz says what it waits for with 503 until its signal, then 200.
func TestReadyzFollowsItsSignal(t *testing.T) {
	ready, stopping := make(chan struct{}), make(chan struct{})
	h := readyz(ready, stopping, "policies are not loaded yet")
	get := func() (int, string) {
		rec := httptest.NewRecorder()
		h(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "policies are not loaded yet") {
		t.Errorf("before the signal: %d %q", code, body)
	}
	close(ready)
	if code, body := get(); code != http.StatusOK || body != "ok\n" {
		t.Errorf("after the signal: %d %q", code, body)
	}
	close(stopping)
	if code, body := get(); code != http.StatusServiceUnavailable || !strings.Contains(body, "shutting down") {
		t.Errorf("once stopping: %d %q", code, body)
	}
}
