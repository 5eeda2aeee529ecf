package bench

import (
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestColdAdmissionsKeepRegistryConnections: signet serve keeps its
// connections to a registry from one admission to the next. Cold admissions
// of a pod with 8 images (cache entries live 1 ns) look the images up in
// parallel; after the first, they find the connections it opened idle.
// net/http's default keeps 2 per host, and every admission would open the
// other 6 again.
func TestColdAdmissionsKeepRegistryConnections(t *testing.T) {
	reg := registrytest.StartInProcess(t, false)
	proxy := startConnCounter(t, reg.Host)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	var refs []string
	for i := range 8 {
		img := reg.PushRandomImage(t, fmt.Sprintf("team/app%d", i), "v1")
		// Signed through the host admitted, as images are.
		ref := proxy.host + strings.TrimPrefix(img.Ref, reg.Host)
		cosign.Sign(t, ref, key, harness.Legacy)
		refs = append(refs, ref)
	}
	dir := writePolicies(t, keyPolicy("team", proxy.host+"/team/**", "", readKey(t, key)))
	s := startSignet(t, dir, "--cache-ttl", "1ns", "--cache-negative-ttl", "1ns")

	before := proxy.conns.Load()
	body := podReview("wide", "default", refs...)
	const admissions = 6
	l := drive(s, 1, admissions, time.Minute, func(int) []byte { return body }, allowed)
	if l.errors > 0 || len(l.latencies) != admissions {
		t.Fatalf("%d of %d admissions failed: %v", l.errors, admissions, l.firstErr)
	}
	// The first admission may read each image's .sig and referrers at once:
	// two connections an image, and a little slack for dials that an idle
	// connection made unneeded. Without kept connections the rest would
	// add 6 each.
	if n := proxy.conns.Load() - before; n > 2*int64(len(refs))+4 {
		t.Errorf("%d cold admissions of a pod with %d images opened %d connections to the registry, want at most %d",
			admissions, len(refs), n, 2*len(refs)+4)
	}
}

// connCounter forwards TCP connections to a registry and counts them.
type connCounter struct {
	host  string
	conns atomic.Int64
}

func startConnCounter(tb testing.TB, target string) *connCounter {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c := &connCounter{host: l.Addr().String()}
	var (
		mu   sync.Mutex
		open []net.Conn
		wg   sync.WaitGroup
	)
	track := func(conn net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		open = append(open, conn)
	}
	// Idle connections in signet's pool would stay open for long after the
	// test: close every one.
	tb.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, conn := range open {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			c.conns.Add(1)
			track(in)
			wg.Go(func() {
				defer in.Close()
				out, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				track(out)
				defer out.Close()
				go func() { _, _ = io.Copy(out, in); out.Close() }()
				_, _ = io.Copy(in, out)
			})
		}
	})
	return c
}
