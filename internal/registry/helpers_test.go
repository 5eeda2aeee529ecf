package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/registry"
)

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// sha256Digest returns "sha256:<hex>" of b.
func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// repoOf splits a harness reference "host/path[:tag|@digest]" into a Repository.
func repoOf(t *testing.T, ref string) registry.Repository {
	t.Helper()
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	host, path, ok := strings.Cut(ref, "/")
	if !ok {
		t.Fatalf("reference %q has no repository path", ref)
	}
	if i := strings.LastIndex(path, ":"); i >= 0 {
		path = path[:i]
	}
	return registry.Repository{Host: host, Path: path}
}

// newClient returns a client for the plain-HTTP loopback registries the
// harness starts.
func newClient(t *testing.T, opts ...registry.Option) *registry.Client {
	t.Helper()
	c, err := registry.New(append([]registry.Option{registry.InsecureAllowHTTP()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newTLSClient returns a client (HTTPS only) that trusts the certificate every
// httptest TLS server shares.
func newTLSClient(t *testing.T, srv *httptest.Server, opts ...registry.Option) *registry.Client {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	c, err := registry.New(append([]registry.Option{registry.WithTransport(tr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// hostile is a hand-written registry for behaviour no real registry shows.
// It answers the /v2/ ping with 200 unless a route says otherwise, every path
// it has a route for with that route, and anything else with 404. It counts
// the requests per path.
type hostile struct {
	*httptest.Server
	Repo registry.Repository

	mu     sync.Mutex
	routes map[string]http.HandlerFunc
	hits   map[string]int
	auth   map[string][]string // Authorization headers seen, per path
}

func newHostile(t *testing.T, tls bool) *hostile {
	t.Helper()
	h := &hostile{routes: map[string]http.HandlerFunc{}, hits: map[string]int{}, auth: map[string][]string{}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hits[r.URL.Path]++
		if a := r.Header.Get("Authorization"); a != "" {
			h.auth[r.URL.Path] = append(h.auth[r.URL.Path], a)
		}
		route, ok := h.routes[r.URL.Path]
		h.mu.Unlock()
		switch {
		case ok:
			route(w, r)
		case r.URL.Path == "/v2/":
			w.WriteHeader(http.StatusOK)
		default:
			http.NotFound(w, r)
		}
	})
	done := make(chan struct{})
	h.Server = httptest.NewUnstartedServer(handler)
	h.Config.BaseContext = func(net.Listener) context.Context { return context.WithValue(context.Background(), stallKey{}, done) }
	h.Config.ErrorLog = discardLogger() // TLS handshake failures are part of some tests
	if tls {
		h.StartTLS()
	} else {
		h.Start()
	}
	t.Cleanup(h.Close)
	t.Cleanup(func() { close(done) }) // before Close, which waits for handlers
	h.Repo = registry.Repository{Host: h.Listener.Addr().String(), Path: "app"}
	return h
}

// path returns the URL path of suffix ("manifests/latest") in h.Repo.
func (h *hostile) path(suffix string) string { return "/v2/" + h.Repo.Path + "/" + suffix }

// URL returns the absolute URL of suffix in h.Repo.
func (h *hostile) url(suffix string) string { return h.URL + h.path(suffix) }

func (h *hostile) route(suffix string, f http.HandlerFunc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if suffix == "/v2/" {
		h.routes[suffix] = f
		return
	}
	h.routes[h.path(suffix)] = f
}

func (h *hostile) count(suffix string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.hits[h.path(suffix)]
}

// totalHits is the number of requests to any path but the /v2/ ping.
func (h *hostile) totalHits() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for p, c := range h.hits {
		if p != "/v2/" {
			n += c
		}
	}
	return n
}

func (h *hostile) authSeen() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for k, v := range h.auth {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// serveJSON answers with body and the given content type.
func serveJSON(mediaType string, body []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", mediaType)
		_, _ = w.Write(body)
	}
}

// stall takes the connection and sends nothing more than prefix (raw bytes
// of a response, if any) until the test ends. Unlike a handler that returns
// when the client gives up, it never completes a response.
func stall(prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = buf.WriteString(prefix)
		_ = buf.Flush()
		<-stallDone(r)
	}
}

type stallKey struct{}

// stallDone is closed when the test that started the server ends.
func stallDone(r *http.Request) <-chan struct{} { return r.Context().Value(stallKey{}).(chan struct{}) }

// endless streams b forever (chunked, no Content-Length) until the client
// goes away.
func endless(b []byte) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", registry.MediaTypeOCIManifest)
		for r.Context().Err() == nil {
			if _, err := w.Write(b); err != nil {
				return
			}
		}
	}
}

// quickly fails the test if f takes longer than max, and returns f's error.
func quickly(t *testing.T, max time.Duration, f func() error) error {
	t.Helper()
	start := time.Now()
	err := f()
	if d := time.Since(start); d > max {
		t.Errorf("took %s, want at most %s", d.Round(time.Millisecond), max)
	}
	return err
}

// deadline returns t.Context() limited to d.
func deadline(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
