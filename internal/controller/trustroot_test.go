package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

func trustRootObj(name string, spec v1alpha1.TrustRootSpec) v1alpha1.TrustRoot {
	return v1alpha1.TrustRoot{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name), Generation: 1}, Spec: spec}
}

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func cond(st v1alpha1.TrustRootStatus, typ string) string {
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		return "<none>"
	}
	return string(c.Status) + "/" + c.Reason
}

// TestTrustRootsLifecycle drives the entries through every kind, a remote
// fetch, a failed refresh (last good kept), a retry, deletion, and checks
// status, versions and metrics at each step.
func TestTrustRootsLifecycle(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	metrics := NewTrustRootMetrics(reg)
	now := time.Now()
	tr := newTrustRoots(func(context.Context, string, string) ([]byte, error) {
		return nil, errors.New("no cluster here")
	}, metrics)
	tr.now = func() time.Time { return now }

	s := sigstoretest.New(t)
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	packed, err := trust.PackDirectory(repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	remoteRepo := tuftest.New(t)
	remoteRepo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	srv := remoteRepo.Serve(t)

	objs := []v1alpha1.TrustRoot{
		trustRootObj("inline", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(s.TrustedRootJSON())}}),
		trustRootObj("repo", v1alpha1.TrustRootSpec{Repository: &v1alpha1.TUFRepository{MirrorFS: packed, Root: repo.InitialRoot()}}),
		trustRootObj("mirror", v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: srv.URL, Root: remoteRepo.InitialRoot()}}),
		trustRootObj("broken", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: "{"}}),
		trustRootObj("cm", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{ConfigMapRef: &v1alpha1.ConfigMapKeyRef{Name: "roots"}}}),
	}
	if !tr.sync(ctx, objs) {
		t.Fatal("the first sync changed nothing")
	}
	if srv.Requests() != 0 {
		t.Fatalf("sync made %d requests to the mirror; remote roots are fetched in the background", srv.Requests())
	}
	want, _ := trust.NewMaterial(s.TrustedRootJSON())
	for _, name := range []string{"inline", "repo"} {
		m, err := tr.material(name)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		// The version goes into the hash of each policy that uses it.
		if v, ok := m.(policy.VersionedMaterial); !ok || v.TrustVersion() != want.Version {
			t.Errorf("%s: material is versioned: %v, want version %s", name, ok, want.Version)
		}
	}
	for name, msg := range map[string]string{"mirror": "being fetched", "broken": "spec.trustedRoot.data", "cm": "no cluster here", "absent": "does not exist"} {
		if _, err := tr.material(name); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", name, err, msg)
		}
	}
	st, _ := tr.status(&objs[1], now)
	if got := cond(st, "Ready") + " " + cond(st, "Expired") + " " + cond(st, "ExpiresSoon"); got != "True/Loaded False/Valid True/ExpiresSoon" {
		// sigstoretest's CA is valid for a day and the TUF metadata a week.
		t.Errorf("repo conditions: %s", got)
	}
	if st.Version != want.Version || st.MetadataExpires == nil || st.Expires == nil {
		t.Errorf("repo status: %+v", st)
	}
	st, _ = tr.status(&objs[2], now)
	if got := cond(st, "Ready"); got != "False/Pending" {
		t.Errorf("mirror before its fetch: %s", got)
	}
	st, _ = tr.status(&objs[4], now)
	if got := cond(st, "Ready"); got != "False/FetchFailed" {
		t.Errorf("configMap: %s", got)
	}

	// The remote is due now; refresh it. Until its first attempt, the trust
	// roots are not settled (readiness waits for that).
	if tr.settled() {
		t.Fatal("settled before the remote's first fetch")
	}
	if closed(tr.firstFetched()) {
		t.Fatal("readiness signalled before the remote's first fetch")
	}
	if d, ok := tr.untilDue(); !ok || d != 0 {
		t.Fatalf("the remote's first fetch is due in %v (%v), want now", d, ok)
	}
	due := tr.due()
	if len(due) != 1 || due[0].name != "mirror" {
		t.Fatalf("due: %v", due)
	}
	if len(tr.due()) != 0 {
		t.Fatal("a running refresh was handed out twice")
	}
	v0 := versions(tr)
	if !tr.refresh(ctx, due[0]) {
		t.Fatal("the first fetch did not report a change")
	}
	if !tr.settled() {
		t.Fatal("not settled after the remote's first fetch")
	}
	if !closed(tr.firstFetched()) {
		t.Fatal("readiness not signalled after the remote's first fetch")
	}
	if d, ok := tr.untilDue(); !ok || d != DefaultRefreshInterval {
		t.Fatalf("the next refresh is due in %v (%v), want %v", d, ok, DefaultRefreshInterval)
	}
	if versions(tr) == v0 {
		t.Fatal("the version did not change with new material")
	}
	if _, err := tr.material("mirror"); err != nil {
		t.Fatal(err)
	}
	if len(tr.due()) != 0 {
		t.Fatal("due again right after a refresh")
	}

	// A day later the mirror is down: the last good material stays, the
	// status says so, the retry comes a minute later.
	now = now.Add(DefaultRefreshInterval)
	srv.SetDown(true)
	due = tr.due()
	if len(due) != 1 {
		t.Fatalf("not due after the interval: %v", due)
	}
	v1 := versions(tr)
	tr.refresh(ctx, due[0])
	if versions(tr) != v1 {
		t.Fatal("a failed refresh changed the version")
	}
	if _, err := tr.material("mirror"); err != nil {
		t.Fatalf("the last good material was dropped: %v", err)
	}
	st, _ = tr.status(&objs[2], now)
	if got := cond(st, "Ready"); got != "True/RefreshFailed" {
		t.Errorf("mirror down: %s", got)
	}
	now = now.Add(30 * time.Second)
	if len(tr.due()) != 0 {
		t.Fatal("retried before a minute")
	}
	now = now.Add(31 * time.Second)
	srv.SetDown(false)
	due = tr.due()
	if len(due) != 1 {
		t.Fatal("not retried after a minute")
	}
	tr.refresh(ctx, due[0])
	st, _ = tr.status(&objs[2], now)
	if got := cond(st, "Ready"); got != "True/Loaded" {
		t.Errorf("mirror back: %s", got)
	}

	// The metrics count every outcome.
	if got := value(t, metrics.refreshes.WithLabelValues("mirror", "success")); got != 2 {
		t.Errorf("mirror successes: %v, want 2", got)
	}
	if got := value(t, metrics.refreshes.WithLabelValues("mirror", "error")); got != 1 {
		t.Errorf("mirror errors: %v, want 1", got)
	}
	if got := value(t, metrics.expiry.WithLabelValues("repo")); got <= float64(time.Now().Unix()) {
		t.Errorf("repo expiry gauge: %v", got)
	}

	// A changed object gets a new entry; a deleted one goes.
	objs[0].Spec.TrustedRoot.Data = string(sigstoretest.New(t).TrustedRootJSON())
	v2 := versions(tr)
	if !tr.sync(ctx, objs[:3]) {
		t.Fatal("changing and deleting TrustRoots changed nothing")
	}
	if versions(tr) == v2 {
		t.Fatal("the version did not change")
	}
	if _, err := tr.material("broken"); err == nil {
		t.Fatal("a deleted TrustRoot still resolves")
	}
	// The refresh annotation makes the remote due now, keeping its
	// material meanwhile.
	objs[2].Annotations = map[string]string{RefreshAnnotation: "1"}
	tr.sync(ctx, objs[:3])
	if len(tr.due()) != 1 {
		t.Fatal("the refresh annotation did not make the remote due")
	}
	if _, err := tr.material("mirror"); err != nil {
		t.Fatalf("the refresh annotation dropped the material: %v", err)
	}
}

// TestTrustRootExpired: expired TUF metadata shows as Expired.
func TestTrustRootExpired(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, sigstoretest.New(t).TrustedRootJSON())
	srv := repo.Serve(t)
	tr := newTrustRoots(nil, nil)
	obj := trustRootObj("m", v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: srv.URL, Root: repo.InitialRoot()}})
	tr.sync(context.Background(), []v1alpha1.TrustRoot{obj})
	e := tr.due()[0]
	tr.refresh(context.Background(), e)
	repo.ExpireTimestamp()
	tr.entries["m"].next = time.Time{}
	tr.refresh(context.Background(), tr.due()[0])
	st, _ := tr.status(&obj, time.Now())
	if got := cond(st, "Ready") + " " + cond(st, "Expired"); got != "True/RefreshFailed True/MetadataExpired" {
		t.Errorf("conditions: %s", got)
	}
	// Later than the metadata's expiry, a serialized repository too.
	st, _ = tr.status(&obj, time.Now().Add(8*24*time.Hour))
	if got := cond(st, "Expired"); got != "True/MetadataExpired" {
		t.Errorf("after the metadata expiry: %s", got)
	}
}

func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestTrustRootRestoredAfterRestart: a remote TrustRoot's last good state,
// saved by the leader, gives a restarted process the last good root while
// the mirror is down; a cache another repository signed is refused.
func TestTrustRootRestoredAfterRestart(t *testing.T) {
	ctx := context.Background()
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, sigstoretest.New(t).TrustedRootJSON())
	repo.RotateRoot()
	repo.Refresh()
	srv := repo.Serve(t)
	obj := trustRootObj("m", v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: srv.URL, Root: repo.InitialRoot()}})

	before := newTrustRoots(nil, nil)
	before.sync(ctx, []v1alpha1.TrustRoot{obj})
	e := before.due()[0]
	before.refresh(ctx, e)
	saved := before.export(e)
	if saved == nil {
		t.Fatal("nothing to save after a successful refresh")
	}

	srv.SetDown(true)
	for name, cache := range map[string][]byte{"own": saved, "foreign": foreignExport(t)} {
		after := newTrustRoots(nil, nil)
		after.loadCache = func(context.Context, string) ([]byte, error) { return cache, nil }
		after.sync(ctx, []v1alpha1.TrustRoot{obj})
		_, err := after.material("m")
		if (err == nil) != (name == "own") {
			t.Errorf("%s cache: material error %v", name, err)
		}
		if name == "own" && versions(after) != versions(before) {
			t.Errorf("restored version %s, want %s", versions(after), versions(before))
		}
	}
}

func foreignExport(t *testing.T) []byte {
	other := tuftest.New(t)
	other.AddTarget(trust.DefaultTrustedRootTarget, sigstoretest.New(t).TrustedRootJSON())
	data, err := trust.PackDirectory(other.Dir())
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// versions names every entry's material version, to see changes.
func versions(t *trustRoots) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	names := make([]string, 0, len(t.entries))
	for n := range t.entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, ";%s=%s", n, versionOf(t.entries[n]))
	}
	return b.String()
}
