package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Told to stop (SIGTERM), serve leaves rotation before it stops serving:
// /readyz answers 503 at once; for --shutdown-delay it goes on answering
// admissions, each closing its connection; then the listener closes, and
// a request already in flight is still answered before the process exits.
func TestStopLeavesRotationFirst(t *testing.T) {
	const delay = 1500 * time.Millisecond
	s := startServe(t, "--shutdown-delay="+delay.String(), "--log-level=info")

	// A request in flight: headers and half of the body sent.
	held := s.dial(t)
	defer held.Close()
	head := fmt.Sprintf("POST /validate HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", s.addr, len(podReview))
	half := len(podReview) / 2
	if _, err := io.WriteString(held, head+podReview[:half]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server read the headers

	stopped := time.Now()
	s.stop()

	// Out of rotation at once, still serving.
	fresh := func() *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: s.tls.Clone()}}
	}
	deadline := time.Now().Add(time.Second)
	for {
		resp, err := fresh().Get("https://" + s.addr + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during the delay: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "shutting down") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still answers %d %q after the stop", resp.StatusCode, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := fresh().Post("https://"+s.addr+"/validate", "application/json", strings.NewReader(podReview))
	if err != nil {
		t.Fatalf("an admission during the delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !resp.Close {
		t.Errorf("an admission during the delay: %d, Connection: close %v; want 200 closing its connection", resp.StatusCode, resp.Close)
	}

	// After the delay the listener is closed.
	for {
		c, err := tls.Dial("tcp", s.addr, s.tls)
		if err != nil {
			break
		}
		c.Close()
		if time.Since(stopped) > delay+2*time.Second {
			t.Fatalf("still accepting %s after the stop (--shutdown-delay %s)", time.Since(stopped), delay)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if since := time.Since(stopped); since < delay {
		t.Errorf("stopped accepting %s after the stop, before --shutdown-delay %s", since, delay)
	}

	// The request in flight is answered.
	if _, err := io.WriteString(held, podReview[half:]); err != nil {
		t.Fatalf("finishing the request in flight: %v", err)
	}
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := http.ReadResponse(bufio.NewReader(held), nil)
	if err != nil {
		t.Fatalf("the request in flight was not answered: %v", err)
	}
	answer.Body.Close()
	if answer.StatusCode != http.StatusOK {
		t.Errorf("the request in flight: %d", answer.StatusCode)
	}

	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		t.Fatal("serve did not exit after draining")
	}
	if s.code != 0 {
		t.Errorf("exit code %d:\n%s", s.code, s.logs)
	}
	if !strings.Contains(s.logs.String(), "stopping: /readyz answers 503") {
		t.Errorf("the stop is not logged:\n%s", s.logs)
	}
}
