package faults

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Fault is what the proxy does to the requests it receives.
type Fault string

// The faults. Those marked partial leave some answers intact, so signet
// may still decide some images; the others leave it nothing to decide with.
const (
	// None passes every request through.
	None Fault = "none"
	// StallHeaders accepts the request and never answers.
	StallHeaders Fault = "stall before headers"
	// StallBody answers the headers (with the real Content-Length) and
	// half of the body of a successful answer, then nothing; any other
	// answer (a 404's status says all it has to say before its body) not
	// even its status line.
	StallBody Fault = "stall mid-body"
	// Storm5xx answers 500, 502 and 503 in turn.
	Storm5xx Fault = "5xx storm"
	// RateLimitShort answers 429 with Retry-After: 1.
	RateLimitShort Fault = "429 Retry-After 1s"
	// RateLimitLong answers 429 with Retry-After: 3600.
	RateLimitLong Fault = "429 Retry-After 3600s"
	// Reset answers the headers and half of the body of a successful
	// answer, then resets the connection (RST); any other answer before
	// its status line.
	Reset Fault = "reset mid-response"
	// Oversized answers every manifest request (tags, signature tags,
	// the referrers tag schema) with a 64 MiB index, every other one
	// announcing its Content-Length, the others chunked.
	Oversized Fault = "oversized answers"
	// BadJSON answers every manifest request with a truncated JSON
	// document.
	BadJSON Fault = "malformed JSON"
	// WrongType answers manifests with their real bytes as text/html
	// (partial: signet may read a manifest by its own mediaType).
	WrongType Fault = "wrong content type"
	// DigestMismatch changes one byte of every manifest and blob fetched
	// by digest (partial: tags are answered intact).
	DigestMismatch Fault = "digest mismatch"
	// DNS is not a proxy fault: the images are on a host under .invalid,
	// which no resolver answers.
	DNS Fault = "DNS failure"
)

// Faults lists every fault, in the order World.Run is meant to take them.
var Faults = []Fault{StallHeaders, StallBody, Storm5xx, RateLimitShort, RateLimitLong, Reset, Oversized, BadJSON, WrongType, DigestMismatch, DNS}

// Partial reports whether f leaves some answers intact.
func (f Fault) Partial() bool { return f == WrongType || f == DigestMismatch }

// oversizedBytes is the size of an oversized answer: 16 times signet's
// default manifest bound.
const oversizedBytes = 64 << 20

// Proxy is a reverse proxy in front of a registry that injects the current
// Fault into what it answers, and counts the connections clients hold to
// it.
type Proxy struct {
	// Host is "127.0.0.1:PORT", the registry part of image references
	// through the proxy.
	Host string

	upstream *url.URL
	srv      *httptest.Server
	pass     *httputil.ReverseProxy
	fault    atomic.Value // Fault
	requests atomic.Int64
	inFlight atomic.Int64
	oversize atomic.Int64 // most bytes of one oversized answer written
	stop     chan struct{}

	mu    sync.Mutex
	conns map[net.Conn]http.ConnState
}

// StartProxy serves a proxy to the registry at upstream ("127.0.0.1:PORT",
// plain HTTP) on a loopback port, until the test ends.
func StartProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	u := &url.URL{Scheme: "http", Host: upstream}
	p := &Proxy{upstream: u, conns: map[net.Conn]http.ConnState{}, stop: make(chan struct{})}
	p.fault.Store(None)
	p.pass = &httputil.ReverseProxy{
		Rewrite:  func(r *httputil.ProxyRequest) { r.SetURL(u) },
		ErrorLog: log.New(io.Discard, "", 0), // clients that give up on a stall
	}
	p.srv = httptest.NewUnstartedServer(p)
	p.srv.Config.ConnState = p.track
	p.srv.Start()
	tb.Cleanup(func() {
		close(p.stop)
		p.srv.Close()
	})
	p.Host = strings.TrimPrefix(p.srv.URL, "http://")
	return p
}

// Set switches the fault for the requests that arrive from now on.
func (p *Proxy) Set(f Fault) { p.fault.Store(f) }

// Fault is the current fault.
func (p *Proxy) Fault() Fault { return p.fault.Load().(Fault) }

// Requests is how many requests the proxy received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// InFlight is how many requests are being answered (or stalled) now: a
// stalled request ends when its client gives up and closes the connection.
func (p *Proxy) InFlight() int64 { return p.inFlight.Load() }

// MaxOversized is the most bytes of one oversized answer the proxy could
// write before its client stopped reading and closed the connection
// (socket buffers hold some of them), and resets it to 0.
func (p *Proxy) MaxOversized() int64 { return p.oversize.Swap(0) }

// Conns counts the client connections open to the proxy, and those of
// them in the middle of a request.
func (p *Proxy) Conns() (open, active int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.conns {
		open++
		if s == http.StateActive {
			active++
		}
	}
	return open, active
}

// CloseIdle closes the client connections that are idle (kept alive
// between requests) or never carried a request (Go's transport dials a
// spare connection for a request that another connection then serves, and
// keeps it in its pool), so that a client's pool of them is emptied. Call
// it only when no request is being sent.
func (p *Proxy) CloseIdle() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c, s := range p.conns {
		if s == http.StateIdle || s == http.StateNew {
			c.Close()
		}
	}
}

func (p *Proxy) track(c net.Conn, s http.ConnState) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(p.conns, c)
	default:
		p.conns[c] = s
	}
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := p.requests.Add(1)
	p.inFlight.Add(1)
	defer p.inFlight.Add(-1)
	manifest := strings.Contains(r.URL.Path, "/manifests/")
	byDigest := strings.Contains(r.URL.Path, "/manifests/sha256:") || strings.Contains(r.URL.Path, "/blobs/sha256:")
	switch f := p.Fault(); {
	case f == StallHeaders:
		p.wait(r)
	case f == StallBody:
		p.half(w, r, false)
	case f == Reset:
		p.half(w, r, true)
	case f == Storm5xx:
		code := []int{http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable}[n%3]
		http.Error(w, http.StatusText(code), code)
	case f == RateLimitShort, f == RateLimitLong:
		after := "1"
		if f == RateLimitLong {
			after = "3600"
		}
		w.Header().Set("Retry-After", after)
		http.Error(w, "slow down", http.StatusTooManyRequests)
	case f == Oversized && manifest:
		p.oversized(w, r, n%2 == 0)
	case f == BadJSON && manifest:
		w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
		_, _ = io.WriteString(w, `{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"digest": `)
	case f == WrongType && manifest:
		status, header, body, err := p.fetch(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		copyHeader(w.Header(), header)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write(body) //nolint:gosec // G705: a registry's answer relayed to a registry client, no browser
	case f == DigestMismatch && byDigest:
		status, header, body, err := p.fetch(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		if status == http.StatusOK && len(body) > 0 {
			body[len(body)/2] ^= 0x20
		}
		copyHeader(w.Header(), header)
		w.WriteHeader(status)
		_, _ = w.Write(body) //nolint:gosec // G705: a registry's answer relayed to a registry client, no browser
	default:
		p.pass.ServeHTTP(w, r)
	}
}

// wait blocks until the client goes away or the proxy stops.
func (p *Proxy) wait(r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-p.stop:
	}
}

// half answers the headers of the real answer and half of its body (when
// it is a 200), then stalls (until the client goes away) or resets the
// connection.
func (p *Proxy) half(w http.ResponseWriter, r *http.Request, reset bool) {
	status, header, body, err := p.fetch(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	// A status other than 200 says all it has to say before its body: it
	// is not sent.
	if status == http.StatusOK {
		copyHeader(w.Header(), header)
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
		_, _ = w.Write(body[:len(body)/2]) //nolint:gosec // G705: a registry's answer relayed to a registry client, no browser
	}
	if !reset {
		if status == http.StatusOK {
			http.NewResponseController(w).Flush()
		}
		p.wait(r)
		return
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	_ = buf.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // Close sends RST, not FIN
	}
	conn.Close()
}

// oversized streams an index of oversizedBytes, announcing its length or
// not, until the client stops reading.
func (p *Proxy) oversized(w http.ResponseWriter, r *http.Request, announce bool) {
	w.Header().Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	if announce {
		w.Header().Set("Content-Length", strconv.Itoa(oversizedBytes))
	}
	w.WriteHeader(http.StatusOK)
	entry := []byte(`{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:` + strings.Repeat("0", 64) + `","size":1},`)
	chunk := bytes.Repeat(entry, (32<<10)/len(entry))
	head := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[`)
	written := int64(0)
	defer func() {
		for {
			old := p.oversize.Load()
			if written <= old || p.oversize.CompareAndSwap(old, written) {
				return
			}
		}
	}()
	n, err := w.Write(head)
	written += int64(n)
	for err == nil && written+int64(len(chunk)) <= oversizedBytes && r.Context().Err() == nil {
		n, err = w.Write(chunk)
		written += int64(n)
	}
}

// fetch asks the registry for what r asks, and reads the whole answer
// (manifests and signature blobs: small).
func (p *Proxy) fetch(r *http.Request) (int, http.Header, []byte, error) {
	u := *p.upstream
	u.Path, u.RawQuery = r.URL.Path, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), nil)
	if err != nil {
		return 0, nil, nil, err
	}
	copyHeader(req.Header, r.Header)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("asking the registry: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, resp.Header, body, err
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}
