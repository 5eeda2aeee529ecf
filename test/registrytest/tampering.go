package registrytest

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Tampering is the in-process registry behind a proxy that lets a test
// replace the answer to chosen paths, for registries that lie.
type Tampering struct {
	*Registry
	inner http.Handler

	mu        sync.Mutex
	overrides map[string]http.HandlerFunc
}

// StartTampering serves the in-process registry (with the referrers API)
// behind a proxy that answers as it is told with Override.
func StartTampering(t testing.TB) *Tampering {
	t.Helper()
	tr := &Tampering{inner: registry.New(registry.Logger(log.New(io.Discard, "", 0))), overrides: map[string]http.HandlerFunc{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		f, ok := tr.overrides[r.URL.Path]
		tr.mu.Unlock()
		if ok {
			f(w, r)
			return
		}
		tr.inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tr.Registry = &Registry{Host: srv.Listener.Addr().String(), Kind: "tampering in-process"}
	return tr
}

// Override answers every request for path (e.g. "/v2/app/manifests/v1")
// with f from now on.
func (tr *Tampering) Override(path string, f http.HandlerFunc) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.overrides[path] = f
}

// Fetch answers a GET of path from the registry behind the proxy,
// untampered, accepting every manifest and index media type.
func (tr *Tampering) Fetch(t testing.TB, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	accept := []string{string(types.OCIManifestSchema1), string(types.OCIImageIndex), string(types.DockerManifestSchema2), string(types.DockerManifestList)}
	req.Header.Set("Accept", strings.Join(accept, ", "))
	tr.inner.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s from the in-process registry: %d %s", path, rec.Code, rec.Body)
	}
	return rec
}
