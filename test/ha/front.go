package ha

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// front is a loopback TCP load balancer in front of signet's replicas, as a
// Service with kube-proxy is: each new connection goes to the next backend
// in rotation (round robin) and stays there; a backend enters the rotation
// once its /readyz answers 200 and leaves it when /readyz stops answering
// 200 (probed every probeEvery, as the kubelet's readiness probe and the
// endpoints controller do), or propagation after the test says its pod is
// terminating (endpoints drop a terminating pod at once; kube-proxy learns
// it a moment later).
type front struct {
	ln net.Listener

	mu       sync.Mutex
	backends []*backend
	next     int

	refused atomic.Int64 // connections closed with no backend in rotation
	wg      sync.WaitGroup
}

type backend struct {
	addr        string
	ready       atomic.Bool
	terminating atomic.Bool
	stop        chan struct{}
}

const (
	probeEvery  = 250 * time.Millisecond
	propagation = 500 * time.Millisecond
)

func startFront(t *testing.T) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &front{ln: ln}
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, b := range f.backends {
			close(b.stop)
		}
		f.backends = nil
		f.mu.Unlock()
	})
	return f
}

// Addr is where the API server calls the webhook.
func (f *front) Addr() string { return f.ln.Addr().String() }

func (f *front) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		b := f.pick()
		if b == nil {
			f.refused.Add(1)
			c.Close()
			continue
		}
		go splice(c, b.addr)
	}
}

func (f *front) pick() *backend {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range f.backends {
		b := f.backends[f.next%len(f.backends)]
		f.next++
		if b.ready.Load() && !b.terminating.Load() {
			return b
		}
	}
	return nil
}

// splice connects c to addr and copies both ways until either side ends.
// A backend that refuses the connection ends c: kube-proxy does not try
// another endpoint.
func splice(c net.Conn, addr string) {
	defer c.Close()
	u, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
	<-done
}

// add puts addr among the backends; it enters the rotation once ready.
func (f *front) add(addr string) {
	b := &backend{addr: addr, stop: make(chan struct{})}
	f.mu.Lock()
	f.backends = append(f.backends, b)
	f.mu.Unlock()
	go b.probe()
}

// terminating takes addr out of the rotation after propagation, as the
// endpoints of a pod being deleted are.
func (f *front) terminating(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.backends {
		if b.addr == addr {
			time.AfterFunc(propagation, func() { b.terminating.Store(true) })
		}
	}
}

// remove forgets addr (its pod is gone).
func (f *front) remove(addr string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, b := range f.backends {
		if b.addr == addr {
			close(b.stop)
			f.backends = append(f.backends[:i], f.backends[i+1:]...)
			return
		}
	}
}

// inRotation reports whether addr takes new connections.
func (f *front) inRotation(addr string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range f.backends {
		if b.addr == addr {
			return b.ready.Load() && !b.terminating.Load()
		}
	}
	return false
}

// probe asks the backend's /readyz every probeEvery, as the kubelet does
// (without verifying its certificate, as the kubelet does not).
func (b *backend) probe() {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a readiness probe, as the kubelet's: no verification
		DisableKeepAlives: true,
	}}
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		resp, err := hc.Get("https://" + b.addr + "/readyz")
		ok := err == nil && resp.StatusCode == http.StatusOK
		if err == nil {
			resp.Body.Close()
		}
		b.ready.Store(ok)
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}
