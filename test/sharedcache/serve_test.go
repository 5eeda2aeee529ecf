package sharedcache

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/test/clitest"
)

// TestServeSharesResults: two `signet serve` processes (replicas) with
// --shared-cache on the real redis-server, the password and the key in
// files: the second admits a Pod the first verified without a request for
// evidence, and says so in its metrics. serve refuses a shared cache
// without a key, or with a short one.
func TestServeSharesResults(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	policies := write("policies.yaml", fmt.Sprintf("apiVersion: signet.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: signed\nspec:\n  images:\n    - glob: %q\n  authorities:\n    - name: ci\n      insecureIgnoreTlog: true\n      key:\n        data: |\n%s",
		w.proxy.Host+"/**", "          "+strings.ReplaceAll(strings.TrimSpace(string(w.pub)), "\n", "\n          ")+"\n"))
	keyFile := write("key", string(w.macKey)+"\n")
	passwordFile := write("password", w.redis.Password+"\n")
	flags := []string{"--policies", policies, "--shared-cache", w.redis.URL(), "--shared-cache-key-file", keyFile, "--shared-cache-password-file", passwordFile}

	a, b := startServe(t, flags...), startServe(t, flags...)
	before := w.proxy.evidence()
	if allowed, msg := a.admit(t, w.signed); !allowed {
		t.Fatalf("replica A denied %s: %s\n%s", w.signed, msg, a.logs.String())
	}
	if w.proxy.evidence() == before {
		t.Fatal("replica A made no evidence request")
	}
	before = w.proxy.evidence()
	if allowed, msg := b.admit(t, w.signed); !allowed {
		t.Fatalf("replica B denied %s: %s\n%s", w.signed, msg, b.logs.String())
	}
	if n := w.proxy.evidence() - before; n != 0 {
		t.Errorf("replica B made %d evidence requests for an image A verified", n)
	}
	if allowed, msg := b.admit(t, w.unsigned); allowed || !strings.Contains(msg, "no signature found") {
		t.Errorf("replica B on the unsigned image: allowed %v, %q", allowed, msg)
	}
	metrics := b.get(t, "/metrics")
	for _, want := range []string{"signet_shared_cache_hits_total 1", "signet_shared_cache_writes_total 1", "signet_shared_cache_invalid_total 0", "signet_shared_cache_errors_total 0"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("replica B's metrics lack %q", want)
		}
	}
	for _, s := range []*serve{a, b} {
		if strings.Contains(s.logs.String(), w.redis.Password) || strings.Contains(s.logs.String(), string(w.macKey)) {
			t.Error("a secret is in serve's log")
		}
	}

	short := write("short", "too short")
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--shared-cache", w.redis.URL()}, "--shared-cache needs --shared-cache-key-file"},
		{[]string{"--shared-cache", w.redis.URL(), "--shared-cache-key-file", short}, "fewer than 32"},
		{[]string{"--shared-cache-key-file", keyFile}, "need --shared-cache"},
		{[]string{"--shared-cache", "redis://:pw@" + w.redis.Addr, "--shared-cache-key-file", keyFile, "--shared-cache-password-file", passwordFile}, "not both"},
		{[]string{"--shared-cache", w.redis.URL(), "--shared-cache-key-file", keyFile, "--shared-cache-timeout", "30s"}, "below --decision-timeout"},
	} {
		r := clitest.Run(t, server.Execute, append([]string{"serve", "--policies", policies, "--listen", "127.0.0.1:0"}, tc.flags...)...)
		if r.Code == 0 || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("serve %q: exit %d, %q; want it refused saying %q", tc.flags, r.Code, r.Stderr, tc.want)
		}
	}
}

// serve is `signet serve` running in this process.
type serve struct {
	addr   string
	client *http.Client
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startServe(t *testing.T, flags ...string) *serve {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	args := append([]string{"serve", "--listen", addr, "--ca-out", caFile, "--allow-http-registry", "--shutdown-delay=0"}, flags...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &serve{addr: addr, logs: &syncBuffer{}}
	done := make(chan int, 1)
	go func() { done <- server.Execute(ctx, args, io.Discard, s.logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("signet serve did not stop")
		}
	})
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("signet serve exited with %d:\n%s", code, s.logs.String())
		default:
		}
		if ca, err := os.ReadFile(caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			s.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
			if resp, err := s.client.Get("https://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return s
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("signet serve did not become ready:\n%s", s.logs.String())
	return nil
}

func (s *serve) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := s.client.Get("https://" + s.addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// admit sends the AdmissionReview of a Pod running image and returns the
// answer: allowed, and the message.
func (s *serve) admit(t *testing.T, image string) (bool, string) {
	t.Helper()
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: image}}}}
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	review := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &admissionv1.AdmissionRequest{
		UID: "uid", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Name: pod.Name, Namespace: "default", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}}
	body, err := json.Marshal(review)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := s.client.Post("https://"+s.addr+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Response == nil {
		t.Fatalf("the answer to an admission of %s (HTTP %d): %v", image, resp.StatusCode, err)
	}
	msg := ""
	if out.Response.Result != nil {
		msg = out.Response.Result.Message
	}
	return out.Response.Allowed, msg
}
