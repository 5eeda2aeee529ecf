package e2e

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/webhook"
)

// webhookWorld is a real API server with signet serve registered as its
// validating and mutating webhook, a real registry and cosign.
type webhookWorld struct {
	cluster *harness.Cluster
	reg     *registrytest.Registry
	cosign  *harness.Cosign
	key     harness.KeyPair
	other   harness.KeyPair
	signed  registrytest.Image
	wrong   registrytest.Image // signed with the other key
	unsig   registrytest.Image
	warns   *warningRecorder
	client  client.Client
	webhook *webhook.Webhook
}

type warningRecorder struct{ got []string }

func (w *warningRecorder) HandleWarningHeader(code int, agent, text string) {
	w.got = append(w.got, text)
}

func (w *warningRecorder) take() string {
	s := strings.Join(w.got, "\n")
	w.got = nil
	return s
}

func startWebhookWorld(t *testing.T) *webhookWorld {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	w := &webhookWorld{
		cluster: harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds"), repoPath(t, "test/e2e/testdata/crds")), harness.WithScheme(scheme)),
		reg:     harness.StartRegistry(t),
		cosign:  harness.NewCosign(t),
	}
	w.key, w.other = w.cosign.GenerateKeyPair(t), w.cosign.GenerateKeyPair(t)
	w.signed = w.reg.PushRandomImage(t, "prod/app", "v1")
	w.cosign.Sign(t, w.signed.Ref, w.key, harness.Legacy)
	w.wrong = w.reg.PushRandomImage(t, "prod/app", "v2")
	w.cosign.Sign(t, w.wrong.Ref, w.other, harness.Bundle)
	w.unsig = w.reg.PushRandomImage(t, "prod/app", "unsigned")

	// A client that records the warnings the API server relays.
	w.warns = &warningRecorder{}
	cfg := rest.CopyConfig(w.cluster.Config)
	cfg.WarningHandler = w.warns
	cl, err := client.New(cfg, client.Options{Scheme: w.cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	w.client = cl

	// team-excluded reaches signet (the webhook's own selector skips only
	// kube-system and signet-system): signet's --exclude-namespace admits it.
	wh := webhook.Start(t, w.cluster, "--allow-http-registry", "--decision-timeout", "10s", "--exclude-namespace", "team-excluded")
	w.webhook = wh
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", wh.Logs())
		}
	})
	return w
}

func (w *webhookWorld) namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if err := w.cluster.Client.Create(t.Context(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

func (w *webhookWorld) keyPolicy(t *testing.T, name, mode string) *v1alpha1.ClusterImagePolicy {
	t.Helper()
	pub, err := os.ReadFile(w.key.Public)
	if err != nil {
		t.Fatal(err)
	}
	p := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: w.reg.Host + "/prod/**"}},
		Mode:        mode,
		Authorities: []v1alpha1.Authority{{Name: "ci-key", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}}
	if err := w.cluster.Client.Create(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	return p
}

func pod(ns, name string, images ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

// eventually retries f until it returns nil (policy changes reach the
// webhook asynchronously).
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

func wantDenied(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("admitted; want a denial saying %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("denial %q does not say %q", err, p)
		}
	}
}

// TestAdmission runs signet serve as the API server's webhook and admits
// and denies real objects.
func TestAdmission(t *testing.T) {
	w := startWebhookWorld(t)
	ctx := t.Context()
	w.namespace(t, "team-a", nil)

	// No policy yet: the image matches nothing and is denied by default.
	eventually(t, "unmatched denial", func() error {
		err := w.client.Create(ctx, pod("team-a", "early", w.signed.Tag))
		if err == nil || !strings.Contains(err.Error(), "did not match any image policies") {
			return fmt.Errorf("got %w", err)
		}
		return nil
	})

	cip := w.keyPolicy(t, "prod-signed", "")
	eventually(t, "signed pod admitted", func() error {
		return w.client.Create(ctx, pod("team-a", "signed", w.signed.Tag))
	})

	t.Run("signed pod is pinned to the verified digest", func(t *testing.T) {
		var got corev1.Pod
		if err := w.client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "signed"}, &got); err != nil {
			t.Fatal(err)
		}
		if want := w.signed.Tag + "@" + w.signed.Digest; got.Spec.Containers[0].Image != want {
			t.Fatalf("image %q, want %q", got.Spec.Containers[0].Image, want)
		}
	})
	t.Run("unsigned pod is denied with field, image, digest, policy and reason", func(t *testing.T) {
		err := w.client.Create(ctx, pod("team-a", "unsigned", w.signed.Tag, w.unsig.Tag))
		wantDenied(t, err, "spec.containers[1].image: "+w.unsig.Tag+" ("+w.unsig.Digest+")", "denied by policy prod-signed", "authority ci-key: no signature found")
		// The API server passes the refusal's code on: a policy refused.
		if !apierrors.IsForbidden(err) {
			t.Errorf("a policy's denial is not Forbidden at the API server: %#v", err)
		}
		if strings.Contains(err.Error(), "spec.containers[0]") {
			t.Errorf("the signed container is blamed too: %v", err)
		}
	})
	t.Run("wrong key is denied", func(t *testing.T) {
		wantDenied(t, w.client.Create(ctx, pod("team-a", "wrong", w.wrong.Tag)), "none verified by key")
	})
	t.Run("every workload kind", func(t *testing.T) {
		labels := map[string]string{"app": "x"}
		sel := &metav1.LabelSelector{MatchLabels: labels}
		podSpec := func(img string) corev1.PodSpec {
			return corev1.PodSpec{
				RestartPolicy:  corev1.RestartPolicyAlways,
				InitContainers: []corev1.Container{{Name: "init", Image: w.signed.Tag}},
				Containers:     []corev1.Container{{Name: "app", Image: img}},
			}
		}
		objects := func(suffix, img string) []client.Object {
			tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec(img)}
			jobTmpl := tmpl
			jobTmpl.Spec.RestartPolicy = corev1.RestartPolicyNever
			meta := func(name string) metav1.ObjectMeta {
				return metav1.ObjectMeta{Namespace: "team-a", Name: name + suffix}
			}
			return []client.Object{
				&appsv1.Deployment{ObjectMeta: meta("d"), Spec: appsv1.DeploymentSpec{Selector: sel, Template: tmpl}},
				&appsv1.ReplicaSet{ObjectMeta: meta("rs"), Spec: appsv1.ReplicaSetSpec{Selector: sel, Template: tmpl}},
				&appsv1.StatefulSet{ObjectMeta: meta("ss"), Spec: appsv1.StatefulSetSpec{Selector: sel, Template: tmpl}},
				&appsv1.DaemonSet{ObjectMeta: meta("ds"), Spec: appsv1.DaemonSetSpec{Selector: sel, Template: tmpl}},
				&corev1.ReplicationController{ObjectMeta: meta("rc"), Spec: corev1.ReplicationControllerSpec{Selector: labels, Template: &tmpl}},
				&batchv1.Job{ObjectMeta: meta("job"), Spec: batchv1.JobSpec{Template: jobTmpl}},
				&batchv1.CronJob{ObjectMeta: meta("cron"), Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: jobTmpl}}}},
			}
		}
		for _, obj := range objects("-unsigned", w.unsig.Tag) {
			wantDenied(t, w.client.Create(ctx, obj), ".containers[0].image: "+w.unsig.Tag, "no signature found")
		}
		for _, obj := range objects("-signed", w.signed.Tag) {
			if err := w.client.Create(ctx, obj); err != nil {
				t.Errorf("%T with signed images: %v", obj, err)
			}
		}
	})
	t.Run("image volumes and init containers", func(t *testing.T) {
		p := pod("team-a", "vol", w.signed.Tag)
		p.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: w.unsig.Tag}}}}
		wantDenied(t, w.client.Create(ctx, p), "spec.volumes[0].image.reference: "+w.unsig.Tag)
		p = pod("team-a", "init", w.signed.Tag)
		p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: w.unsig.Tag}}
		wantDenied(t, w.client.Create(ctx, p), "spec.initContainers[0].image: "+w.unsig.Tag)
	})
	t.Run("crossplane packages", func(t *testing.T) {
		for _, kind := range []string{"Provider", "Configuration", "Function"} {
			mk := func(name, img string) *unstructured.Unstructured {
				u := &unstructured.Unstructured{}
				u.SetAPIVersion("pkg.crossplane.io/v1")
				u.SetKind(kind)
				u.SetName(name)
				if err := unstructured.SetNestedField(u.Object, img, "spec", "package"); err != nil {
					t.Fatal(err)
				}
				return u
			}
			lower := strings.ToLower(kind)
			wantDenied(t, w.client.Create(ctx, mk(lower+"-unsigned", w.unsig.Tag)), "spec.package: "+w.unsig.Tag, "no signature found")
			signed := mk(lower+"-signed", w.signed.Tag)
			if err := w.client.Create(ctx, signed); err != nil {
				t.Fatalf("%s with a signed package: %v", kind, err)
			}
			if got, _, _ := unstructured.NestedString(signed.Object, "spec", "package"); got != w.signed.Tag+"@"+w.signed.Digest {
				t.Errorf("%s package %q was not pinned", kind, got)
			}
		}
	})
	t.Run("UPDATE checks the new object", func(t *testing.T) {
		labels := map[string]string{"app": "upd"}
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "upd"}, Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: w.signed.Tag}}}},
		}}
		if err := w.client.Create(ctx, d); err != nil {
			t.Fatal(err)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != w.signed.Tag+"@"+w.signed.Digest {
			t.Errorf("deployment image %q was not pinned", got)
		}
		d.Spec.Template.Spec.Containers[0].Image = w.unsig.Tag
		wantDenied(t, w.client.Update(ctx, d), "spec.template.spec.containers[0].image: "+w.unsig.Tag, "no signature found")
	})
	t.Run("dry run is decided the same way", func(t *testing.T) {
		wantDenied(t, w.client.Create(ctx, pod("team-a", "dry", w.unsig.Tag), client.DryRunAll), "no signature found")
		if err := w.client.Create(ctx, pod("team-a", "dry", w.signed.Tag), client.DryRunAll); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("annotations and labels do not skip verification", func(t *testing.T) {
		p := pod("team-a", "sneaky", w.unsig.Tag)
		p.Annotations = map[string]string{"signet.dev/skip": "true", "policy.sigstore.dev/include": "false"}
		p.Labels = map[string]string{"signet.dev/exclude": "true"}
		wantDenied(t, w.client.Create(ctx, p), "no signature found")
	})
	t.Run("ephemeral container", func(t *testing.T) {
		var got corev1.Pod
		if err := w.client.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "signed"}, &got); err != nil {
			t.Fatal(err)
		}
		got.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: w.unsig.Tag}}}
		err := w.client.SubResource("ephemeralcontainers").Update(ctx, &got)
		wantDenied(t, err, "spec.ephemeralContainers[0].image: "+w.unsig.Tag)
	})
	t.Run("excluded namespace", func(t *testing.T) {
		// Sent to signet, which admits it because of --exclude-namespace,
		// and says so.
		w.namespace(t, "team-excluded", nil)
		w.warns.take()
		if err := w.client.Create(ctx, pod("team-excluded", "unchecked", w.unsig.Tag)); err != nil {
			t.Fatal(err)
		}
		if got := w.warns.take(); !strings.Contains(got, "namespace team-excluded is excluded from image policy enforcement") {
			t.Fatalf("admitted without signet's word: warnings %q", got)
		}
		// Another namespace is not excluded by it.
		w.namespace(t, "team-excluded-not", nil)
		wantDenied(t, w.client.Create(ctx, pod("team-excluded-not", "checked", w.unsig.Tag)), "no signature found")
	})
	t.Run("a namespace's ImagePolicy adds requirements there only", func(t *testing.T) {
		// prod-signed admits w.signed in every namespace; team-b's own
		// policy also requires the other key, which w.signed lacks.
		w.namespace(t, "team-b", nil)
		other, err := os.ReadFile(w.other.Public)
		if err != nil {
			t.Fatal(err)
		}
		ip := &v1alpha1.ImagePolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "team-key"}, Spec: v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: w.reg.Host + "/prod/**"}},
			Authorities: []v1alpha1.Authority{{Name: "team-key", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(other)}}},
		}}
		if err := w.cluster.Client.Create(ctx, ip); err != nil {
			t.Fatal(err)
		}
		eventually(t, "team-b's policy in force", func() error {
			err := w.client.Create(ctx, pod("team-b", "signed", w.signed.Tag))
			if err == nil {
				return fmt.Errorf("admitted")
			}
			if !strings.Contains(err.Error(), "ImagePolicy team-b/team-key") && !strings.Contains(err.Error(), "team-key") {
				return fmt.Errorf("denied for another reason: %w", err)
			}
			return nil
		})
		// Elsewhere the cluster's policy alone applies.
		if err := w.client.Create(ctx, pod("team-a", "signed-elsewhere", w.signed.Tag)); err != nil {
			t.Fatalf("team-b's ImagePolicy reached team-a: %v", err)
		}
		if err := w.cluster.Client.Delete(ctx, ip); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("policy status", func(t *testing.T) {
		eventually(t, "Ready condition", func() error {
			var got v1alpha1.ClusterImagePolicy
			if err := w.cluster.Client.Get(ctx, client.ObjectKey{Name: cip.Name}, &got); err != nil {
				return err
			}
			c := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if c == nil || c.Status != metav1.ConditionTrue || got.Status.ObservedGeneration != got.Generation {
				return fmt.Errorf("status %+v", got.Status)
			}
			return nil
		})
		bad := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "bad-regexp"}, Spec: v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: w.reg.Host + "/other/**"}},
			Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{Issuer: "https://x", SubjectRegExp: "(oops"}}}}},
		}}
		if err := w.cluster.Client.Create(ctx, bad); err != nil {
			t.Fatal(err)
		}
		eventually(t, "Invalid condition", func() error {
			var got v1alpha1.ClusterImagePolicy
			if err := w.cluster.Client.Get(ctx, client.ObjectKey{Name: bad.Name}, &got); err != nil {
				return err
			}
			c := meta.FindStatusCondition(got.Status.Conditions, "Ready")
			if c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "subjectRegExp: invalid regular expression") {
				return fmt.Errorf("status %+v", got.Status)
			}
			return nil
		})
		// The change is an Event on the policy too (kubectl describe).
		eventually(t, "Invalid event", func() error {
			var events corev1.EventList
			if err := w.cluster.Client.List(ctx, &events, client.InNamespace("default")); err != nil {
				return err
			}
			for _, e := range events.Items {
				if e.InvolvedObject.Kind == "ClusterImagePolicy" && e.InvolvedObject.Name == bad.Name && e.Type == corev1.EventTypeWarning &&
					e.Reason == "Invalid" && strings.Contains(e.Message, "subjectRegExp: invalid regular expression") {
					return nil
				}
			}
			return fmt.Errorf("no Invalid event among %d", len(events.Items))
		})
		// What an invalid policy selects is denied, not let through.
		other := w.reg.PushRandomImage(t, "other/app", "v1")
		wantDenied(t, w.client.Create(ctx, pod("team-a", "other", other.Tag)), "ClusterImagePolicy bad-regexp cannot be enforced")
	})
	t.Run("metrics", func(t *testing.T) {
		m, err := w.webhook.Get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`signet_admission_duration_seconds_count{decision="denied",kind="Pod"}`,
			`signet_admission_duration_seconds_count{decision="allowed",kind="Pod"}`,
			`signet_admission_policy_results_total{policy="ClusterImagePolicy prod-signed",result="pass"}`,
			`signet_admission_policy_results_total{policy="ClusterImagePolicy prod-signed",result="fail"}`,
			`signet_registry_requests_total{host="` + w.reg.Host + `",result="2xx"}`,
			`signet_verification_cache_hits_total`,
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	t.Run("warn mode", func(t *testing.T) {
		// Replace the enforcing policy with a warning one.
		if err := w.cluster.Client.Delete(ctx, cip); err != nil {
			t.Fatal(err)
		}
		w.keyPolicy(t, "prod-warn", "warn")
		w.warns.take()
		eventually(t, "warn-mode admission", func() error {
			if err := w.client.Create(ctx, pod("team-a", "warned", w.unsig.Tag)); err != nil {
				return err
			}
			return nil
		})
		// The warning names the field and the image, as a denial does.
		if got := w.warns.take(); !strings.Contains(got, "spec.containers[0].image: "+w.unsig.Tag+" (sha256:") ||
			!strings.Contains(got, "no signature found") || !strings.Contains(got, "warn mode") {
			t.Fatalf("warnings %q", got)
		}
	})
}

// TestAdmissionPullSecrets: a registry that requires authentication is
// read with the pod's imagePullSecrets, or its service account's; without
// them signet cannot decide, and the policy's onError (deny) applies.
func TestAdmissionPullSecrets(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t, harness.WithBasicAuth("puller", "s3cret"))
	cosign := harness.NewCosign(t)
	if _, err := cosign.Run(t.Context(), "login", reg.Host, "-u", "puller", "-p", "s3cret"); err != nil {
		t.Fatal(err)
	}
	key := cosign.GenerateKeyPair(t)
	rnd, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	img := reg.PushImage(t, "private/app", "v1", rnd, remote.WithAuth(&authn.Basic{Username: "puller", Password: "s3cret"}))
	cosign.Sign(t, img.Ref, key, harness.Legacy)

	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := cluster.Client.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "private"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/private/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}}); err != nil {
		t.Fatal(err)
	}
	webhook.Start(t, cluster, "--allow-http-registry", "--decision-timeout", "10s")

	ns := "creds"
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	dockercfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, reg.Host, base64.StdEncoding.EncodeToString([]byte("puller:s3cret")))
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "pull"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(dockercfg)}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "sa-pull"}, Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(dockercfg)}},
	} {
		if err := cluster.Client.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := cluster.Client.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "builder"}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "sa-pull"}}}); err != nil {
		t.Fatal(err)
	}

	without := pod(ns, "without", img.Tag)
	eventually(t, "denied without credentials", func() error {
		err := cluster.Client.Create(ctx, without)
		if err == nil || !strings.Contains(err.Error(), "could not decide") {
			return fmt.Errorf("got %w", err)
		}
		return nil
	})
	withSecret := pod(ns, "with-secret", img.Tag)
	withSecret.Spec.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "pull"}}
	if err := cluster.Client.Create(ctx, withSecret); err != nil {
		t.Fatalf("pod with imagePullSecrets: %v", err)
	}
	withSA := pod(ns, "with-sa", img.Tag)
	withSA.Spec.ServiceAccountName = "builder"
	if err := cluster.Client.Create(ctx, withSA); err != nil {
		t.Fatalf("pod with a service account's pull secret: %v", err)
	}
}

// TestAdmissionSignaturePullSecrets: signatures kept in another registry
// that requires its own credentials (source.oci) are read with the
// policy's signaturePullSecrets from signet's namespace, never with the
// pod's; without them signet cannot decide.
func TestAdmissionSignaturePullSecrets(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	images := harness.StartRegistry(t)
	sigs := harness.StartRegistry(t, harness.WithBasicAuth("sigreader", "t0ps3cret"))
	cosign := harness.NewCosign(t)
	if _, err := cosign.Run(t.Context(), "login", sigs.Host, "-u", "sigreader", "-p", "t0ps3cret"); err != nil {
		t.Fatal(err)
	}
	key := cosign.GenerateKeyPair(t)
	sigRepo := sigs.Host + "/signatures/app"
	img := images.PushRandomImage(t, "public/app", "v1")
	cosign.WithEnv("COSIGN_REPOSITORY="+sigRepo).Sign(t, img.Ref, key, harness.Legacy)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}

	ctx := t.Context()
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "signet-system"}}); err != nil {
		t.Fatal(err)
	}
	dockercfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, sigs.Host, base64.StdEncoding.EncodeToString([]byte("sigreader:t0ps3cret")))
	if err := cluster.Client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: "signet-system", Name: "signature-reader"},
		Type:       corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{".dockerconfigjson": []byte(dockercfg)},
	}); err != nil {
		t.Fatal(err)
	}
	authority := func(secrets ...string) []v1alpha1.Authority {
		src := &v1alpha1.Source{OCI: sigRepo}
		for _, s := range secrets {
			src.SignaturePullSecrets = append(src.SignaturePullSecrets, v1alpha1.LocalObjectReference{Name: s})
		}
		return []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}, Source: src}}
	}
	cip := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: images.Host + "/public/**"}},
		Authorities: authority("signature-reader"),
	}}
	if err := cluster.Client.Create(ctx, cip); err != nil {
		t.Fatal(err)
	}
	webhook.Start(t, cluster, "--allow-http-registry", "--decision-timeout", "10s")

	ns := "apps"
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "admitted with the policy's signature pull secret", func() error {
		return cluster.Client.Create(ctx, pod(ns, "signed", img.Tag))
	})
	unsigned := images.PushRandomImage(t, "public/app", "v2")
	if err := cluster.Client.Create(ctx, pod(ns, "unsigned", unsigned.Tag)); err == nil || !strings.Contains(err.Error(), "no signature found") {
		t.Errorf("unsigned image: %v", err)
	}

	// Without the secret, the signature registry refuses signet: could not
	// decide, and onError (deny) applies.
	setAuthorities := func(a []v1alpha1.Authority) {
		t.Helper()
		// signet writes the policy's status meanwhile: retry on conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := cluster.Client.Get(ctx, client.ObjectKeyFromObject(cip), cip); err != nil {
				return err
			}
			cip.Spec.Authorities = a
			return cluster.Client.Update(ctx, cip)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	setAuthorities(authority())
	other := images.PushRandomImage(t, "public/app", "v3")
	cosign.WithEnv("COSIGN_REPOSITORY="+sigRepo).Sign(t, other.Ref, key, harness.Legacy)
	attempt := 0
	eventually(t, "could not decide without the secret", func() error {
		attempt++ // a pod admitted under the old policy must not block the next try
		err := cluster.Client.Create(ctx, pod(ns, fmt.Sprintf("no-secret-%d", attempt), other.Tag))
		if err == nil || !strings.Contains(err.Error(), "could not decide") {
			return fmt.Errorf("got %w", err)
		}
		return nil
	})

	// A secret that does not exist makes the policy invalid; it still
	// denies what it selects, naming the field.
	setAuthorities(authority("missing"))
	eventually(t, "invalid policy denies", func() error {
		attempt++
		err := cluster.Client.Create(ctx, pod(ns, fmt.Sprintf("missing-secret-%d", attempt), other.Tag))
		if err == nil || !strings.Contains(err.Error(), "signaturePullSecrets[0]") {
			return fmt.Errorf("got %w", err)
		}
		return nil
	})
}

// TestAdmissionStalledRegistry: a registry that accepts connections and
// never answers is decided (denied: could not decide) within signet's
// decision timeout, before the API server's webhook timeout.
func TestAdmissionStalledRegistry(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var held []net.Conn
		for {
			c, err := l.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	ctx := t.Context()
	if err := cluster.Client.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "stalled"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: l.Addr().String() + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "k", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: examplePEMKey(t)}}},
	}}); err != nil {
		t.Fatal(err)
	}
	webhook.Start(t, cluster, "--allow-http-registry", "--decision-timeout", "3s")
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stall"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = cluster.Client.Create(ctx, pod("stall", "p", l.Addr().String()+"/app:v1"))
	elapsed := time.Since(start)
	wantDenied(t, err, "could not decide", "ClusterImagePolicy stalled")
	// Could not decide is not a policy's refusal: the API server says
	// ServiceUnavailable (kubectl: "Error from server (ServiceUnavailable)").
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("could not decide is not ServiceUnavailable at the API server: %#v", err)
	}
	if elapsed > 10*time.Second {
		t.Fatalf("decided after %v; the decision timeout is 3s", elapsed)
	}
	t.Logf("stalled registry decided in %v", elapsed)
}

func examplePEMKey(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, "examples/crio-repository-key.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i, j := strings.Index(s, "-----BEGIN PUBLIC KEY-----"), strings.Index(s, "-----END PUBLIC KEY-----")
	var b strings.Builder
	for _, line := range strings.Split(s[i:j+len("-----END PUBLIC KEY-----")], "\n") {
		b.WriteString(strings.TrimSpace(line) + "\n")
	}
	return b.String()
}

// TestCertificateRotation: with --tls-secret the serving certificate lives
// in a Secret and is rotated after two thirds of its validity; requests made
// across rotations all succeed, because the previous CA stays trusted.
func TestCertificateRotation(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	ctx := t.Context()
	if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "rot"}}); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Client.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "pass"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "**"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	webhook.Start(t, cluster, "--tls-secret", "signet-webhook-tls", "--cert-validity", "6s")

	caOf := func() string {
		var s corev1.Secret
		if err := cluster.Client.Get(ctx, client.ObjectKey{Namespace: "signet-system", Name: "signet-webhook-tls"}, &s); err != nil {
			t.Fatal(err)
		}
		return string(s.Data["ca.crt"])
	}
	first := caOf()
	rotations := 0
	last := first
	deadline := time.Now().Add(12 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		if err := cluster.Client.Create(ctx, pod("rot", fmt.Sprintf("p%d", i), "registry.example.org/app:v1"), client.DryRunAll); err != nil {
			t.Fatalf("request %d failed: %v", i, err)
		}
		if ca := caOf(); ca != last {
			rotations++
			last = ca
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rotations == 0 {
		t.Fatal("the certificate was never rotated")
	}
	t.Logf("%d rotations, no failed request", rotations)
}
