package ha

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/webhook"
)

// registerWebhooks makes the API server call the front, as deploy/manifests
// configure it (failurePolicy Fail), with a placeholder CA the replicas
// replace.
func registerWebhooks(t *testing.T, cluster *harness.Cluster, addr string) {
	t.Helper()
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	timeout := int32(webhookTimeout)
	exclude := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "signet-system"}}}}
	url := func(path string) *string { u := "https://" + addr + path; return &u }
	placeholder := []byte("placeholder")
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "signet"}, Webhooks: []admissionregistrationv1.ValidatingWebhook{{
		Name: "validate.signet.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: url("/validate"), CABundle: placeholder},
		Rules: webhook.WebhookRules, FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, NamespaceSelector: exclude,
	}}}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "signet"}, Webhooks: []admissionregistrationv1.MutatingWebhook{{
		Name: "mutate.signet.dev", ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: url("/mutate"), CABundle: placeholder},
		Rules: webhook.WebhookRules, FailurePolicy: &fail, SideEffects: &none, TimeoutSeconds: &timeout, AdmissionReviewVersions: []string{"v1"}, NamespaceSelector: exclude,
	}}}
	for _, obj := range []client.Object{vwc, mwc} {
		if err := cluster.Client.Create(t.Context(), obj); err != nil {
			t.Fatalf("registering the webhook: %v", err)
		}
	}
}

// caBundle is the CA bundle the validating webhook configuration trusts.
func caBundle(t *testing.T, cluster *harness.Cluster) *x509.CertPool {
	t.Helper()
	var vwc admissionregistrationv1.ValidatingWebhookConfiguration
	if err := cluster.Client.Get(t.Context(), client.ObjectKey{Name: "signet"}, &vwc); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(vwc.Webhooks[0].ClientConfig.CABundle) {
		t.Fatalf("the webhook configuration trusts no CA: %q", vwc.Webhooks[0].ClientConfig.CABundle)
	}
	return pool
}

func leaseHolder(t *testing.T, c client.Client) string {
	t.Helper()
	var lease coordinationv1.Lease
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: "signet-system", Name: "signet-controller"}, &lease); err != nil {
		return ""
	}
	if lease.Spec.HolderIdentity == nil {
		return ""
	}
	return *lease.Spec.HolderIdentity
}

// reviewClient posts reviews to the replicas (or the front) as the API
// server does, trusting ca for their 127.0.0.1 certificates.
func reviewClient(ca *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}}
}

// review posts a Pod's AdmissionReview to /validate at addr, as the API
// server would, and says whether it was allowed.
func review(hc *http.Client, addr, image string) (bool, error) {
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: "direct", Namespace: "team"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	raw, err := json.Marshal(pod)
	if err != nil {
		return false, err
	}
	ar := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &admissionv1.AdmissionRequest{
		UID: "direct", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: "team", Name: "direct", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}}
	body, err := json.Marshal(ar)
	if err != nil {
		return false, err
	}
	resp, err := hc.Post("https://"+addr+"/validate", "application/json", bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var out admissionv1.AdmissionReview
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return false, fmt.Errorf("status %d, undecodable answer: %w", resp.StatusCode, err)
	}
	if out.Response == nil {
		return false, fmt.Errorf("status %d, an answer without a response", resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusForbidden {
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, out.Response.Result)
	}
	return out.Response.Allowed, nil
}

func readyz(addr string) int {
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // a probe
	resp, err := hc.Get("https://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func waitFor(t *testing.T, limit time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %s for %s: %v", limit, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
