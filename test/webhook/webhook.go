// Package webhook runs `signet serve` in-process as a test cluster's
// admission webhook. It is apart from test/harness so that the CLI's own
// tests can use the harness.
package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/test/harness"
)

// Webhook is signet serve running in this process as the cluster's
// validating and mutating admission webhook.
type Webhook struct {
	// Addr is the loopback address it serves on.
	Addr   string
	mu     sync.Mutex
	logs   bytes.Buffer
	client *http.Client
}

// Get fetches an endpoint (such as /metrics) over HTTPS, trusting signet's CA.
func (w *Webhook) Get(path string) (string, error) {
	resp, err := w.client.Get("https://" + w.Addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.String(), err
}

// Logs returns what signet serve logged so far.
func (w *Webhook) Logs() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.logs.String()
}

type lockedWriter struct{ w *Webhook }

func (l lockedWriter) Write(p []byte) (int, error) {
	l.w.mu.Lock()
	defer l.w.mu.Unlock()
	return l.w.logs.Write(p)
}

// WebhookRules are the kinds signet admits, as in deploy/manifests.
var WebhookRules = []admissionregistrationv1.RuleWithOperations{
	{Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"}}},
	{Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments", "replicasets", "statefulsets", "daemonsets"}}},
	{Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"batch"}, APIVersions: []string{"v1"}, Resources: []string{"jobs", "cronjobs"}}},
	{Operations: []admissionregistrationv1.OperationType{"CREATE", "UPDATE"}, Rule: admissionregistrationv1.Rule{APIGroups: []string{"pkg.crossplane.io"}, APIVersions: []string{"*"}, Resources: []string{"providers", "configurations", "functions"}}},
}

// Start registers webhook configurations named "signet" that call a
// loopback address, starts `signet serve` there against the cluster with
// the extra flags given, and waits until it is ready. signet injects its
// self-generated CA into the configurations, as in a real deployment.
func Start(t testing.TB, c *harness.Cluster, flags ...string) *Webhook {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &Webhook{Addr: addr}

	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(15)
	exclude := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "signet-system"}}}}
	url := func(path string) *string { u := "https://" + addr + path; return &u }
	placeholder := []byte("placeholder") // replaced by signet serve
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "signet"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{{
		Name: "validate.signet.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: url("/validate"), CABundle: placeholder},
		Rules: WebhookRules, FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, NamespaceSelector: exclude,
	}}}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "signet"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{
		Name: "mutate.signet.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: url("/mutate"), CABundle: placeholder},
		Rules: WebhookRules, FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, NamespaceSelector: exclude,
	}}}
	for _, obj := range []client.Object{vwc, mwc} {
		if err := c.Client.Create(t.Context(), obj); err != nil {
			t.Fatalf("registering the webhook: %v", err)
		}
	}
	// signet's own namespace, as a deployment has it (its Lease and TLS
	// Secret live there).
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "signet-system"}}
	if err := c.Client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating signet-system: %v", err)
	}

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	args := append([]string{"serve", "--listen", addr, "--kubeconfig", c.Kubeconfig, "--ca-out", caFile, "--shutdown-delay=0",
		"--validating-webhook", "signet", "--mutating-webhook", "signet", "--namespace", "signet-system"}, flags...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- server.Execute(ctx, args, lockedWriter{w}, lockedWriter{w}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("signet serve did not stop")
		}
	})

	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case code := <-done:
			t.Fatalf("signet serve exited with %d:\n%s", code, w.Logs())
		default:
		}
		if ca, err := os.ReadFile(caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			if resp, err := hc.Get("https://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					w.client = hc
					return w
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("signet serve did not become ready:\n%s", w.Logs())
	return nil
}
