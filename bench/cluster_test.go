package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/webhook"
)

// deploymentRequests: registry requests made while the real API server
// admits a Deployment of 3 replicas of one uncached tag through signet serve
// (validating and mutating), then its ReplicaSet and 3 Pods as the
// controllers would create them (the test cluster runs no controllers),
// against the requests of a single verification of another image with a
// client that has already met the registry.
func (w *world) deploymentRequests(tb testing.TB) Entry {
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	cluster := harness.StartCluster(tb, harness.WithCRDs(filepath.Join(root, "deploy/crds")), harness.WithScheme(scheme))
	proxy := startCountingProxy(tb, w.reg.Host)
	imgs := w.signedImagesAs(tb, "deploy", 3, harness.Bundle)
	via := func(im registrytest.Image) string { return proxy.Host + strings.TrimPrefix(im.Tag, w.reg.Host) }
	pub, err := os.ReadFile(w.key.Public)
	if err != nil {
		tb.Fatal(err)
	}
	spec := v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: proxy.Host + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}
	ctx := context.Background()
	if err := cluster.Client.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "signed"}, Spec: spec}); err != nil {
		tb.Fatal(err)
	}
	webhook.Start(tb, cluster, "--allow-http-registry")

	deployment := func(name, image string) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		replicas := int32(3)
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}},
		}}
	}
	// The first admission, of another image, waits for the policy to load
	// and makes signet meet the registry.
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := cluster.Client.Create(ctx, deployment("probe", via(imgs[0])))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the probe Deployment was never admitted: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	before := proxy.n.Load()
	dep := deployment("app", via(imgs[1]))
	if err := cluster.Client.Create(ctx, dep); err != nil {
		tb.Fatal(err)
	}
	pinned := dep.Spec.Template.Spec.Containers[0].Image
	if !strings.HasSuffix(pinned, "@"+imgs[1].Digest) {
		tb.Fatalf("the Deployment's image is %s, want it pinned to %s", pinned, imgs[1].Digest)
	}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app-1"}, Spec: appsv1.ReplicaSetSpec{
		Replicas: dep.Spec.Replicas, Selector: dep.Spec.Selector, Template: dep.Spec.Template}}
	if err := cluster.Client.Create(ctx, rs); err != nil {
		tb.Fatal(err)
	}
	for i := range 3 {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("app-1-%d", i), Labels: dep.Spec.Template.Labels}, Spec: dep.Spec.Template.Spec}
		if err := cluster.Client.Create(ctx, p); err != nil {
			tb.Fatal(err)
		}
	}
	cascade := proxy.n.Load() - before

	// One verification, by a client that has met the registry.
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		tb.Fatal(err)
	}
	p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindClusterImagePolicy, Name: "signed", Spec: spec}, nil)
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	decide := func(image string) check.Decision {
		ds, err := (&check.Decider{Registry: rc}).Decide(ctx, check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{image}})
		if err != nil {
			tb.Fatal(err)
		}
		return ds[0]
	}
	if dec := decide(via(imgs[0])); !dec.Allowed {
		tb.Fatalf("%s denied: %v", imgs[0].Tag, dec.Denials)
	}
	before = proxy.n.Load()
	if dec := decide(via(imgs[2])); !dec.Allowed {
		tb.Fatalf("%s denied: %v", imgs[2].Tag, dec.Denials)
	}
	single := proxy.n.Load() - before
	e := newEntry("registry requests, Deployment of 3 replicas of one uncached tag (Deployment, ReplicaSet, 3 Pods through the API server)", "requests", float64(cascade), float64(single), "one verification", 1)
	e.Meets = cascade == single
	return e
}
