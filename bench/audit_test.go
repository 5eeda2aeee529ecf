package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
)

// auditMeasurements: the background audit of signet serve over a real API
// server holding pods Pods (in 10 namespaces) that share images images,
// each Pod running as a kubelet would report it (status.containerStatuses
// with the digest that ran). Three figures:
//
//   - the registry requests of the first complete scan, against those of
//     verifying each image once, cold, through a fresh client;
//   - warm admission p99 while scans run back to back, against the same
//     load on a serve without the audit (--audit-interval 0);
//   - the resident memory of serve after its first complete scan, against
//     the serve without the audit on the same cluster.
func (w *world) auditMeasurements(tb testing.TB, full bool) []Entry {
	pods, images, window := 5000, 50, 5*time.Second
	if !full {
		pods, images, window = 200, 10, time.Second
	}
	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	t0 := time.Now()
	cluster := harness.StartCluster(tb, harness.WithCRDs(filepath.Join(root, "deploy/crds")), harness.WithScheme(scheme))
	proxy := startCountingProxy(tb, w.reg.Host)
	imgs := w.signedImagesAs(tb, "audit", images, harness.Bundle)
	via := func(ref string) string { return proxy.Host + strings.TrimPrefix(ref, w.reg.Host) }
	spec := v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: proxy.Host + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(readKey(tb, w.key))}}},
	}
	ctx := context.Background()
	if err := cluster.Client.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "signed"}, Spec: spec}); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("audit: cluster, registry and %d signed images: %s", images, time.Since(t0).Round(time.Millisecond))

	t0 = time.Now()
	createRunningPods(tb, cluster, pods, func(i int) (tag, ran string) {
		im := imgs[i%len(imgs)]
		return via(im.Tag), via(im.Ref)
	})
	tb.Logf("audit: %d Pods created and their status set: %s", pods, time.Since(t0).Round(time.Millisecond))

	// The baseline: each image verified once, cold, by a fresh client, as
	// the audit sees them (tag pinned to the digest that ran).
	pinned := make([]string, len(imgs))
	for i, im := range imgs {
		pinned[i] = via(im.Tag) + "@" + im.Digest
	}
	before := proxy.n.Load()
	verifyOnce(tb, spec, pinned)
	once := proxy.n.Load() - before

	for _, ns := range []string{"signet-plain", "signet-audit"} {
		if err := cluster.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			tb.Fatal(err)
		}
	}
	common := []string{"--kubeconfig", cluster.Kubeconfig, "--allow-http-registry"}
	body := podReview("warm", "audit-0", pinned[0], pinned[1%len(pinned)], pinned[2%len(pinned)])
	warm := func(p *serveProcess) {
		// The first admission waits for the policy to load.
		deadline := time.Now().Add(time.Minute)
		for {
			l := drive(p.server(), 1, 1, time.Minute, func(int) []byte { return body }, allowed)
			if l.errors == 0 {
				return
			}
			if time.Now().After(deadline) {
				tb.Fatalf("warming up: %v\n%s", l.firstErr, p.logs.String())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	const concurrency = 8
	measure := func(p *serveProcess, d time.Duration) load {
		l := drive(p.server(), concurrency, 0, d, func(int) []byte { return body }, allowed)
		if l.errors > 0 || l.n == 0 {
			tb.Fatalf("%d of %d admissions failed: %v\n%s", l.errors, l.n, l.firstErr, p.logs.String())
		}
		return l
	}

	// Without the audit: memory once ready, half the latency window now,
	// half after the audit's serve has stopped.
	plain := startServeProcess(tb, append(common, "--namespace", "signet-plain", "--audit-interval", "0")...)
	warm(plain)
	plainRSS, plainHeap := plain.memory(tb)
	plain1 := measure(plain, window/2)

	// With the audit, scanning again as soon as a scan ends.
	t0 = time.Now()
	requestsAtStart := proxy.n.Load()
	audit := startServeProcess(tb, append(common, "--namespace", "signet-audit", "--audit-interval", "1s")...)
	deadline := time.Now().Add(5 * time.Minute)
	for audit.metric(tb, "signet_audit_scan_duration_seconds_count") < 1 {
		if time.Now().After(deadline) {
			tb.Fatalf("no complete audit scan after 5 minutes (%v objects decided):\n%s", audit.metric(tb, "signet_audit_objects_decided_total"), audit.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	scanRequests := proxy.n.Load() - requestsAtStart
	firstScan := time.Since(t0)
	decided := audit.metric(tb, "signet_audit_objects_decided_total")
	scanSeconds := audit.metric(tb, "signet_audit_scan_duration_seconds_sum")
	auditRSS, auditHeap := audit.memory(tb)
	tb.Logf("audit: first complete scan %s after start (the scan itself %.1fs), %v objects decided, %d registry requests (signet counted %v); verifying the %d images once: %d",
		firstScan.Round(time.Millisecond), scanSeconds, decided, scanRequests, audit.metric(tb, "signet_registry_requests_total"), len(imgs), once)
	if decided < float64(pods) {
		tb.Errorf("the first complete scan decided %v objects, want at least %d", decided, pods)
	}
	tb.Logf("audit: memory without the audit RSS %.1f MiB (heap %.1f), after the first scan of %d Pods RSS %.1f MiB (heap %.1f): %.1f KiB of RSS per Pod",
		plainRSS, plainHeap, pods, auditRSS, auditHeap, (auditRSS-plainRSS)*1024/float64(pods))

	warm(audit)
	decidedBefore, scansBefore := audit.metric(tb, "signet_audit_objects_decided_total"), audit.metric(tb, "signet_audit_scan_duration_seconds_count")
	during := measure(audit, window)
	decidedDuring := audit.metric(tb, "signet_audit_objects_decided_total") - decidedBefore
	scansDuring := audit.metric(tb, "signet_audit_scan_duration_seconds_count") - scansBefore
	tb.Logf("audit: during the %s window %v objects decided, %v scans completed", window, decidedDuring, scansDuring)
	if decidedDuring < float64(pods) {
		tb.Errorf("the audit decided %v objects during the latency window, want a whole scan's worth (%d): the latency was not measured during a scan", decidedDuring, pods)
	}
	audit.stop()
	plain2 := measure(plain, window/2)
	without := load{latencies: append(append([]time.Duration(nil), plain1.latencies...), plain2.latencies...)}
	slices.Sort(without.latencies)
	tb.Logf("audit: warm admission at %d concurrent: p50 %.2f ms p99 %.2f ms during scans, p50 %.2f ms p99 %.2f ms without the audit (%d and %d admissions)",
		concurrency, ms(during.quantile(0.5)), ms(during.quantile(0.99)), ms(without.quantile(0.5)), ms(without.quantile(0.99)), during.n, len(without.latencies))

	requests := newEntry(fmt.Sprintf("registry requests, first audit scan of %d Pods sharing %d images", pods, images), "requests",
		float64(scanRequests), float64(once), fmt.Sprintf("verifying the %d images once each, cold", images), 1)
	requests.Meets = scanRequests <= once
	return []Entry{
		requests,
		newEntry(fmt.Sprintf("warm admission p99 latency during audit scans of %d Pods, 8 concurrent", pods), "ms",
			ms(during.quantile(0.99)), ms(without.quantile(0.99)), "the same load on serve without the audit", 1.2),
		newEntry(fmt.Sprintf("resident memory of serve after the audit of %d Pods", pods), "MiB",
			auditRSS, plainRSS, "serve without the audit, same cluster", 1.5),
	}
}

// createRunningPods creates n Pods of one container, in namespaces audit-0
// to audit-9, and sets each one's status as the kubelet would once it
// runs: image(i) says the tag the i-th Pod names and the reference (by
// digest) of what ran. 16 at a time, through a client without rate limits.
func createRunningPods(tb testing.TB, cluster *harness.Cluster, n int, image func(i int) (tag, ran string)) {
	tb.Helper()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	const namespaces = 10
	for i := range namespaces {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("audit-%d", i)}}); err != nil {
			tb.Fatal(err)
		}
	}
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || failed.Load() != nil {
					return
				}
				tag, ran := image(i)
				pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("audit-%d", i%namespaces), Name: fmt.Sprintf("pod-%d", i),
					Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%100)}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: tag}}}}
				if err := c.Create(ctx, pod); err != nil {
					failed.Store(fmt.Errorf("creating %s: %w", pod.Name, err))
					return
				}
				pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{{
					Name: "app", Image: tag, ImageID: ran, Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.Now()}},
				}}}
				if err := c.Status().Update(ctx, pod); err != nil {
					failed.Store(fmt.Errorf("setting the status of %s: %w", pod.Name, err))
					return
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		tb.Fatal(err)
	}
}

// verifyOnce decides each image once, cold, with a fresh registry client
// and no cache, one after the other.
func verifyOnce(tb testing.TB, spec v1alpha1.ImagePolicySpec, images []string) {
	tb.Helper()
	ctx := context.Background()
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		tb.Fatal(err)
	}
	p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindClusterImagePolicy, Name: "signed", Spec: spec}, nil)
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
	if err != nil {
		tb.Fatal(err)
	}
	d := &check.Decider{Registry: rc}
	for _, im := range images {
		ds, err := d.Decide(ctx, check.Request{Snapshot: snap, Target: policy.Target{Namespace: "audit-0", Kind: "Pod"}, Images: []string{im}})
		if err != nil {
			tb.Fatal(err)
		}
		if !ds[0].Allowed {
			tb.Fatalf("%s denied: %v", im, ds[0].Denials)
		}
	}
}
