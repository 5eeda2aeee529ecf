package bench

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
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	signetserver "github.com/signet-dev/signet/internal/cli/server"
)

// server is an HTTPS admission endpoint and a client that trusts it. Both
// signet and the floor are reached over HTTP/1.1 with keep-alive, through
// the same load generator.
type server struct {
	url    string
	client *http.Client
	logs   *syncBuffer
}

// syncBuffer keeps the last logs of signet serve (about 256 KiB), as a
// log pipe would take them away.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

const keptLogBytes = 256 << 10

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 2*keptLogBytes {
		s.b.Next(s.b.Len() - keptLogBytes)
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
	}}
}

// startSignet runs `signet serve --policies DIR` in this process on a
// loopback port, with the extra flags given, and waits until it is ready.
func startSignet(tb testing.TB, policies string, flags ...string) *server {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	args := append([]string{"serve", "--listen", addr, "--policies", policies, "--ca-out", caFile, "--allow-http-registry", "--shutdown-delay=0"}, flags...)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- signetserver.Execute(ctx, args, io.Discard, logs) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			tb.Errorf("signet serve did not stop")
		}
	})
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			tb.Fatalf("signet serve exited with %d:\n%s", code, logs.String())
		default:
		}
		if ca, err := os.ReadFile(caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			s := &server{url: "https://" + addr + "/validate", client: newClient(pool), logs: logs}
			if resp, err := s.client.Get("https://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("signet serve did not become ready:\n%s", logs.String())
	return nil
}

// startFloor is the floor of any admission webhook: an HTTPS server with
// the same TLS and HTTP settings as signet serve that only decodes the
// AdmissionReview and allows it.
func startFloor(tb testing.TB) *server {
	tb.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(io.LimitReader(r.Body, 8<<20)).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "malformed AdmissionReview", http.StatusBadRequest)
			return
		}
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		review.Request = nil
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review)
	}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}
	srv.StartTLS()
	tb.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return &server{url: srv.URL + "/validate", client: newClient(pool)}
}

// podReview is an AdmissionReview of a Pod CREATE with one container per image.
func podReview(uid, namespace string, images ...string) []byte {
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "bench-" + uid, Namespace: namespace,
		Labels: map[string]string{"app": "bench", "tier": "web"}, Annotations: map[string]string{"bench.signet.dev/note": strings.Repeat("x", 64)}}}
	for i, im := range images {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: im,
			Args: []string{"--port", "8080"}, Env: []corev1.EnvVar{{Name: "MODE", Value: "bench"}}})
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		panic(err) // static types
	}
	review := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &admissionv1.AdmissionRequest{
		UID: types.UID(uid), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Name: pod.Name, Namespace: namespace, Operation: admissionv1.Create, UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:kube-system:replicaset-controller"}, Object: runtime.RawExtension{Raw: raw},
	}}
	out, err := json.Marshal(review)
	if err != nil {
		panic(err)
	}
	return out
}

// post sends one AdmissionReview and returns the response.
func (s *server) post(ctx context.Context, body []byte) (*admissionv1.AdmissionResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
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
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
		return nil, err
	}
	if review.Response == nil {
		return nil, errors.New("AdmissionReview without a response")
	}
	return review.Response, nil
}

// load is what one run of the load generator measured.
type load struct {
	concurrency int
	n           int
	errors      int
	elapsed     time.Duration
	latencies   []time.Duration // sorted
	firstErr    error
}

func (l load) throughput() float64 { return float64(l.n) / l.elapsed.Seconds() }

func (l load) quantile(q float64) time.Duration {
	if len(l.latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(l.latencies)))
	return l.latencies[min(i, len(l.latencies)-1)]
}

// drive runs the load generator: concurrency workers send requests back to
// back until total requests were sent or d passed, whichever comes first
// (total 0: no count bound). request(i) is the i-th body; check judges its
// answer (an error counts as a failed request).
func drive(s *server, concurrency, total int, d time.Duration, request func(i int) []byte, check func(i int, r *admissionv1.AdmissionResponse) error) load {
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	var (
		next     atomic.Int64
		mu       sync.Mutex
		out      = load{concurrency: concurrency}
		wg       sync.WaitGroup
		deadline = time.Now().Add(d)
	)
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			var firstErr error
			for time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if total > 0 && i >= total {
					break
				}
				t0 := time.Now()
				resp, err := s.post(ctx, request(i))
				if err == nil && check != nil {
					err = check(i, resp)
				}
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = fmt.Errorf("request %d: %w", i, err)
					}
				}
			}
			mu.Lock()
			out.latencies = append(out.latencies, lat...)
			out.errors += errs
			if out.firstErr == nil {
				out.firstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	out.elapsed = time.Since(start)
	out.n = len(out.latencies)
	slices.Sort(out.latencies)
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
