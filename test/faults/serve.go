package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/internal/cli/server"
)

// childEnv makes the test binary run `signet serve` with the arguments it
// holds (JSON) instead of its tests; gcEnv names the file the child writes
// after each garbage collection SIGUSR1 asks for.
const (
	childEnv = "SIGNET_FAULTS_SERVE_CHILD"
	gcEnv    = "SIGNET_FAULTS_SERVE_GC"
)

// ChildMain runs `signet serve` when this process is the child Serve
// started, and reports its exit code and true; otherwise it returns at once
// with false. Call it first in TestMain.
func ChildMain() (int, bool) {
	encoded := os.Getenv(childEnv)
	if encoded == "" {
		return 0, false
	}
	var args []string
	if err := json.Unmarshal([]byte(encoded), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2, true
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		n := 0
		for range usr1 {
			// Twice: finalizers of the first cycle free more in the second.
			runtime.GC()
			runtime.GC()
			debug.FreeOSMemory()
			n++
			path := os.Getenv(gcEnv)
			// G703: the path is the parent's temporary file, given to its own child.
			if err := os.WriteFile(path+".tmp", []byte(strconv.Itoa(n)), 0o600); err == nil { //nolint:gosec // G703: see above
				_ = os.Rename(path+".tmp", path) //nolint:gosec // G703: see above
			}
		}
	}()
	return server.Execute(ctx, args, os.Stdout, os.Stderr), true
}

// Serve is `signet serve` running in a child process (the test binary,
// through ChildMain), as it runs in a cluster: its goroutines and heap are
// its own.
type Serve struct {
	// Addr is the loopback address of its HTTPS listener.
	Addr   string
	client *http.Client
	cmd    *exec.Cmd
	logs   *logBuffer
	gcFile string
	gcs    int
	done   chan struct{}
}

// StartServe starts `signet serve --listen ... --ca-out ...` with the flags
// given and waits until it is ready; it is stopped when the test ends.
func StartServe(tb testing.TB, flags ...string) *Serve {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := tb.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	args, err := json.Marshal(append([]string{"serve", "--listen", addr, "--ca-out", caFile, "--shutdown-delay=0"}, flags...))
	if err != nil {
		tb.Fatal(err)
	}
	s := &Serve{Addr: addr, logs: &logBuffer{}, gcFile: filepath.Join(dir, "gc"), done: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], "-test.run", "^$") //nolint:gosec // G204: the test binary itself, as the child ChildMain runs
	s.cmd.Env = append(os.Environ(), childEnv+"="+string(args), gcEnv+"="+s.gcFile)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	if err := s.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	tb.Cleanup(s.stop)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			tb.Fatalf("signet serve exited: %v\n%s", s.cmd.ProcessState, s.logs)
		default:
		}
		if ca, err := os.ReadFile(caFile); err == nil { //nolint:gosec // G304: the file the child wrote in our temporary directory
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			s.client = &http.Client{Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
				MaxIdleConnsPerHost: 64,
			}}
			if resp, err := s.client.Get("https://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("signet serve did not become ready:\n%s", s.logs)
	return nil
}

// stop ends the child with SIGTERM, or kills it after 15 seconds.
func (s *Serve) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Logs is the end of what the child wrote.
func (s *Serve) Logs() string { return s.logs.String() }

// CloseIdle closes the test's idle connections to the child, so that
// they hold none of its goroutines.
func (s *Serve) CloseIdle() { s.client.CloseIdleConnections() }

// Post sends one AdmissionReview to /validate and returns the response.
func (s *Serve) Post(ctx context.Context, review []byte) (*admissionv1.AdmissionResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+s.Addr+"/validate", bytes.NewReader(review))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Response == nil {
		return nil, errors.New("AdmissionReview without a response")
	}
	return out.Response, nil
}

// Resources is what the child's /metrics says of it.
type Resources struct {
	// Goroutines is go_goroutines.
	Goroutines float64
	// HeapInuse is go_memstats_heap_inuse_bytes, after a garbage collection.
	HeapInuse float64
}

func (r Resources) String() string {
	return fmt.Sprintf("%.0f goroutines, heap in use %.1f MiB", r.Goroutines, r.HeapInuse/(1<<20))
}

// Resources makes the child collect garbage, then reads its /metrics.
func (s *Serve) Resources(tb testing.TB) Resources {
	tb.Helper()
	s.gcs++
	if err := s.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		data, err := os.ReadFile(s.gcFile)
		if err == nil && string(data) == strconv.Itoa(s.gcs) {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("signet serve did not collect garbage when asked:\n%s", s.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := s.client.Get("https://" + s.Addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return Resources{Goroutines: metric(tb, body, "go_goroutines"), HeapInuse: metric(tb, body, "go_memstats_heap_inuse_bytes")}
}

// metric is the value of an unlabelled metric in a /metrics page.
func metric(tb testing.TB, page []byte, name string) float64 {
	tb.Helper()
	for _, line := range strings.Split(string(page), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				tb.Fatalf("/metrics: %q: %v", line, err)
			}
			return v
		}
	}
	tb.Fatalf("/metrics has no %s", name)
	return 0
}

// logBuffer keeps the last 256 KiB the child wrote.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - 256<<10; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
