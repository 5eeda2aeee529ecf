package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The node agent's listener keeps at most its connection limit open: a
// connection over it gets no answer, whatever the ones held do (here: send
// half a request with a 100 MiB body), and together they hold little heap;
// once they go, the probes and /metrics answer. (It kept every connection,
// and kept idle ones for ever.)
func TestNodeAgentListenerBounds(t *testing.T) {
	ready := make(chan struct{})
	close(ready)
	ln, srv, err := statusServer(context.Background(), "127.0.0.1:0", ready, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	maxConns := nodeAgentLimits().MaxConns

	before := heapInuse()
	var held []net.Conn
	for i := range maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if i%2 == 0 {
			fmt.Fprintf(c, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 100<<20)
		} else {
			_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // headers never end
		}
	}
	// Both ends are in this process; a plain connection costs a few KiB.
	const bound = 16 << 20
	if grown := int64(heapInuse()) - int64(before); grown > bound {
		t.Errorf("%d held connections grew the heap by %d bytes, more than %d", maxConns, grown, bound)
	}
	// The server may not have accepted every held connection yet: give it
	// a few more, then a full request, which must go unanswered.
	for range 10 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // bounds the test's wait only
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		resp.Body.Close()
		t.Errorf("a connection over the limit of %d was served: %d", maxConns, resp.StatusCode)
	}
	c.Close()
	for _, c := range held {
		c.Close()
	}
	hc := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		var resp *http.Response
		for range 100 { // the server sees the closes asynchronously
			if resp, err = hc.Get("http://" + addr + path); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
