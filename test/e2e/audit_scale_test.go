package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/cli/server"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/webhook"
)

// The metrics these tests read.
const (
	lastScanMetric = "signet_audit_last_complete_scan_timestamp_seconds"
	decidedMetric  = "signet_audit_objects_decided_total"
)

// getter is what serves /metrics and /readyz: the webhook, or a replica.
type getter interface {
	Get(path string) (string, error)
}

// metric reads the value of an unlabelled series from g's /metrics; false
// when there is no such series.
func metric(t *testing.T, g getter, name string) (float64, bool) {
	t.Helper()
	body, err := g.Get("/metrics")
	if err != nil {
		t.Fatalf("reading /metrics: %v", err)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		v, ok := strings.CutPrefix(line, name+" ")
		if !ok {
			v, ok = strings.CutPrefix(line, name+"{} ")
		}
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return f, true
	}
	return 0, false
}

// wantUp fails the test unless g answers /readyz "ok".
func wantUp(t *testing.T, what string, g getter) {
	t.Helper()
	body, err := g.Get("/readyz")
	if err != nil {
		t.Fatalf("%s is not up: %v", what, err)
	}
	if !strings.Contains(body, "ok") {
		t.Fatalf("%s is not ready: %q", what, body)
	}
}

// reportPart is one PolicyReport as the API server holds it.
type reportPart struct {
	name, resourceVersion string
	bytes                 int // its JSON, metadata and managedFields included
	managers              []string
	report                auditReport
}

// reportParts reads signet's PolicyReports in ns, by name.
func reportParts(t *testing.T, c client.Client, ns string) map[string]reportPart {
	t.Helper()
	list := &unstructured.UnstructuredList{}
	list.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
	list.SetKind("PolicyReportList")
	if err := c.List(t.Context(), list, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/managed-by": "signet"}); err != nil {
		t.Fatalf("listing reports: %v", err)
	}
	out := map[string]reportPart{}
	for _, item := range list.Items {
		body, err := json.Marshal(item.Object)
		if err != nil {
			t.Fatal(err)
		}
		p := reportPart{name: item.GetName(), resourceVersion: item.GetResourceVersion(), bytes: len(body)}
		if err := json.Unmarshal(body, &p.report); err != nil {
			t.Fatal(err)
		}
		for _, m := range item.GetManagedFields() {
			p.managers = append(p.managers, m.Manager+"/"+string(m.Operation))
		}
		out[p.name] = p
	}
	return out
}

// count is the number of results in parts.
func count(parts map[string]reportPart) int {
	n := 0
	for _, p := range parts {
		n += len(p.report.Results)
	}
	return n
}

// summaryOf counts results as a report's summary should.
func summaryOf(results []audit.ReportResult) audit.Summary {
	var s audit.Summary
	for _, r := range results {
		switch r.Result {
		case "pass":
			s.Pass++
		case "fail":
			s.Fail++
		case "warn":
			s.Warn++
		case "error":
			s.Error++
		case "skip":
			s.Skip++
		}
	}
	return s
}

// waitFor retries f until it returns nil or d has passed.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s (after %s): %v", what, d, err)
}

// fastClient is a client for creating many objects quickly: client-go's
// default of 5 requests a second (burst 10) would take 8 minutes for 5,000
// Pods.
func fastClient(t *testing.T, cluster *harness.Cluster) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	c, err := client.New(cfg, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createPods creates n Pods in ns, 16 at a time, Pod i running
// images[i%len(images)] and labelled group=i%10; it returns how long it
// took.
func createPods(t *testing.T, c client.Client, ns string, n int, images []string) time.Duration {
	t.Helper()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := pod(ns, fmt.Sprintf("p%04d", i), images[i%len(images)])
				p.Labels = map[string]string{"group": strconv.Itoa(i % 10)}
				if err := c.Create(t.Context(), p); err != nil {
					errs <- fmt.Errorf("creating Pod %s: %w", p.Name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return time.Since(start)
}

// TestAuditReportsStayBounded audits a namespace of 5,000 Pods: every
// report part stays within audit.MaxResultsPerReport results and about
// audit.MaxReportBytes of JSON, summaries count their part, each Pod's
// result is in exactly one part; a scan that changes nothing writes
// nothing; deleted Pods' results leave and parts no longer needed are
// deleted.
func TestAuditReportsStayBounded(t *testing.T) {
	began := time.Now()
	defer func() { t.Logf("wall time: %s", time.Since(began).Round(time.Millisecond)) }()
	const pods = 5000
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	c := cluster.Client
	key := cosign.GenerateKeyPair(t)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}

	// A handful of images, by digest (what runs): three signed, two not.
	var images []string
	signed := map[string]bool{}
	for i := range 5 {
		img := reg.PushRandomImage(t, fmt.Sprintf("scale/app%d", i), "v1")
		if i < 3 {
			cosign.Sign(t, img.Ref, key, harness.Legacy)
			signed[img.Ref] = true
		}
		images = append(images, img.Ref)
	}
	mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "scale"}})
	mustCreate(t, c, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "scale-signed"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/scale/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci-key", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}})
	// Before signet starts: no webhook, nothing admitted one by one.
	took := createPods(t, fastClient(t, cluster), "scale", pods, images)
	t.Logf("created %d Pods in %s (16 creators)", pods, took.Round(time.Millisecond))

	started := time.Now()
	wh := webhook.Start(t, cluster, "--allow-http-registry", "--audit-interval", "5s")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", wh.Logs())
		}
	})

	var parts map[string]reportPart
	logged := time.Now()
	waitFor(t, 90*time.Second, "every Pod's result reported", func() error {
		parts = reportParts(t, c, "scale")
		if n := count(parts); n != pods {
			decided, _ := metric(t, wh, decidedMetric)
			err := fmt.Errorf("%d results in %d parts, want %d (%v objects decided)", n, len(parts), pods, decided)
			if time.Since(logged) > 10*time.Second {
				t.Logf("%s: %v", time.Since(started).Round(time.Second), err)
				logged = time.Now()
			}
			return err
		}
		return nil
	})
	t.Logf("first reports complete %s after signet started: %d parts", time.Since(started).Round(time.Millisecond), len(parts))

	t.Run("every part is bounded, counted, and holds each Pod once", func(t *testing.T) {
		seen := map[string]int{}
		for name, p := range parts {
			if !audit.IsReportName(name) {
				t.Errorf("part named %q", name)
			}
			if n := len(p.report.Results); n > audit.MaxResultsPerReport {
				t.Errorf("%s holds %d results, more than %d", name, n, audit.MaxResultsPerReport)
			}
			// The API server's limit is 1.5 MiB; the bound is on results,
			// metadata and managedFields come on top.
			if p.bytes > audit.MaxReportBytes+16<<10 {
				t.Errorf("%s is %d bytes of JSON, more than %d + 16 KiB", name, p.bytes, audit.MaxReportBytes)
			}
			if got, want := p.report.Summary, summaryOf(p.report.Results); got != want {
				t.Errorf("%s: summary %+v, its results count %+v", name, got, want)
			}
			for _, r := range p.report.Results {
				seen[r.Resources[0].Name]++
				want := "fail"
				if signed[r.Properties["image"]] {
					want = "pass"
				}
				if r.Result != want {
					t.Errorf("%s %s: %s (%s), want %s", name, r.Resources[0].Name, r.Result, r.Message, want)
				}
			}
			t.Logf("%s: %d results, %d bytes", name, len(p.report.Results), p.bytes)
		}
		for i := range pods {
			if n := seen[fmt.Sprintf("p%04d", i)]; n != 1 {
				t.Errorf("Pod p%04d has %d results across parts, want 1", i, n)
			}
		}
		// 5,000 results take at least 5 parts; parts are numbered without gaps.
		for i := range len(parts) {
			name := audit.ReportName
			if i > 0 {
				name += "-" + strconv.Itoa(i+1)
			}
			if _, ok := parts[name]; !ok {
				t.Errorf("part %s missing among %d", name, len(parts))
			}
		}
		if len(parts) < pods/audit.MaxResultsPerReport {
			t.Errorf("%d parts for %d results", len(parts), pods)
		}
	})

	t.Run("a scan that changes nothing writes nothing", func(t *testing.T) {
		// Let the first scan's writes settle: the reports must be the
		// same for a whole interval before they are compared.
		before := reportParts(t, c, "scale")
		scanAt, _ := metric(t, wh, lastScanMetric)
		decided, _ := metric(t, wh, decidedMetric)
		waitFor(t, 60*time.Second, "a complete scan after the reports were read", func() error {
			at, ok := metric(t, wh, lastScanMetric)
			n, _ := metric(t, wh, decidedMetric)
			if !ok || at <= scanAt || n < decided+pods {
				return fmt.Errorf("last complete scan at %.3f (was %.3f), %v objects decided (was %v)", at, scanAt, n, decided)
			}
			return nil
		})
		after := reportParts(t, c, "scale")
		if len(after) != len(before) {
			t.Fatalf("%d parts, then %d", len(before), len(after))
		}
		for name, p := range before {
			if a := after[name]; a.resourceVersion != p.resourceVersion {
				t.Errorf("%s written again (resourceVersion %s, then %s) though no result changed", name, p.resourceVersion, a.resourceVersion)
			}
		}
	})

	t.Run("deleted Pods' results leave, stale parts are deleted", func(t *testing.T) {
		// Groups 0-5 go: 2,000 Pods stay, in fewer parts.
		before := reportParts(t, c, "scale")
		for g := range 6 {
			if err := c.DeleteAllOf(t.Context(), &corev1.Pod{}, client.InNamespace("scale"), client.MatchingLabels{"group": strconv.Itoa(g)}); err != nil {
				t.Fatal(err)
			}
		}
		const left = pods * 4 / 10
		var after map[string]reportPart
		waitFor(t, 60*time.Second, "the deleted Pods' results gone", func() error {
			after = reportParts(t, c, "scale")
			if n := count(after); n != left {
				return fmt.Errorf("%d results in %d parts, want %d", n, len(after), left)
			}
			return nil
		})
		for _, p := range after {
			for _, r := range p.report.Results {
				i, err := strconv.Atoi(strings.TrimPrefix(r.Resources[0].Name, "p"))
				if err != nil || i%10 < 6 {
					t.Errorf("%s still reports deleted Pod %s", p.name, r.Resources[0].Name)
				}
			}
			if got, want := p.report.Summary, summaryOf(p.report.Results); got != want {
				t.Errorf("%s: summary %+v, its results count %+v", p.name, got, want)
			}
		}
		if len(after) >= len(before) {
			t.Errorf("%d parts before, %d after deleting 60%% of the Pods", len(before), len(after))
		}
		for name := range before {
			if _, ok := after[name]; ok {
				continue
			}
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("wgpolicyk8s.io/v1alpha2")
			u.SetKind("PolicyReport")
			if err := c.Get(t.Context(), client.ObjectKey{Namespace: "scale", Name: name}, u); !apierrors.IsNotFound(err) {
				t.Errorf("stale part %s: %v, want not found", name, err)
			}
		}
		t.Logf("%d parts, then %d", len(before), len(after))
	})
	wantUp(t, "signet serve", wh)
}

// replica is a second signet serve in this process: no webhook
// configurations of its own, its own listener and self-generated
// certificate, the same namespace (so the same Lease) as the webhook.
type replica struct {
	addr   string
	client *http.Client
	mu     sync.Mutex
	logs   bytes.Buffer
	cancel context.CancelFunc
	// done is closed when serve has returned, with code.
	done chan struct{}
	code int
}

func (r *replica) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.Write(p)
}

func (r *replica) Logs() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.logs.String()
}

func (r *replica) Get(path string) (string, error) {
	resp, err := r.client.Get("https://" + r.addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, err = b.ReadFrom(resp.Body)
	return b.String(), err
}

// stop ends the replica as a signal would, and waits for it to exit.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("signet serve did not stop:\n%s", r.Logs())
	}
}

// startReplica runs signet serve against cluster with flags, and waits
// until it is ready.
func startReplica(t *testing.T, cluster *harness.Cluster, flags ...string) *replica {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{addr: l.Addr().String(), done: make(chan struct{})}
	l.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	args := append([]string{"serve", "--listen", r.addr, "--kubeconfig", cluster.Kubeconfig, "--ca-out", caFile, "--namespace", "signet-system", "--shutdown-delay=0"}, flags...)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() {
		r.code = server.Execute(ctx, args, r, r)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			t.Errorf("signet serve (replica) did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			t.Fatalf("signet serve (replica) exited with %d:\n%s", r.code, r.Logs())
		default:
		}
		if ca, err := os.ReadFile(caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			r.client = &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			if body, err := r.Get("/readyz"); err == nil && strings.Contains(body, "ok") {
				return r
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("signet serve (replica) did not become ready:\n%s", r.Logs())
	return nil
}

// TestAuditOnlyLeaderWrites runs two replicas of signet serve against one
// cluster: only the one holding the Lease audits and writes reports; when
// it stops, the other takes over within the Lease's duration and keeps the
// reports current.
func TestAuditOnlyLeaderWrites(t *testing.T) {
	began := time.Now()
	defer func() { t.Logf("wall time: %s", time.Since(began).Round(time.Millisecond)) }()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	c := cluster.Client
	key := cosign.GenerateKeyPair(t)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	good := reg.PushRandomImage(t, "ha/app", "v1")
	cosign.Sign(t, good.Ref, key, harness.Legacy)
	bad := reg.PushRandomImage(t, "ha/other", "v1")
	for _, ns := range []string{"team", "signet-system"} {
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	// warn: the webhook admits the unsigned Pod created later, and the
	// audit reports it.
	mustCreate(t, c, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "ha-signed"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/ha/**"}}, Mode: "warn",
		Authorities: []v1alpha1.Authority{{Name: "ci-key", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}})
	mustCreate(t, c, pod("team", "signed", good.Ref))
	mustCreate(t, c, pod("team", "unsigned", bad.Ref))

	flags := []string{"--allow-http-registry", "--audit-interval", "2s"}
	// The replica without webhooks starts first and takes the Lease, so
	// that stopping the leader leaves the webhook serving admission.
	first := startReplica(t, cluster, flags...)
	waitFor(t, 30*time.Second, "the first replica leading and auditing", func() error {
		if !strings.Contains(first.Logs(), "audit: started") {
			return fmt.Errorf("no %q in its logs", "audit: started")
		}
		return nil
	})
	second := webhook.Start(t, cluster, flags...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("first replica's logs:\n%s\nsecond replica's (webhook) logs:\n%s", first.Logs(), second.Logs())
		}
	})
	waitReport(t, c, "team",
		wantResult("Pod", "signed", "spec.containers[0].image", "pass"),
		wantResult("Pod", "unsigned", "spec.containers[0].image", "warn", "no signature found"))
	// Two more complete scans by the leader while the other watches.
	at, _ := metric(t, first, lastScanMetric)
	waitFor(t, 30*time.Second, "two more scans", func() error {
		now, _ := metric(t, first, lastScanMetric)
		if now < at+2 {
			return fmt.Errorf("last complete scan at %.3f, started watching at %.3f", now, at)
		}
		return nil
	})

	t.Run("exactly one replica audits", func(t *testing.T) {
		wantUp(t, "the first replica", first)
		wantUp(t, "the second replica", second)
		if n, _ := metric(t, first, decidedMetric); n < 2 {
			t.Errorf("the leader decided %v objects", n)
		}
		if _, ok := metric(t, first, lastScanMetric); !ok {
			t.Errorf("the leader has no %s", lastScanMetric)
		}
		if strings.Contains(second.Logs(), "audit: started") {
			t.Errorf("the second replica audits too")
		}
		if _, ok := metric(t, second, lastScanMetric); ok {
			t.Errorf("the second replica has %s", lastScanMetric)
		}
		if n, _ := metric(t, second, decidedMetric); n != 0 {
			t.Errorf("the second replica decided %v objects", n)
		}
	})
	t.Run("the reports have one field manager", func(t *testing.T) {
		for name, p := range reportParts(t, c, "team") {
			if len(p.managers) != 1 || p.managers[0] != "signet-audit/Apply" {
				t.Errorf("%s: managers %v, want [signet-audit/Apply]", name, p.managers)
			}
		}
	})
	t.Run("when the leader stops, the other takes over", func(t *testing.T) {
		stopped := time.Now()
		first.stop(t)
		waitFor(t, 20*time.Second, "the second replica auditing", func() error {
			if !strings.Contains(second.Logs(), "audit: started") {
				return fmt.Errorf("no %q in its logs", "audit: started")
			}
			if _, ok := metric(t, second, lastScanMetric); !ok {
				return fmt.Errorf("no %s", lastScanMetric)
			}
			return nil
		})
		t.Logf("took over %s after the leader stopped", time.Since(stopped).Round(time.Millisecond))
		wantUp(t, "the second replica", second)
		// Admitted by the remaining replica (warn), then audited by it.
		mustCreate(t, c, pod("team", "later", bad.Ref))
		waitReport(t, c, "team",
			wantResult("Pod", "later", "spec.containers[0].image", "warn", "no signature found"),
			wantResult("Pod", "signed", "spec.containers[0].image", "pass"))
		if err := c.Delete(t.Context(), pod("team", "unsigned")); err != nil {
			t.Fatal(err)
		}
		waitReport(t, c, "team", func(r auditReport) error {
			if _, ok := r.resultOf("Pod", "unsigned", "spec.containers[0].image"); ok {
				return fmt.Errorf("the deleted Pod's result is still reported")
			}
			return nil
		})
		if n, _ := metric(t, second, decidedMetric); n == 0 {
			t.Errorf("the new leader decided nothing")
		}
		for name, p := range reportParts(t, c, "team") {
			if len(p.managers) != 1 || p.managers[0] != "signet-audit/Apply" {
				t.Errorf("%s: managers %v, want [signet-audit/Apply]", name, p.managers)
			}
		}
	})
}

// TestAuditTrustRootChangeRechecksOnlyItsPolicies changes a TrustRoot with
// no periodic scan to interfere: the audit decides again exactly the
// objects whose images the policy using that TrustRoot selects, and no
// other.
func TestAuditTrustRootChangeRechecksOnlyItsPolicies(t *testing.T) {
	began := time.Now()
	defer func() { t.Logf("wall time: %s", time.Since(began).Round(time.Millisecond)) }()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cluster := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")), harness.WithScheme(scheme))
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	sig, other := sigstoretest.New(t), sigstoretest.New(t)
	c := cluster.Client
	key := cosign.GenerateKeyPair(t)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	keyless := func(repo string, s *sigstoretest.Sigstore) registrytest.Image {
		img := reg.PushRandomImage(t, repo, "v1")
		name, _, _ := strings.Cut(img.Ref, "@")
		reg.AttachBundle(t, img, s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, name, img.Digest),
			sigstoretest.SignOptions{Identity: ghWorkflow, Issuer: sigstoretest.GitHubIssuer}))
		return img
	}
	// Signed under the TrustRoot as it is first, and as it is after.
	before, after := keyless("keyless/before", sig), keyless("keyless/after", other)
	keyed := reg.PushRandomImage(t, "keyed/app", "v1")
	cosign.Sign(t, keyed.Ref, key, harness.Legacy)
	unmatched := reg.PushRandomImage(t, "elsewhere/app", "v1")

	for _, ns := range []string{"team", "signet-system"} {
		mustCreate(t, c, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	}
	root := &v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: "ci-root"}, Spec: v1alpha1.TrustRootSpec{
		TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(sig.TrustedRootJSON())}}}
	mustCreate(t, c, root)
	mustCreate(t, c, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "keyless"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/keyless/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", Keyless: &v1alpha1.KeylessAuthority{
			Identities: []v1alpha1.Identity{{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: ".*"}}, TrustRootRef: "ci-root"}}},
	}})
	mustCreate(t, c, &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "keyed"}, Spec: v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/keyed/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci-key", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}})
	// The TrustRoot's policy selects 4 objects (one of them through a
	// second container); the other policy 5 (the same one among them); 2
	// match no policy.
	const selected = 4
	for i := range 2 {
		mustCreate(t, c, pod("team", fmt.Sprintf("before-%d", i), before.Ref))
	}
	mustCreate(t, c, pod("team", "after-0", after.Ref))
	mustCreate(t, c, pod("team", "mixed", keyed.Ref, after.Ref))
	for i := range 4 {
		mustCreate(t, c, pod("team", fmt.Sprintf("keyed-%d", i), keyed.Ref))
	}
	for i := range 2 {
		mustCreate(t, c, pod("team", fmt.Sprintf("unmatched-%d", i), unmatched.Ref))
	}
	const objects = 10

	wh := webhook.Start(t, cluster, "--allow-http-registry", "--audit-interval", "1h", "--unmatched", "allow")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("signet serve logs:\n%s", wh.Logs())
		}
	})
	waitReport(t, c, "team",
		wantResult("Pod", "before-0", "spec.containers[0].image", "pass"),
		wantResult("Pod", "after-0", "spec.containers[0].image", "fail"),
		wantResult("Pod", "mixed", "spec.containers[1].image", "fail"),
		wantResult("Pod", "keyed-0", "spec.containers[0].image", "pass"),
		wantResult("Pod", "unmatched-0", "spec.containers[0].image", "skip"))
	settled := func(what string) float64 {
		t.Helper()
		var last float64
		stableSince := time.Now()
		waitFor(t, 60*time.Second, what, func() error {
			n, _ := metric(t, wh, decidedMetric)
			if n != last {
				last, stableSince = n, time.Now()
			}
			if time.Since(stableSince) < 5*time.Second {
				return fmt.Errorf("%v objects decided, changed %s ago", n, time.Since(stableSince).Round(time.Millisecond))
			}
			return nil
		})
		return last
	}
	first := settled("the first scan settled")
	if first < objects {
		t.Fatalf("the first scan decided %v objects, want at least %d", first, objects)
	}
	t.Logf("the first scan and start-up decided %v objects", first)

	if err := c.Get(t.Context(), client.ObjectKeyFromObject(root), root); err != nil {
		t.Fatal(err)
	}
	root.Spec.TrustedRoot.Data = string(other.TrustedRootJSON())
	if err := c.Update(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	waitReport(t, c, "team",
		wantResult("Pod", "before-0", "spec.containers[0].image", "fail"),
		wantResult("Pod", "after-0", "spec.containers[0].image", "pass"),
		wantResult("Pod", "mixed", "spec.containers[1].image", "pass"),
		wantResult("Pod", "keyed-0", "spec.containers[0].image", "pass"))
	moved := settled("the re-check settled") - first
	if moved != selected {
		t.Errorf("the TrustRoot change decided %v objects again, want %d (those its policy selects, of %d)", moved, selected, objects)
	}
	wantUp(t, "signet serve", wh)
}
