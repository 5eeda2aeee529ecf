package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	pods, images, rounds, window := 5000, 50, 5, time.Second
	if !full {
		pods, images, rounds, window = 200, 10, 1, 500*time.Millisecond
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
	imgs := w.signedImagesAs(tb, "audit", images, harness.Bundle)
	tb.Logf("audit: %d images signed: %s", images, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	cluster := harness.StartCluster(tb, harness.WithCRDs(filepath.Join(root, "deploy/crds")), harness.WithScheme(scheme))
	proxy := startCountingProxy(tb, w.reg.Host)
	via := func(ref string) string { return proxy.Host + strings.TrimPrefix(ref, w.reg.Host) }
	spec := v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: proxy.Host + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(readKey(tb, w.key))}}},
	}
	ctx := context.Background()
	if err := cluster.Client.Create(ctx, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "signed"}, Spec: spec}); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("audit: cluster: %s", time.Since(t0).Round(time.Millisecond))

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
	before, beforePaths := proxy.n.Load(), proxy.byPath()
	verifyOnce(tb, spec, pinned)
	once := proxy.n.Load() - before
	oncePaths := pathDelta(beforePaths, proxy.byPath())

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

	// Without the audit: memory once ready.
	plain := startServeProcess(tb, append(common, "--namespace", "signet-plain", "--audit-interval", "0")...)
	warm(plain)
	plainRSS, plainHeap := plain.memory(tb)

	// With the audit, scanning again as soon as a scan ends.
	t0 = time.Now()
	requestsAtStart, pathsAtStart := proxy.n.Load(), proxy.byPath()
	audit := startServeProcess(tb, append(common, "--namespace", "signet-audit", "--audit-interval", "1s")...)
	// A scan that has not completed by then is reported with its pace,
	// and the figures are taken during it.
	budget := 2 * time.Minute
	if !full {
		budget = time.Minute
	}
	complete := true
	for deadline := time.Now().Add(budget); audit.metric(tb, "signet_audit_scan_duration_seconds_count") < 1; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			complete = false
			n := audit.metric(tb, "signet_audit_objects_decided_total")
			pace := n / time.Since(t0).Seconds()
			whole := "never"
			if pace > 0 {
				whole = (time.Duration(float64(pods)/pace) * time.Second).Round(time.Second).String()
			}
			tb.Errorf("the first audit scan has not completed %s after start: %v of %d objects decided, %.1f a second (a whole scan would take %s); the figures below are taken during it",
				budget, n, pods, pace, whole)
			break
		}
	}
	scanRequests := proxy.n.Load() - requestsAtStart
	if scanPaths := pathDelta(pathsAtStart, proxy.byPath()); !maps.Equal(scanPaths, oncePaths) {
		tb.Logf("audit: the scan's registry requests differ from those of verifying once: %s", pathDiff(oncePaths, scanPaths))
	}
	firstScan := time.Since(t0)
	decided := audit.metric(tb, "signet_audit_objects_decided_total")
	scanSeconds := audit.metric(tb, "signet_audit_scan_duration_seconds_sum")
	auditRSS, auditHeap := audit.memory(tb)
	keepFile(tb, plain.memFile+".heap", "serve-without-audit.heap")
	keepFile(tb, audit.memFile+".heap", "serve-after-audit.heap")
	scan := fmt.Sprintf("first complete scan %s after start (the scan itself %.1fs)", firstScan.Round(time.Millisecond), scanSeconds)
	if !complete {
		scan = fmt.Sprintf("no complete scan %s after start", firstScan.Round(time.Second))
	}
	tb.Logf("audit: %s, %v objects decided, %d registry requests (signet counted %v); verifying the %d images once: %d",
		scan, decided, scanRequests, audit.metric(tb, "signet_registry_requests_total"), len(imgs), once)
	if complete && decided < float64(pods) {
		tb.Errorf("the first complete scan decided %v objects, want at least %d", decided, pods)
	}
	tb.Logf("audit: memory without the audit RSS %.1f MiB (heap %.1f), after the first scan of %d Pods RSS %.1f MiB (heap %.1f): %.1f KiB of RSS per Pod",
		plainRSS, plainHeap, pods, auditRSS, auditHeap, (auditRSS-plainRSS)*1024/float64(pods))

	// Alternating windows: serve without the audit while the audit's serve
	// is stopped (SIGSTOP: it neither scans nor loads the API server),
	// then the audit's serve, scanning.
	warm(audit)
	var during, without load
	idle := 0
	for r := range rounds {
		audit.signal(tb, syscall.SIGSTOP)
		l := measure(plain, window)
		audit.signal(tb, syscall.SIGCONT)
		without.latencies = append(without.latencies, l.latencies...)
		before, cpu := audit.metric(tb, "signet_audit_objects_decided_total"), audit.cpu(tb)
		if r == 0 {
			audit.startCPUProfile(tb)
		}
		l = measure(audit, window)
		during.latencies = append(during.latencies, l.latencies...)
		decided := audit.metric(tb, "signet_audit_objects_decided_total") - before
		if decided == 0 {
			idle++
		}
		tb.Logf("audit: %v objects decided in a %s window; %d admissions; serve used %s of CPU", decided, window, l.n, (audit.cpu(tb) - cpu).Round(time.Millisecond))
	}
	// Scans run back to back (the interval, 1s, is shorter than a scan), so
	// an audit that decided objects in a window was scanning through it.
	if idle > 0 {
		tb.Errorf("the audit decided nothing in %d of %d latency windows: the latency was not measured during a scan", idle, rounds)
	}
	keepFile(tb, audit.memFile+".cpu", "serve-during-audit.cpu")
	audit.stop()
	for _, l := range []*load{&during, &without} {
		slices.Sort(l.latencies)
		l.n = len(l.latencies)
	}
	tb.Logf("audit: warm admission at %d concurrent: p50 %.2f ms p99 %.2f ms during scans, p50 %.2f ms p99 %.2f ms without the audit (%d and %d admissions)",
		concurrency, ms(during.quantile(0.5)), ms(during.quantile(0.99)), ms(without.quantile(0.5)), ms(without.quantile(0.99)), during.n, without.n)

	// Figures of a scan that did not complete say so in their names.
	incomplete := ""
	if !complete {
		incomplete = fmt.Sprintf(" (scan incomplete: %v decided in %s)", decided, firstScan.Round(time.Second))
	}
	requests := newEntry(fmt.Sprintf("registry requests, first audit scan of %d Pods sharing %d images%s", pods, images, incomplete), "requests",
		float64(scanRequests), float64(once), fmt.Sprintf("verifying the %d images once each, cold", images), 1)
	requests.Meets = complete && scanRequests <= once
	memory := newEntry(fmt.Sprintf("resident memory of serve after the audit of %d Pods%s", pods, incomplete), "MiB",
		auditRSS, plainRSS, "serve without the audit, same cluster", 1.5)
	memory.Meets = memory.Meets && complete
	return []Entry{
		requests,
		newEntry(fmt.Sprintf("warm admission p99 latency during audit scans of %d Pods, 8 concurrent", pods), "ms",
			ms(during.quantile(0.99)), ms(without.quantile(0.99)), "the same load on serve without the audit", 1.2),
		memory,
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

// pathDelta is the requests by path counted between two readings.
func pathDelta(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for p, n := range after {
		if d := n - before[p]; d > 0 {
			out[p] = d
		}
	}
	return out
}

// pathDiff names the paths requested a different number of times, as
// "path: want → got".
func pathDiff(want, got map[string]int) string {
	paths := maps.Clone(want)
	maps.Copy(paths, got)
	var out []string
	for _, p := range slices.Sorted(maps.Keys(paths)) {
		if want[p] != got[p] {
			out = append(out, fmt.Sprintf("%s: %d → %d", p, want[p], got[p]))
		}
	}
	return strings.Join(out, "; ")
}

// keepFile copies a profile the serve child wrote into
// $SIGNET_BENCH_PROFILES as name, when that is set (go tool pprof reads it).
func keepFile(tb testing.TB, path, name string) {
	dir := os.Getenv("SIGNET_BENCH_PROFILES")
	if dir == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
	if err != nil {
		tb.Errorf("keeping the profile: %v", err)
	}
}
