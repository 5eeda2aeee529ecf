package listener

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serve serves h with limits l on a loopback port until the test ends.
func serve(t *testing.T, h http.Handler, l Limits) string {
	t.Helper()
	ln, err := Listen(context.Background(), "127.0.0.1:0", l.MaxConns)
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, l)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

func get(addr string) (*http.Response, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return c.Get("http://" + addr + "/")
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// Connections over MaxConns are closed as soon as they are accepted; a
// slot comes back when its connection closes.
func TestMaxConns(t *testing.T) {
	addr := serve(t, ok, Limits{MaxConns: 3})
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// A fourth connection is accepted and closed at once: its request gets
	// no answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second)) // bounds the test's wait only
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		resp.Body.Close()
		t.Fatalf("a connection over the limit was served: %d", resp.StatusCode)
	}
	c.Close()
	held[0].Close()
	// The slot comes back (the close is seen by the server asynchronously).
	var resp *http.Response
	for range 100 {
		if resp, err = get(addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("no slot after a connection closed: %v", err)
	}
	resp.Body.Close()
	for _, c := range held[1:] {
		c.Close()
	}
}

// Over the in-flight limit, a request is answered 503 with Retry-After at
// once, its body unread.
func TestLimitInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 2)
	h := LimitInFlight(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	}), 2, 0)
	addr := serve(t, h, Limits{})
	done := make(chan error, 2)
	for range 2 {
		go func() {
			resp, err := get(addr)
			if err == nil {
				resp.Body.Close()
			}
			done <- err
		}()
	}
	<-entered
	<-entered
	resp, err := get(addr)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" || !strings.Contains(string(body), "signet is busy: 2 requests in flight") {
		t.Errorf("over the limit: %d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	close(release)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	resp, err = get(addr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("after the requests ended: %d", resp.StatusCode)
	}
}

// A body that does not arrive within ReadTimeout ends the read; once a
// body has been read, the handler's context outlives the timeout.
func TestBodyTimeout(t *testing.T) {
	const d = 200 * time.Millisecond
	results := make(chan string, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if err != nil {
			results <- "read: " + err.Error()
			return
		}
		select {
		case <-r.Context().Done():
			results <- "context cancelled while working"
		case <-time.After(3 * d): // work past the body timeout
			results <- "done"
		}
		_, _ = io.WriteString(w, "ok")
	})
	addr := serve(t, h, Limits{ReadTimeout: d, ReadHeaderTimeout: d})
	for _, tc := range []struct {
		name string
		body string // sent after the headers of a 10-byte body
		want string
	}{
		{"whole body", "0123456789", "done"},
		{"body never sent", "01", "read: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n%s", tc.body)
			select {
			case got := <-results:
				if !strings.HasPrefix(got, tc.want) {
					t.Errorf("handler: %q, want %q", got, tc.want)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the handler neither finished nor timed out")
			}
			if tc.want == "done" {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					t.Fatalf("answer: %v", err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("answer: %s", resp.Status)
				}
			}
		})
	}
}

func TestLimitsValidate(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{}, ""},
		{Limits{MaxConns: -1}, "most connections -1: must be positive"},
		{Limits{MaxBodyBytes: -1}, "most body bytes -1: must be positive"},
		{Limits{ReadTimeout: -time.Second}, "timeouts must be positive"},
	} {
		err := tc.l.Validate()
		if (err == nil) != (tc.want == "") || (err != nil && err.Error() != tc.want) {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
}

// A request over the limit waits for a slot: served when one frees within
// the wait (a burst a little over the limit is not refused), answered 503
// when none does.
func TestLimitInFlightWaitsForASlot(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 3)
	h := LimitInFlight(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		entered <- struct{}{}
		<-release
		_, _ = io.WriteString(w, "ok")
	}), 1, time.Hour)
	addr := serve(t, h, Limits{})
	codes := make(chan int, 2)
	for range 2 {
		go func() {
			resp, err := get(addr)
			if err != nil {
				codes <- 0
				return
			}
			_ = resp.Body.Close()
			codes <- resp.StatusCode
		}()
	}
	<-entered // one is served, the other waits
	select {
	case <-entered:
		t.Fatal("two requests served at once with a limit of one")
	case code := <-codes:
		t.Fatalf("a request over the limit was answered %d instead of waiting", code)
	case <-time.After(200 * time.Millisecond):
	}
	release <- struct{}{} // the first ends; the waiting one gets its slot
	<-entered
	close(release)
	for range 2 {
		if code := <-codes; code != http.StatusOK {
			t.Errorf("answer %d, want 200", code)
		}
	}

	// With no slot freed within the wait, the answer is 503.
	hold, held := make(chan struct{}), make(chan struct{}, 1)
	defer close(hold)
	short := LimitInFlight(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		held <- struct{}{}
		<-hold
	}), 1, 50*time.Millisecond)
	addr = serve(t, short, Limits{})
	go func() {
		if resp, err := get(addr); err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-held
	resp, err := get(addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("no slot within the wait: %d, want 503 with Retry-After", resp.StatusCode)
	}
}
