package registrytest

import (
	"net/http"
	"sync/atomic"
)

// Answering is a registry transport that answers every request with Code
// (an empty body) and counts the requests: a registry that is down (503),
// or that answers a reader it does not authorize "not found" (404).
type Answering struct {
	Code int
	n    atomic.Int64
}

// Status is an Answering transport for code.
func Status(code int) *Answering { return &Answering{Code: code} }

// RoundTrip answers r with a.Code.
func (a *Answering) RoundTrip(r *http.Request) (*http.Response, error) {
	a.n.Add(1)
	return &http.Response{StatusCode: a.Code, Status: http.StatusText(a.Code), Header: http.Header{}, Body: http.NoBody, Request: r}, nil
}

// Requests is how many requests a has answered.
func (a *Answering) Requests() int64 { return a.n.Load() }

// Reset sets the count back to zero.
func (a *Answering) Reset() { a.n.Store(0) }
