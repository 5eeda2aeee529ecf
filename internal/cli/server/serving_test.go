package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/clitest"
)

const passPolicy = `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: pass
spec:
  images: [{glob: "registry.example.org/**"}]
  digest: none
  authorities:
    - static: {action: pass}
`

const podReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{"username":"alice"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}}}}`

// served is a signet serve running in-process on a loopback port.
type served struct {
	addr string
	tls  *tls.Config // trusts the self-generated CA
	logs *lockedBuffer
	// stop tells serve to stop, as SIGTERM does; exited is closed when it
	// has, with its exit code in code.
	stop   context.CancelFunc
	exited chan struct{}
	code   int
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe runs signet serve --policies (a static pass policy) with
// extra flags, and waits until it answers /readyz.
func startServe(t *testing.T, flags ...string) *served {
	t.Helper()
	dir := t.TempDir()
	policies := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policies, []byte(passPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	caFile := filepath.Join(dir, "ca.pem")
	args := append([]string{"serve", "--policies", policies, "--listen", addr, "--ca-out", caFile, "--log-level", "error", "--shutdown-delay=0"}, flags...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &served{addr: addr, logs: &lockedBuffer{}, stop: cancel, exited: make(chan struct{})}
	go func() { s.code = Execute(ctx, args, s.logs, s.logs); close(s.exited) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.exited:
		case <-time.After(20 * time.Second):
			t.Errorf("signet serve did not stop")
		}
	})
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-s.exited:
			t.Fatalf("signet serve exited with %d:\n%s", s.code, s.logs)
		default:
		}
		ca, err := os.ReadFile(caFile)
		if err != nil {
			continue
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		s.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
		if resp, err := s.client(nil).Get("https://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
	}
	t.Fatalf("signet serve did not become ready:\n%s", s.logs)
	return nil
}

// client is an HTTPS client of s, presenting cert when given.
func (s *served) client(cert *tls.Certificate) *http.Client {
	cfg := s.tls.Clone()
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
}

// review posts an AdmissionReview and returns the status and, on 200, the
// response.
func (s *served) review(t *testing.T, c *http.Client, body string) (int, *admissionv1.AdmissionResponse) {
	t.Helper()
	resp, err := c.Post("https://"+s.addr+"/validate", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("posting a review: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &review); err != nil || review.Response == nil {
		t.Fatalf("answer is not an AdmissionReview: %v: %s", err, data)
	}
	return resp.StatusCode, review.Response
}

// dial opens a TLS connection to s and finishes the handshake.
func (s *served) dial(t *testing.T) *tls.Conn {
	t.Helper()
	c, err := tls.Dial("tcp", s.addr, s.tls)
	if err != nil {
		t.Fatalf("dialling signet serve: %v", err)
	}
	return c
}

func heapInuse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestServeBoundsMemoryThroughThePort: 200 clients that send the headers of
// a 7 MiB review and nothing more, and 5 that send 7 MiB of a 100 MiB review
// and stall, hold little heap (it was 7 MiB per client, taken from
// Content-Length before any byte arrived), while a normal review, /healthz
// and /metrics are answered; and the slow clients are cut off by the body
// deadline, not left waiting.
func TestServeBoundsMemoryThroughThePort(t *testing.T) {
	const (
		slow      = 200
		oversized = 5
		budget    = 16 << 20
		// Bodies held: at most the budget, in buffers at most twice what
		// they hold; each connection (both ends are in this process: TLS
		// state, buffers, goroutines) well under 64 KiB.
		bound = 2*budget + (slow+oversized)*(64<<10)
	)
	s := startServe(t, "--max-in-flight", "256", "--max-in-flight-bytes", fmt.Sprint(budget))
	payload := bytes.Repeat([]byte("a"), 7<<20) // shared by the oversized clients
	before := heapInuse()

	var conns []*tls.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	for range slow {
		c := s.dial(t)
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /validate HTTP/1.1\r\nHost: signet\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 7<<20)
	}
	var wg sync.WaitGroup
	for range oversized {
		c := s.dial(t)
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /validate HTTP/1.1\r\nHost: signet\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", 100<<20)
		wg.Go(func() { _, _ = c.Write(payload) }) // ends when the server stops reading or closes
	}

	wg.Wait() // each oversized body is read as far as the budget lets it
	grown := int64(heapInuse()) - int64(before)
	if grown > bound {
		t.Errorf("%d slow and %d oversized clients grew the heap by %d bytes, more than %d", slow, oversized, grown, bound)
	}
	t.Logf("%d slow and %d oversized clients grew the heap by %d bytes (bound %d)", slow, oversized, grown, bound)

	// Meanwhile a normal review is decided, and the other endpoints answer.
	hc := s.client(nil)
	if code, resp := s.review(t, hc, podReview); code != http.StatusOK || !resp.Allowed || resp.UID != "u-1" {
		t.Fatalf("a normal review during the attack: %d %+v", code, resp)
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := hc.Get("https://" + s.addr + path)
		if err != nil {
			t.Fatalf("%s during the attack: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s during the attack: %d", path, resp.StatusCode)
		}
	}

	// Every slow client is answered (a denial: its body never came) or
	// dropped once the body deadline passes; none is left waiting. The read
	// deadline here only bounds the test's own wait.
	for i, c := range conns[:slow] {
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var ne net.Error
		if _, err := io.ReadAll(c); errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("slow client %d still waits for its body after 30s", i)
		}
	}
}

// An admission request over --max-in-flight is answered 503 at once, with
// Retry-After, and the slot comes back when the request ends.
func TestServeMaxInFlight(t *testing.T) {
	s := startServe(t, "--max-in-flight", "2")
	var conns []*tls.Conn
	for range 2 {
		c := s.dial(t)
		defer c.Close()
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /validate HTTP/1.1\r\nHost: signet\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", len(podReview))
	}
	hc := s.client(nil)
	// The two slow requests hold both slots once their handlers run; poll
	// until the server says so.
	var code int
	for range 100 {
		if code, _ = s.review(t, hc, podReview); code == http.StatusServiceUnavailable {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code != http.StatusServiceUnavailable {
		t.Fatalf("a third request while two are in flight: %d, want 503", code)
	}
	for _, c := range conns {
		_, _ = io.WriteString(c, podReview[1:])
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("a slow request, once sent: %v", err)
		}
		_ = resp.Body.Close()
	}
	if code, resp := s.review(t, hc, podReview); code != http.StatusOK || !resp.Allowed {
		t.Fatalf("after the slow requests ended: %d %+v", code, resp)
	}
}

// With --client-ca-file, /validate and /mutate answer only clients with a
// certificate signed by that CA; the probes and /metrics answer anyone.
func TestServeClientCA(t *testing.T) {
	caPEM, good := clientCert(t)
	_, other := clientCert(t) // signed by another CA
	caFile := clitest.WriteTemp(t, "client-ca.pem", caPEM)
	s := startServe(t, "--client-ca-file", caFile)
	for _, tc := range []struct {
		name string
		cert *tls.Certificate
		path string
		want int
	}{
		{"validate with the CA's certificate", &good, "/validate", http.StatusOK},
		{"mutate with the CA's certificate", &good, "/mutate", http.StatusOK},
		{"validate without a certificate", nil, "/validate", http.StatusUnauthorized},
		{"mutate without a certificate", nil, "/mutate", http.StatusUnauthorized},
		{"healthz without a certificate", nil, "/healthz", http.StatusOK},
		{"metrics without a certificate", nil, "/metrics", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.client(tc.cert).Post("https://"+s.addr+tc.path, "application/json", strings.NewReader(podReview))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	// A certificate from another CA fails the handshake.
	if resp, err := s.client(&other).Post("https://"+s.addr+"/validate", "application/json", strings.NewReader(podReview)); err == nil {
		resp.Body.Close()
		t.Errorf("a certificate of another CA was accepted: %d", resp.StatusCode)
	}
}

func TestServingFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--max-in-flight", "0"}, "--max-in-flight 0: must be at least 1"},
		{[]string{"--max-in-flight-bytes", "1024"}, "--max-in-flight-bytes 1024: must be at least"},
		{[]string{"--max-connections", "-1"}, "--max-connections -1: must be at least 1"},
	} {
		_, stderr, code := runServer(t, append([]string{"serve"}, tc.args...)...)
		if code == 0 || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want %q", tc.args, code, stderr, tc.want)
		}
	}
	caFile := clitest.WriteTemp(t, "empty.pem", []byte("not a certificate"))
	_, stderr, code := runServer(t, "serve", "--policies", clitest.WriteTemp(t, "p.yaml", []byte(passPolicy)), "--listen", "127.0.0.1:0", "--client-ca-file", caFile)
	if code == 0 || !strings.Contains(stderr, "--client-ca-file "+caFile+": no PEM certificate in it") {
		t.Errorf("--client-ca-file without certificates: exit %d, stderr %q", code, stderr)
	}
}

// clientCert makes a CA and a client certificate it signs.
func clientCert(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "client CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// With --metrics-listen, /metrics is served there in plain HTTP, with the
// policy results of the admissions, and no longer on the HTTPS port; the
// metrics listener keeps its bounds (connections, header size).
func TestServeMetricsListen(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	s := startServe(t, "--metrics-listen", maddr)
	hc := s.client(nil)
	if code, resp := s.review(t, hc, podReview); code != http.StatusOK || !resp.Allowed {
		t.Fatalf("review: %d %+v", code, resp)
	}
	resp, err := hc.Get("https://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics on the HTTPS port: %d, want 404", resp.StatusCode)
	}

	plain := &http.Client{Timeout: 10 * time.Second}
	resp, err = plain.Get("http://" + maddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics on --metrics-listen: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`signet_admission_policy_results_total{policy="ClusterImagePolicy pass",result="pass"} 1`,
		`signet_admission_duration_seconds_count{decision="allowed",kind="Pod"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, path := range []string{"/validate", "/healthz"} {
		resp, err := plain.Get("http://" + maddr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s on --metrics-listen: %d, want 404", path, resp.StatusCode)
		}
	}

	// Headers over 16 KiB are refused.
	req, _ := http.NewRequest(http.MethodGet, "http://"+maddr+"/metrics", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 32<<10))
	if resp, err := plain.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("32 KiB of headers: %d, want 431", resp.StatusCode)
		}
	}

	// A connection over metricsMaxConns is closed at once.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range metricsMaxConns {
		c, err := net.Dial("tcp", maddr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	extra, err := net.Dial("tcp", maddr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(extra, "GET /metrics HTTP/1.1\r\nHost: signet\r\n\r\n")
	var ne net.Error
	if n, err := extra.Read(make([]byte, 1)); n > 0 || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("connection %d was served (read %d bytes, %v), want it closed", metricsMaxConns+1, n, err)
	}
}

func TestServeMetricsListenFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--metrics-listen", "9090"}, `--metrics-listen "9090": want HOST:PORT or :PORT`},
		{[]string{"--listen", ":8443", "--metrics-listen", ":8443"}, "--metrics-listen :8443 is --listen's address"},
	} {
		_, stderr, code := runServer(t, append([]string{"serve"}, tc.args...)...)
		if code != cli.ExitUndecided || !strings.Contains(stderr, tc.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
}
