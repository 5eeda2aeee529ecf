package e2e

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/webhook"
)

// TestEphemeralContainersAndCrossplaneRegistry runs signet serve as the
// real API server's webhook, installed after a Pod already runs an image by
// tag (and an ephemeral container, added before signet was there), with a
// policy that pins tags to digests:
//
//   - adding an ephemeral container (kubectl debug, client-go
//     UpdateEphemeralContainers) succeeds and the new container is pinned:
//     through pods/ephemeralcontainers the API server accepts only new
//     ephemeral containers, and refuses a change to one that exists, so
//     signet patches nothing else there;
//   - a Crossplane package written without a registry is resolved against
//     --crossplane-registry, as Crossplane resolves it, decided by that
//     registry's policy and pinned with the registry written out.
func TestEphemeralContainersAndCrossplaneRegistry(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds"), repoPath(t, "test/e2e/testdata/crds")), harness.WithScheme(scheme))
	reg := registrytest.StartInProcess(t, true)
	img := reg.PushRandomImage(t, "prod/app", "v1")
	pinned := img.Tag + "@" + img.Digest
	ctx := t.Context()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pods := cs.CoreV1().Pods("team-a")

	// Before signet: a Pod by tag, with an ephemeral container by tag.
	p, err := pods.Create(ctx, pod("team-a", "debuggee", img.Tag), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
		Name: "before", Image: img.Tag, ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
	}})
	if _, err := pods.UpdateEphemeralContainers(ctx, p.Name, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// signet, with a policy that passes and pins the registry's images.
	cip := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "pin-prod"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/prod/**"}},
		Digest:      "pin",
		Authorities: []v1alpha1.Authority{{Name: "allow", Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}
	if err := c.Client.Create(ctx, cip); err != nil {
		t.Fatal(err)
	}
	wh := webhook.Start(t, c, "--allow-http-registry", "--decision-timeout", "10s", "--crossplane-registry", reg.Host)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", wh.Logs())
		}
	})
	eventually(t, "the policy pins a new Pod", func() error {
		got, err := pods.Create(ctx, pod("team-a", "probe", img.Tag), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		if got.Spec.Containers[0].Image != pinned {
			_ = pods.Delete(ctx, "probe", metav1.DeleteOptions{})
			return fmt.Errorf("image %q, want %q", got.Spec.Containers[0].Image, pinned)
		}
		return nil
	})

	t.Run("an ephemeral container is added and pinned", func(t *testing.T) {
		p, err := pods.Get(ctx, "debuggee", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			Name: "debug", Image: img.Tag, ImagePullPolicy: corev1.PullIfNotPresent, TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		}})
		got, err := pods.UpdateEphemeralContainers(ctx, p.Name, p, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("adding an ephemeral container: %v", err)
		}
		images := map[string]string{}
		for _, ec := range got.Spec.EphemeralContainers {
			images[ec.Name] = ec.Image
		}
		want := map[string]string{"before": img.Tag, "debug": pinned}
		for n, w := range want {
			if images[n] != w {
				t.Errorf("ephemeral container %s: image %q, want %q", n, images[n], w)
			}
		}
		// The subresource changes nothing else: the Pod's own container
		// keeps its tag.
		if got.Spec.Containers[0].Image != img.Tag {
			t.Errorf("container image %q, want %q", got.Spec.Containers[0].Image, img.Tag)
		}
	})

	t.Run("a Crossplane package without a registry", func(t *testing.T) {
		// The registry written out is the test registry's; the package as
		// written names none, like crossplane-contrib/provider-aws:v1.
		written := strings.TrimPrefix(img.Tag, reg.Host+"/")
		provider := &unstructured.Unstructured{}
		provider.SetAPIVersion("pkg.crossplane.io/v1")
		provider.SetKind("Provider")
		provider.SetName("provider-unqualified")
		if err := unstructured.SetNestedField(provider.Object, written, "spec", "package"); err != nil {
			t.Fatal(err)
		}
		if err := c.Client.Create(ctx, provider); err != nil {
			t.Fatalf("Provider %s: %v", written, err)
		}
		if got, _, _ := unstructured.NestedString(provider.Object, "spec", "package"); got != pinned {
			t.Errorf("package %q, want %q (resolved against --crossplane-registry and pinned)", got, pinned)
		}
		// One elsewhere (Docker Hub's, by its name) is not this policy's:
		// unmatched, denied.
		other := provider.DeepCopy()
		other.SetName("provider-hub")
		if err := unstructured.SetNestedField(other.Object, "docker.io/"+written, "spec", "package"); err != nil {
			t.Fatal(err)
		}
		err := c.Client.Create(ctx, other)
		if err == nil || !strings.Contains(err.Error(), "did not match any image policies") {
			t.Errorf("Docker Hub package: %v, want an unmatched denial", err)
		}
	})
}
