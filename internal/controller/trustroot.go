package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/internal/trustspec"
)

// Defaults of TrustRoot handling.
const (
	// DefaultRefreshInterval is how often a remote TrustRoot is refreshed
	// when its refreshInterval is not set.
	DefaultRefreshInterval = trustspec.DefaultRefreshInterval
	// minRetry is the first retry delay after a failed refresh; it doubles
	// up to the refresh interval.
	minRetry = time.Minute
	// ExpiresSoonWindow is how far ahead ExpiresSoon warns.
	ExpiresSoonWindow = 30 * 24 * time.Hour
	// RefreshAnnotation asks for a refresh now when its value changes
	// (e.g. kubectl annotate trustroot NAME signet.dev/refresh=$(date +%s)).
	RefreshAnnotation = "signet.dev/refresh"
	// refreshTimeout bounds one refresh of a remote TrustRoot.
	refreshTimeout = 2 * time.Minute
)

// trustRoots keeps the material of every TrustRoot object: resolved when
// the object changes (static kinds, in memory), fetched in the background
// (remote), re-read every minute (ConfigMaps). It never blocks admission.
// It signals rather than being polled: wake when an entry's next fetch
// may have moved, settled once every remote entry has had its first.
type trustRoots struct {
	// configMap reads a key of a ConfigMap in signet's namespace.
	configMap func(ctx context.Context, name, key string) ([]byte, error)
	// loadCache returns a remote TrustRoot's exported TUF state saved by
	// a leader before (nil, nil if none); nil disables restoring.
	loadCache func(ctx context.Context, trustRoot string) ([]byte, error)
	metrics   *TrustRootMetrics
	now       func() time.Time

	// wake has a value when an entry was added, changed or refreshed, so
	// its next fetch may be due sooner than trustLoop was waiting for.
	wake chan struct{}

	mu      sync.Mutex
	entries map[string]*trustEntry
	// settledCh is closed the first time every remote entry has had its
	// first fetch, successful or not (see firstFetched).
	settledCh     chan struct{}
	settledClosed bool
}

// trustEntry is one TrustRoot's state.
type trustEntry struct {
	name      string
	specHash  string // spec the entry was built from
	refreshed string // value of RefreshAnnotation last acted on
	kind      string
	tuf       *trust.TUF // remote and repository
	interval  time.Duration
	material  *trust.Material // last good
	err       error           // of the last attempt; nil if it succeeded
	lastGood  time.Time       // last success
	next      time.Time       // next attempt (remote, configMap)
	failures  int
	running   bool // a background refresh is in flight
}

func newTrustRoots(configMap func(ctx context.Context, name, key string) ([]byte, error), metrics *TrustRootMetrics) *trustRoots {
	return &trustRoots{configMap: configMap, metrics: metrics, now: time.Now, entries: map[string]*trustEntry{},
		wake: make(chan struct{}, 1), settledCh: make(chan struct{})}
}

// sync brings the entries in line with the objects: new or changed objects
// get a fresh entry (static kinds are resolved now, in memory; remote ones
// are left for refreshDue), deleted ones are dropped, ConfigMaps due are
// re-read. It reports whether any entry's material changed.
func (t *trustRoots) sync(ctx context.Context, objs []v1alpha1.TrustRoot) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	changed := false
	seen := map[string]bool{}
	for i := range objs {
		o := &objs[i]
		seen[o.Name] = true
		h := specHash(o)
		e := t.entries[o.Name]
		if e == nil || e.specHash != h {
			before := versionOf(e)
			e = t.newEntry(ctx, o, h)
			e.refreshed = o.Annotations[RefreshAnnotation]
			t.entries[o.Name] = e
			if versionOf(e) != before || e.err != nil {
				changed = true
			}
		}
		if a := o.Annotations[RefreshAnnotation]; a != e.refreshed {
			// Refresh now, keeping the last good material meanwhile.
			e.refreshed, e.next = a, t.now()
		}
		if e.kind == trustspec.KindConfigMap && !t.now().Before(e.next) {
			before := versionOf(e)
			t.resolveConfigMap(ctx, e, o.Spec.TrustedRoot.ConfigMapRef)
			changed = changed || versionOf(e) != before
		}
	}
	for name := range t.entries {
		if !seen[name] {
			delete(t.entries, name)
			t.metrics.forget(name)
			changed = true
		}
	}
	t.signal()
	return changed
}

// signal wakes trustLoop and closes settledCh when every remote entry has
// had its first fetch. Called with t.mu held, after a sync or a refresh.
func (t *trustRoots) signal() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
	if !t.settledClosed && t.settledLocked() {
		close(t.settledCh)
		t.settledClosed = true
	}
}

func versionOf(e *trustEntry) string {
	if e == nil || e.material == nil {
		return ""
	}
	return e.material.Version
}

func specHash(o *v1alpha1.TrustRoot) string {
	raw, _ := json.Marshal(struct {
		UID  string
		Spec v1alpha1.TrustRootSpec
	}{string(o.UID), o.Spec})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// newEntry builds an entry for o; everything but remote (and ConfigMap)
// material is resolved here, without I/O.
func (t *trustRoots) newEntry(ctx context.Context, o *v1alpha1.TrustRoot, h string) *trustEntry {
	e := &trustEntry{name: o.Name, specHash: h, next: t.now(), kind: trustspec.Kind(o.Spec), interval: DefaultRefreshInterval}
	s := o.Spec
	var err error
	switch e.kind {
	case trustspec.KindRemote:
		e.tuf, e.interval, err = trustspec.Remote(s.Remote)
		if err == nil {
			t.restore(ctx, e)
		}
	case trustspec.KindRepository:
		e.tuf, e.material, err = trustspec.Repository(s.Repository)
		t.metrics.Observe(o.Name, e.material, err, t.now())
	case trustspec.KindConfigMap:
		return e // read by sync
	case trustspec.KindTrustedRoot:
		e.material, err = trustspec.TrustedRoot(s.TrustedRoot.Data)
		t.metrics.Observe(o.Name, e.material, err, t.now())
	case trustspec.KindKeys:
		e.material, err = trustspec.Keys(s.Keys)
		t.metrics.Observe(o.Name, e.material, err, t.now())
	default:
		err = trustspec.ErrNoKind
	}
	e.err = err
	if err == nil && e.material != nil {
		e.lastGood = t.now()
	}
	return e
}

// restore gives a new remote entry the last good state a leader saved (so a
// restart with the mirror down keeps the last good root): verified from the
// spec's initial root like any refresh, so a tampered or foreign cache is
// refused; expired metadata too. The mirror is still asked right away.
func (t *trustRoots) restore(ctx context.Context, e *trustEntry) {
	if t.loadCache == nil {
		return
	}
	data, err := t.loadCache(ctx, e.name)
	if err != nil || data == nil {
		return
	}
	if m, err := e.tuf.Restore(ctx, data); err == nil {
		e.material, e.lastGood = m, t.now()
	}
}

// export returns the entry's TUF state to save, if its last refresh
// succeeded.
func (t *trustRoots) export(e *trustEntry) []byte {
	t.mu.Lock()
	ok := e.err == nil && e.tuf != nil && t.entries[e.name] == e
	t.mu.Unlock()
	if !ok {
		return nil
	}
	data, err := e.tuf.Export()
	if err != nil {
		return nil
	}
	return data
}

// resolveConfigMap re-reads a ConfigMap-held trusted root; a failure keeps
// the last good material. Called with t.mu held.
func (t *trustRoots) resolveConfigMap(ctx context.Context, e *trustEntry, ref *v1alpha1.ConfigMapKeyRef) {
	key := ref.Key
	if key == "" {
		key = trust.DefaultTrustedRootTarget
	}
	e.next = t.now().Add(time.Minute)
	data, err := t.configMap(ctx, ref.Name, key)
	var m *trust.Material
	if err == nil {
		m, err = trust.NewMaterial(data)
	}
	err = trustspec.FieldErr("spec.trustedRoot.configMapRef", err)
	if versionOf(e) != versionOfMaterial(m) || err != nil {
		t.metrics.Observe(e.name, m, err, t.now())
	}
	e.err = err
	if m != nil {
		e.material, e.lastGood = m, t.now()
	}
}

func versionOfMaterial(m *trust.Material) string {
	if m == nil {
		return ""
	}
	return m.Version
}

// settled reports whether every remote entry has had its first fetch,
// successful or not.
func (t *trustRoots) settled() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.settledLocked()
}

func (t *trustRoots) settledLocked() bool {
	for _, e := range t.entries {
		if e.kind == trustspec.KindRemote && e.material == nil && e.err == nil {
			return false
		}
	}
	return true
}

// firstFetched is closed the first time, after the first sync, that every
// remote entry has had its first fetch, successful or not (readiness
// waits for it, for a bounded time). Entries added later do not reopen it.
func (t *trustRoots) firstFetched() <-chan struct{} { return t.settledCh }

// due returns the remote entries whose refresh is due and marks them
// running.
func (t *trustRoots) due() []*trustEntry {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*trustEntry
	now := t.now()
	for _, e := range t.entries {
		if e.kind == trustspec.KindRemote && e.tuf != nil && !e.running && !now.Before(e.next) {
			e.running = true
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// untilDue is how long until the next remote entry not being refreshed is
// due (zero if one is due now); ok is false when there is none.
func (t *trustRoots) untilDue() (d time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var next time.Time
	for _, e := range t.entries {
		if e.kind == trustspec.KindRemote && e.tuf != nil && !e.running && (next.IsZero() || e.next.Before(next)) {
			next = e.next
		}
	}
	if next.IsZero() {
		return 0, false
	}
	return max(next.Sub(t.now()), 0), true
}

// refresh runs one TUF refresh of a remote entry and reports whether its
// material changed. A failure keeps the last good material and retries
// after a minute, doubling up to the interval.
func (t *trustRoots) refresh(ctx context.Context, e *trustEntry) bool {
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	m, err := e.tuf.Refresh(ctx)
	t.metrics.Observe(e.name, orCurrent(m, e.tuf), err, t.now())

	t.mu.Lock()
	defer t.mu.Unlock()
	e.running = false
	before := versionOf(e)
	e.err = trustspec.FieldErr("spec.remote", err)
	if err != nil {
		e.failures++
		backoff := minRetry << min(e.failures-1, 16)
		e.next = t.now().Add(min(backoff, e.interval))
	} else {
		e.failures = 0
		e.material, e.lastGood = m, t.now()
		e.next = t.now().Add(e.interval)
	}
	t.signal()
	// A replaced entry (the object changed meanwhile) is not current.
	if t.entries[e.name] != e {
		return false
	}
	return versionOf(e) != before || err != nil && before == ""
}

func orCurrent(m *trust.Material, c *trust.TUF) *trust.Material {
	if m != nil {
		return m
	}
	return c.Current()
}

// material returns the named TrustRoot's last good material.
func (t *trustRoots) material(name string) (root.TrustedMaterial, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[name]
	switch {
	case e == nil:
		return nil, fmt.Errorf("TrustRoot %q does not exist", name)
	case e.material != nil:
		return policy.WithVersion(e.material.TrustedRoot, e.material.Version), nil
	case e.err != nil:
		return nil, fmt.Errorf("TrustRoot %q has no trusted material: %w", name, e.err)
	default:
		return nil, fmt.Errorf("TrustRoot %q has no trusted material yet (it is being fetched)", name)
	}
}

// status is the status the entry calls for, at now; ok is false when there
// is no entry.
func (t *trustRoots) status(o *v1alpha1.TrustRoot, now time.Time) (v1alpha1.TrustRootStatus, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[o.Name]
	if e == nil {
		return v1alpha1.TrustRootStatus{}, false
	}
	st := v1alpha1.TrustRootStatus{ObservedGeneration: o.Generation, Conditions: append([]metav1.Condition(nil), o.Status.Conditions...)}
	gen := o.Generation
	set := func(typ string, status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen})
	}
	m := e.material
	switch {
	case m == nil && e.err != nil:
		set("Ready", metav1.ConditionFalse, failReason(e.kind, e.err), e.err.Error()+"; policies that name this TrustRoot deny what they select")
	case m == nil:
		set("Ready", metav1.ConditionFalse, "Pending", "fetching the trusted root; policies that name this TrustRoot deny what they select until it arrives")
	case e.err != nil:
		set("Ready", metav1.ConditionTrue, "RefreshFailed", fmt.Sprintf("using the trusted root %s resolved at %s; the last refresh failed: %v", m.Version, e.lastGood.UTC().Format(time.RFC3339), e.err))
	default:
		set("Ready", metav1.ConditionTrue, "Loaded", "using the trusted root "+m.Version)
	}
	if m == nil {
		meta.RemoveStatusCondition(&st.Conditions, "Expired")
		meta.RemoveStatusCondition(&st.Conditions, "ExpiresSoon")
		return st, true
	}
	st.Version = m.Version
	st.LastRefreshTime = &metav1.Time{Time: e.lastGood.UTC().Truncate(time.Second)}
	sum := trust.Describe(m.TrustedRoot, now)
	if sum.NextExpiry != nil {
		st.Expires = &metav1.Time{Time: sum.NextExpiry.At.UTC().Truncate(time.Second)}
	}
	if !m.MetadataExpires.IsZero() {
		st.MetadataExpires = &metav1.Time{Time: m.MetadataExpires.UTC().Truncate(time.Second)}
	}
	nothingValid := sum.Current == (trust.Counts{})
	switch {
	case errors.Is(e.err, trust.ErrMetadataExpired) || !m.MetadataExpires.IsZero() && now.After(m.MetadataExpires):
		set("Expired", metav1.ConditionTrue, "MetadataExpired", "the TUF metadata has expired: update the repository (or the mirror); until then the last good trusted root stays in use")
	case nothingValid:
		set("Expired", metav1.ConditionTrue, "NothingValid", "no certificate authority, log or timestamp authority of the trusted root is valid now")
	default:
		set("Expired", metav1.ConditionFalse, "Valid", "the trusted root and its metadata are valid")
	}
	exp := expiryOf(m, now)
	if !exp.IsZero() && exp.After(now) && exp.Sub(now) < ExpiresSoonWindow {
		set("ExpiresSoon", metav1.ConditionTrue, "ExpiresSoon", "trusted material or its TUF metadata expires at "+exp.UTC().Format(time.RFC3339))
	} else {
		set("ExpiresSoon", metav1.ConditionFalse, "NotSoon", fmt.Sprintf("nothing expires within %d days", int(ExpiresSoonWindow.Hours()/24)))
	}
	return st, true
}

func failReason(kind string, err error) string {
	switch {
	case errors.Is(err, trust.ErrMetadataExpired):
		return "MetadataExpired"
	case errors.Is(err, trust.ErrRollback):
		return "Rollback"
	case kind == trustspec.KindRemote || kind == trustspec.KindConfigMap:
		return "FetchFailed"
	default:
		return "Invalid"
	}
}

// configMapReader reads ConfigMap keys in ns through the API (by name,
// never watched).
func configMapReader(c client.Client, ns string) func(ctx context.Context, name, key string) ([]byte, error) {
	return func(ctx context.Context, name, key string) ([]byte, error) {
		var cm corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &cm); err != nil {
			return nil, fmt.Errorf("reading the ConfigMap %s/%s: %w", ns, name, err)
		}
		if v, ok := cm.Data[key]; ok {
			return []byte(v), nil
		}
		if v, ok := cm.BinaryData[key]; ok {
			return v, nil
		}
		return nil, fmt.Errorf("the ConfigMap %s/%s has no key %q", ns, name, key)
	}
}

// syncTrustRoots brings the TrustRoot entries up to date and returns the
// configuration to compile the snapshot with: its TrustVersion names the
// default material. A TrustRoot's material carries its version into the
// hash of each policy that uses it (policy.VersionedMaterial), so a new or
// refreshed TrustRoot re-verifies only the images of those policies, and
// cached results never outlive the material they were verified with.
func (c *Controller) syncTrustRoots(ctx context.Context) (policy.Config, []v1alpha1.TrustRoot, error) {
	var trs v1alpha1.TrustRootList
	if err := c.cache.List(ctx, &trs); err != nil {
		return policy.Config{}, nil, err
	}
	c.trustRoots.sync(ctx, trs.Items)
	cfg := c.Config
	if c.TrustVersion != nil {
		cfg.TrustVersion = c.TrustVersion()
	}
	return cfg, trs.Items, nil
}

// trustLoop refreshes remote TrustRoots when due (first when they are first
// seen, then every refreshInterval; failures retried sooner). It sleeps
// until the next refresh is due or an entry changes, and runs until ctx
// ends.
func (c *Controller) trustLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		for _, e := range c.trustRoots.due() {
			go c.refreshTrustRoot(ctx, e)
		}
		if d, ok := c.trustRoots.untilDue(); ok {
			timer.Reset(d)
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-c.trustRoots.wake:
		case <-timer.C:
		}
	}
}

// refreshTrustRoot refreshes one remote TrustRoot; the leader saves its TUF
// state. The snapshot is rebuilt when the material changed (and on the
// leader, whose status says when it last refreshed).
func (c *Controller) refreshTrustRoot(ctx context.Context, e *trustEntry) {
	changed := c.trustRoots.refresh(ctx, e)
	if c.leader.Leading() {
		if data := c.trustRoots.export(e); data != nil {
			if err := c.saveTrustCache(ctx, e.name, data); err != nil {
				c.Log.Warn("saving the TrustRoot's TUF state", "trustroot", e.name, "err", err)
			}
		}
	}
	if changed || c.leader.Leading() {
		c.trigger() // new material; or the status says when it last refreshed
	}
}

// writeTrustRootStatus writes each TrustRoot's status; only the leader
// does. Failures are logged.
func (c *Controller) writeTrustRootStatus(ctx context.Context, objs []v1alpha1.TrustRoot) {
	if !c.leader.Leading() {
		return
	}
	now := c.trustRoots.now()
	for i := range objs {
		o := &objs[i]
		st, ok := c.trustRoots.status(o, now)
		if !ok || trustStatusEqual(o.Status, st) {
			continue
		}
		o.Status = st
		if err := c.client.Status().Update(ctx, o); err != nil {
			c.Log.Warn("writing TrustRoot status", "trustroot", o.Name, "err", err)
		}
	}
}

// trustStatusEqual compares statuses ignoring condition transition times.
func trustStatusEqual(a, b v1alpha1.TrustRootStatus) bool {
	strip := func(s v1alpha1.TrustRootStatus) v1alpha1.TrustRootStatus {
		s.Conditions = append([]metav1.Condition(nil), s.Conditions...)
		for i := range s.Conditions {
			s.Conditions[i].LastTransitionTime = metav1.Time{}
		}
		return s
	}
	x, _ := json.Marshal(strip(a))
	y, _ := json.Marshal(strip(b))
	return string(x) == string(y)
}
