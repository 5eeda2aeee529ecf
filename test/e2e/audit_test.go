package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/webhook"
)

// auditReport is what the test reads of a PolicyReport.
type auditReport struct {
	Summary audit.Summary        `json:"summary"`
	Results []audit.ReportResult `json:"results"`
}

// reports reads signet's report parts of scope ("" for the
// ClusterPolicyReports).
func reports(t *testing.T, c client.Client, scope string) (auditReport, int) {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	kind := "PolicyReportList"
	opts := []client.ListOption{client.MatchingLabels{"app.kubernetes.io/managed-by": "signet"}}
	if scope == "" {
		kind = "ClusterPolicyReportList"
	} else {
		opts = append(opts, client.InNamespace(scope))
	}
	list.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	list.SetKind(kind)
	if err := c.List(t.Context(), list, opts...); err != nil {
		t.Fatalf("listing reports: %v", err)
	}
	var all auditReport
	for _, item := range list.Items {
		body, _ := json.Marshal(item.Object)
		var r auditReport
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatal(err)
		}
		all.Results = append(all.Results, r.Results...)
		all.Summary.Pass += r.Summary.Pass
		all.Summary.Fail += r.Summary.Fail
		all.Summary.Warn += r.Summary.Warn
		all.Summary.Error += r.Summary.Error
		all.Summary.Skip += r.Summary.Skip
	}
	return all, len(list.Items)
}

// resultOf finds the result of the object kind/name's image field path.
func (r auditReport) resultOf(kind, name, path string) (audit.ReportResult, bool) {
	for _, res := range r.Results {
		if res.Resources[0].Kind == kind && res.Resources[0].Name == name && res.Rule == path {
			return res, true
		}
	}
	return audit.ReportResult{}, false
}

func wantResult(kind, name, path, result string, says ...string) func(auditReport) error {
	return func(r auditReport) error {
		res, ok := r.resultOf(kind, name, path)
		if !ok {
			return fmt.Errorf("no result for %s %s %s in %d results", kind, name, path, len(r.Results))
		}
		if res.Result != result {
			return fmt.Errorf("%s %s: result %s (%s), want %s", kind, name, res.Result, res.Message, result)
		}
		for _, s := range says {
			if !strings.Contains(res.Message+" "+fmt.Sprint(res.Properties), s) {
				return fmt.Errorf("%s %s: %q does not say %q", kind, name, res.Message, s)
			}
		}
		return nil
	}
}

// TestAudit runs signet serve's audit against a real API server and
// registry: what ran before a policy existed is reported once the policy
// is applied, as the kubelet reported it; a rotated key, a deleted
// signature and a changed policy are followed; excluded namespaces get no
// results; Crossplane packages get ClusterPolicyReports; failing objects
// get an Event; the reports hold what admission would say.
func TestAudit(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds"), repoPath(t, "test/e2e/testdata/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	ctx := t.Context()
	c := cluster.Client
	key, rotated := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)

	// What runs: app:v1, signed; the tag then moves to an unsigned image.
	ran := reg.PushRandomImage(t, "prod/app", "v1")
	cosign.Sign(t, ran.Ref, key, harness.Legacy)
	moved := reg.PushRandomImage(t, "prod/app", "v1")
	unsigned := reg.PushRandomImage(t, "prod/other", "v1")
	both := reg.PushRandomImage(t, "prod/both", "v1")
	cosign.Sign(t, both.Ref, key, harness.Legacy)
	cosign.Sign(t, both.Ref, rotated, harness.Bundle)

	for _, ns := range []string{"team-a", "skipped", "signet-system"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	// Objects created before signet: nothing checked them.
	running := pod("team-a", "running", ran.Tag)
	mustCreate(t, c, running)
	running.Status.Phase = corev1.PodRunning
	running.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "c0", Image: ran.Tag, ImageID: ran.Ref}}
	if err := c.Status().Update(ctx, running); err != nil {
		t.Fatalf("setting the Pod's status as a kubelet would: %v", err)
	}
	mustCreate(t, c, pod("team-a", "unsigned", unsigned.Tag))
	mustCreate(t, c, pod("team-a", "both", both.Tag))
	mustCreate(t, c, pod("skipped", "unsigned", unsigned.Tag))
	replicas := int32(1)
	labels := map[string]string{"app": "web"}
	mustCreate(t, c, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "web"}, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: ran.Tag}}}},
	}})
	provider := &unstructured.Unstructured{}
	provider.SetAPIVersion("pkg.crossplane.io/v1")
	provider.SetKind("Provider")
	provider.SetName("provider-unsigned")
	if err := unstructured.SetNestedField(provider.Object, unsigned.Tag, "spec", "package"); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, c, provider)

	// The key is in a Secret the policy names.
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "ci-key"}, Data: map[string][]byte{"cosign.pub": pub}}
	mustCreate(t, c, secret)

	wh := webhook.Start(t, cluster, "--allow-http-registry", "--audit-interval", "3s", "--cache-ttl", "1s", "--cache-negative-ttl", "1s",
		"--exclude-namespace", "skipped", "--unmatched", "allow")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", wh.Logs())
		}
	})
	// No policy yet: unmatched images are allowed, and reported as skipped.
	waitReport(t, c, "team-a", wantResult("Pod", "unsigned", "spec.containers[0].image", "skip", "did not match any image policies"))

	policy := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "prod-signed"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/prod/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci-key", InsecureIgnoreTlog: true,
			Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "ci-key"}}}},
	}}
	mustCreate(t, c, policy)

	t.Run("what ran before the policy is reported as admission would decide it", func(t *testing.T) {
		waitReport(t, c, "team-a",
			wantResult("Pod", "unsigned", "spec.containers[0].image", "fail", "denied by policy prod-signed", "authority ci-key: no signature found", unsigned.Digest, "admission:denied"),
			// The Pod is checked at the digest the kubelet reported,
			// which was signed, not at the tag, which moved since.
			wantResult("Pod", "running", "spec.containers[0].image", "pass", ran.Digest, "authorities:ci-key"),
			// The Deployment's template would pull the tag: now unsigned.
			wantResult("Deployment", "web", "spec.template.spec.containers[0].image", "fail", moved.Digest, "no signature found"),
			wantResult("Pod", "both", "spec.containers[0].image", "pass"),
		)
	})
	t.Run("an excluded namespace gets no results", func(t *testing.T) {
		if r, n := reports(t, c, "skipped"); n != 0 || len(r.Results) != 0 {
			t.Fatalf("%d reports with %d results in an excluded namespace", n, len(r.Results))
		}
	})
	t.Run("a Crossplane package gets a ClusterPolicyReport result and an Event", func(t *testing.T) {
		waitReport(t, c, "", wantResult("Provider", "provider-unsigned", "spec.package", "fail", "no signature found"))
		// A cluster-scoped object's Events are in "default", as
		// kubectl describe looks for them.
		eventually(t, "the Event on the Provider", func() error {
			var events corev1.EventList
			if err := c.List(ctx, &events, client.InNamespace("default")); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.InvolvedObject.Kind == "Provider" && e.InvolvedObject.Name == "provider-unsigned" && e.Reason == "SignatureVerificationFailed" &&
					e.InvolvedObject.UID == provider.GetUID() && strings.Contains(e.Message, "spec.package") {
					return nil
				}
			}
			return fmt.Errorf("no SignatureVerificationFailed Event on the Provider among %d", len(events.Items))
		})
	})
	t.Run("a failing object gets a SignatureVerificationFailed Event", func(t *testing.T) {
		eventually(t, "the Event on the unsigned Pod", func() error {
			var events corev1.EventList
			if err := c.List(ctx, &events, client.InNamespace("team-a")); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == "unsigned" && e.Reason == "SignatureVerificationFailed" {
					if e.Type != corev1.EventTypeWarning || !strings.Contains(e.Message, "prod-signed") || !strings.Contains(e.Message, "no signature found") {
						return fmt.Errorf("event %q (%s) does not say which policy and why", e.Message, e.Type)
					}
					return nil
				}
			}
			return fmt.Errorf("no SignatureVerificationFailed Event among %d", len(events.Items))
		})
	})
	t.Run("a rotated key re-verifies", func(t *testing.T) {
		rotatedPub, err := os.ReadFile(rotated.Public)
		if err != nil {
			t.Fatal(err)
		}
		secret.Data = map[string][]byte{"cosign.pub": rotatedPub}
		if err := c.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		// Secrets are re-read when a policy changes and every minute; a
		// policy change brings it sooner.
		touch(t, c, policy)
		waitReport(t, c, "team-a",
			wantResult("Pod", "running", "spec.containers[0].image", "fail", "none verified by key"),
			wantResult("Pod", "both", "spec.containers[0].image", "pass"))
	})
	t.Run("a signature deleted from the registry fails on the next scan", func(t *testing.T) {
		secret.Data = map[string][]byte{"cosign.pub": pub} // back to the key that signed what runs
		if err := c.Update(ctx, secret); err != nil {
			t.Fatal(err)
		}
		touch(t, c, policy)
		waitReport(t, c, "team-a", wantResult("Pod", "running", "spec.containers[0].image", "pass", "authorities:ci-key"))
		sig, err := name.NewTag(fmt.Sprintf("%s/prod/app:%s.sig", reg.Host, strings.Replace(ran.Digest, ":", "-", 1)), name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(sig)
		if err != nil {
			t.Fatalf("the legacy signature of the image: %v", err)
		}
		if err := remote.Delete(sig.Context().Digest(desc.Digest.String())); err != nil {
			t.Fatalf("deleting the signature: %v", err)
		}
		// No policy changed: the periodic scan finds it.
		waitReport(t, c, "team-a", wantResult("Pod", "running", "spec.containers[0].image", "fail", "no signature found"))
	})
	t.Run("an object's results leave with it", func(t *testing.T) {
		if err := c.Delete(ctx, pod("team-a", "unsigned")); err != nil {
			t.Fatal(err)
		}
		waitReport(t, c, "team-a", func(r auditReport) error {
			if _, ok := r.resultOf("Pod", "unsigned", "spec.containers[0].image"); ok {
				return fmt.Errorf("the deleted Pod's result is still reported")
			}
			return nil
		})
	})
	t.Run("summaries count the results", func(t *testing.T) {
		r, _ := reports(t, c, "team-a")
		if want := summaryOf(r.Results); r.Summary != want {
			t.Fatalf("summary %+v, results count %+v", r.Summary, want)
		}
	})
	t.Run("metrics count the results", func(t *testing.T) {
		body, err := wh.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`signet_audit_results{policy="ClusterImagePolicy prod-signed",result="fail"}`, "signet_audit_last_complete_scan_timestamp_seconds"} {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics has no %s", want)
			}
		}
	})
}

func mustCreate(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Create(t.Context(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

// touch changes an annotation of obj, so that the controller rebuilds its
// snapshot (and re-reads the Secrets policies name).
func touch(t *testing.T, c client.Client, obj client.Object) {
	t.Helper()
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(obj), obj); err != nil {
		t.Fatal(err)
	}
	obj.SetAnnotations(map[string]string{"touched": time.Now().Format(time.RFC3339Nano)})
	if err := c.Update(t.Context(), obj); err != nil {
		t.Fatal(err)
	}
}

// waitReport waits until scope's reports meet every check.
func waitReport(t *testing.T, c client.Client, scope string, checks ...func(auditReport) error) {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		r, _ := reports(t, c, scope)
		err = nil
		for _, check := range checks {
			if err = check(r); err != nil {
				break
			}
		}
		if err == nil {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("reports of %q: %v", scope, err)
}
