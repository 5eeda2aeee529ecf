//go:build unix

package cli

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A FIFO in the served directory is answered 404 at once and holds nothing:
// no OS thread blocked in open(2) per request, no goroutine left behind.
// (Open came first: each request blocked a thread until a writer came.)
func TestTrustRootServeFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("fifo.json", filepath.Join(dir, "link.json")); err != nil {
		t.Fatal(err)
	}
	// http.Server.Close, unlike httptest's, does not wait for handlers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: repositoryHandler(dir), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	hc := &http.Client{Timeout: 10 * time.Second} // bounds the test's wait only
	get := func(path string) int {
		resp, err := hc.Get("http://" + ln.Addr().String() + path)
		if err != nil {
			t.Errorf("GET %s: %v", path, err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/root.json"); code != http.StatusOK {
		t.Fatalf("a regular file: %d", code)
	}
	threads := pprof.Lookup("threadcreate")
	threadsBefore, goroutinesBefore := threads.Count(), runtime.NumGoroutine()

	const requests = 20
	var wg sync.WaitGroup
	for i := range requests {
		wg.Go(func() {
			path := "/fifo.json"
			if i%2 == 1 {
				path = "/link.json"
			}
			if code := get(path); code != http.StatusNotFound {
				t.Errorf("GET %s: %d, want 404", path, code)
			}
		})
	}
	wg.Wait()
	hc.CloseIdleConnections()
	if grown := threads.Count() - threadsBefore; grown >= requests/2 {
		t.Errorf("%d requests for a FIFO created %d OS threads", requests, grown)
	}
	// The server's connection goroutines end once the client's idle
	// connections are closed; none stays blocked in a handler.
	goroutines := runtime.NumGoroutine()
	for range 100 {
		if goroutines <= goroutinesBefore+2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
		goroutines = runtime.NumGoroutine()
	}
	if goroutines > goroutinesBefore+2 {
		t.Errorf("%d goroutines after the requests, %d before", goroutines, goroutinesBefore)
	}
}
