package registry_test

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// countingRegistry is the in-process registry behind an httptest server that
// counts the connections clients open to it.
func countingRegistry(t *testing.T) (host string, conns *atomic.Int64) {
	t.Helper()
	conns = &atomic.Int64{}
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(discardLogger())))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String(), conns
}

// A 404 (a tag that is not there, as most .att and referrers tags are) does
// not cost the next request a new connection: its error body is read, so
// net/http keeps the connection.
func TestNotFoundKeepsTheConnection(t *testing.T) {
	t.Parallel()
	host, conns := countingRegistry(t)
	c := newClient(t)
	repo := registry.Repository{Host: host, Path: "team/app"}
	var first int64
	for i := range 10 {
		_, err := c.Resolve(t.Context(), repo, fmt.Sprintf("missing-%d", i))
		if !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("resolving a missing tag: %v, want ErrNotFound", err)
		}
		if i == 0 {
			// go-containerregistry's ping tries HTTPS first: one
			// connection for that, one for HTTP.
			first = conns.Load()
		}
	}
	if n := conns.Load() - first; n != 0 {
		t.Errorf("9 more lookups of missing tags opened %d connections, want 0 (the first lookup opened %d)", n, first)
	}
}

// The lookups of one object's images run in parallel (16 at a time at
// admission, more than net/http keeps idle by default); the next such burst
// finds the connections of the last one kept.
func TestParallelLookupsKeepTheirConnections(t *testing.T) {
	t.Parallel()
	host, conns := countingRegistry(t)
	reg := &registrytest.Registry{Host: host, Kind: "in-process"}
	var digests []string
	for i := range 20 {
		digests = append(digests, reg.PushRandomImage(t, fmt.Sprintf("app%d", i), "v1").Digest)
	}
	c := newClient(t)
	pushed := conns.Load()
	burst := func() {
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, d := range digests {
			wg.Go(func() {
				<-start
				if _, err := c.Resolve(t.Context(), registry.Repository{Host: host, Path: fmt.Sprintf("app%d", i)}, d); err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	const bursts = 5
	for range bursts {
		burst()
	}
	// 20 lookups at once need 20 connections, and one more for the HTTPS
	// attempt of go-containerregistry's ping. net/http may dial for a
	// request that an idle connection then serves, and keep both: a little
	// slack for that. Kept connections or not is the difference between
	// about 20 and about 20 per burst.
	if n := conns.Load() - pushed; n > 24 {
		t.Errorf("%d bursts of 20 parallel lookups opened %d connections, want at most 24: connections are not kept between bursts", bursts, n)
	}
}
