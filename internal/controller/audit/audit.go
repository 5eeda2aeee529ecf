// Package audit is signet serve's background audit: the leader re-decides
// what already runs (Pods as the kubelet reported them, the templates of
// workload controllers, Crossplane packages, --image-field kinds) through
// the admission handler's Decider, and writes the results as PolicyReports
// (ClusterPolicyReports for cluster-scoped objects), Events and metrics.
// Package internal/audit decides what the results and reports hold; this
// package reads the cluster and writes to it.
//
//   - audit.go: the Scanner, its queue and when it scans;
//   - objects.go: the kinds it reads and the objects as it keeps them;
//   - write.go: reports and Events;
//   - metrics.go: its Prometheus metrics.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/workload"
)

// auditQPS bounds the audit's requests to the API server a second: pull
// secrets and service accounts (once per chunk each), report writes.
const auditQPS = 20

// scanChunk is how many objects the audit decides between two writes of
// the reports: results of a long scan reach the reports as they come.
const scanChunk = 500

// Workers is how many objects the audit decides at once: few, so that
// admission's parallel decisions always find the registry (and the CPU)
// free; results of images admission has decided come from the cache.
const Workers = 2

// Scanner is the background audit of one signet serve replica. Only while
// Leading reports true does it read objects and write; the caches it
// fills stay for the next time it leads.
type Scanner struct {
	Auditor   *audit.Auditor
	Extractor *workload.Extractor
	// Snapshot returns the policies admission decides with now.
	Snapshot func() *policy.Snapshot
	Leading  func() bool
	// Interval is the time between full scans (0: only the scan at start
	// and the changes).
	Interval time.Duration
	Log      *slog.Logger
	Metrics  *Metrics
	// Busy, when set, reports admission requests in flight: the audit
	// waits for them to end (up to yieldAtMost per object) before it
	// decides an object, so that it takes the CPU and the registry from
	// no admission.
	Busy func() int64

	cfg    *rest.Config
	client client.Client
	// kinds are the kinds read, set before the informers start.
	kinds []Kind

	mu      sync.Mutex
	objects map[key]*entry
	queue   map[key]bool
	kick    chan struct{}
	// written are the report parts of each scope as last written or read.
	written map[string]audit.Written
	dirty   map[string]bool
	backoff map[string]backoff
	// fullSince is when the full scan in progress started (zero: none).
	fullSince time.Time
	events    *eventLimiter
}

type key struct {
	kind            int // index in kinds
	namespace, name string
}

// entry is one audited object as the scanner keeps it.
type entry struct {
	obj     *unstructured.Unstructured
	subject audit.Subject
	results []audit.Result
	failed  bool
	tries   int
	skip    bool // SubjectOf said not to audit it
}

type backoff struct {
	until time.Time
	wait  time.Duration
}

// New prepares the scanner; nothing is read until Run. Its client has a
// rate limit of its own (auditQPS), apart from the policy controller's
// and admission's.
func New(cfg *rest.Config, s *Scanner) (*Scanner, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = auditQPS, 2*auditQPS
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return nil, err
	}
	if s.client, err = client.New(cfg, client.Options{HTTPClient: hc, Mapper: mapper}); err != nil {
		return nil, err
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.cfg = cfg
	if s.Auditor.Namespaces != nil {
		// Labels from the policy controller's cache; pull secrets through
		// the audit's own client (its own rate limit: admission never
		// queues behind the audit's reads), once per object set per chunk.
		s.Auditor.Namespaces = &namespaceReader{labels: s.Auditor.Namespaces, client: s.client, memo: map[string]pullSecrets{}}
	}
	s.objects, s.queue, s.kick = map[key]*entry{}, map[key]bool{}, make(chan struct{}, 1)
	s.written, s.dirty, s.backoff = map[string]audit.Written{}, map[string]bool{}, map[string]backoff{}
	s.events = newEventLimiter()
	return s, nil
}

// Run audits while this replica leads, until ctx ends.
func (s *Scanner) Run(ctx context.Context) {
	wait := time.NewTicker(time.Second)
	defer wait.Stop()
	for !s.Leading() {
		select {
		case <-ctx.Done():
			return
		case <-wait.C:
		}
	}
	kinds, err := s.watch(ctx)
	if err != nil {
		s.Log.Error("audit: cannot watch workloads; no audit", "err", err)
		s.Metrics.scanError()
		return
	}
	s.Log.Info("audit: started", "kinds", len(kinds), "interval", s.Interval.String())
	s.loop(ctx)
}

// watch starts an informer per kind the cluster serves, each trimming what
// it caches (TrimFor), and waits for them to sync.
func (s *Scanner) watch(ctx context.Context) ([]Kind, error) {
	found, missing := Kinds(s.client.RESTMapper(), s.Extractor)
	if len(missing) > 0 {
		s.Log.Info("audit: kinds the cluster does not serve are not audited", "kinds", missing)
	}
	ca, err := cache.New(s.cfg, cache.Options{Mapper: s.client.RESTMapper(), DefaultTransform: TrimFor(s.Extractor)})
	if err != nil {
		return nil, err
	}
	s.kinds = found
	for i, k := range found {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(k.GVK)
		inf, err := ca.GetInformer(ctx, u)
		if err != nil {
			return nil, fmt.Errorf("watching %s: %w", k.Kind, err)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(o any) { s.changed(i, o) },
			UpdateFunc: func(old, o any) {
				if !sameTrimmed(old, o) {
					s.changed(i, o)
				}
			},
			DeleteFunc: func(o any) { s.deleted(i, o) },
		}); err != nil {
			return nil, err
		}
	}
	go func() {
		if err := ca.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Error("audit: watch stopped", "err", err)
		}
	}()
	if !ca.WaitForCacheSync(ctx) {
		return nil, errors.New("audit caches did not sync")
	}
	return found, nil
}

func (s *Scanner) changed(kind int, o any) {
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	k := key{kind, u.GetNamespace(), u.GetName()}
	s.mu.Lock()
	e := s.objects[k]
	if e == nil {
		e = &entry{}
		s.objects[k] = e
	}
	e.obj = u
	s.queue[k] = true
	s.mu.Unlock()
	s.poke()
}

// sameTrimmed reports whether an update changed nothing the audit reads
// (a Pod's conditions, a Deployment's status: the transform dropped them).
func sameTrimmed(old, o any) bool {
	a, ok1 := old.(*unstructured.Unstructured)
	b, ok2 := o.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return false
	}
	return equality.Semantic.DeepEqual(withoutVersion(a), withoutVersion(b))
}

func withoutVersion(u *unstructured.Unstructured) map[string]any {
	out := maps.Clone(u.Object)
	if m, ok := out["metadata"].(map[string]any); ok {
		m = maps.Clone(m)
		delete(m, "resourceVersion")
		delete(m, "generation")
		out["metadata"] = m
	}
	return out
}

func (s *Scanner) deleted(kind int, o any) {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o = t.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	k := key{kind, u.GetNamespace(), u.GetName()}
	s.mu.Lock()
	if e := s.objects[k]; e != nil {
		delete(s.objects, k)
		delete(s.queue, k)
		if len(e.results) > 0 {
			s.dirty[k.namespace] = true
		}
	}
	s.mu.Unlock()
	s.poke()
}

func (s *Scanner) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// loop scans what is queued and writes what changed while this replica
// leads, and queues: every object each Interval and when it starts
// leading again; the objects a changed policy selects when the snapshot
// changes.
func (s *Scanner) loop(ctx context.Context) {
	var interval <-chan time.Time
	if s.Interval > 0 {
		t := time.NewTicker(s.Interval)
		defer t.Stop()
		interval = t.C
	}
	snapTick := time.NewTicker(time.Second)
	defer snapTick.Stop()
	snap := s.Snapshot()
	leading := false
	for {
		now := s.Leading()
		switch {
		case now && !leading:
			s.takeOver(ctx)
		case !now && leading:
			s.Metrics.stepDown()
			s.Log.Info("audit: paused, another replica leads")
		}
		leading = now
		if leading {
			s.scan(ctx, snap)
			s.write(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-interval:
			s.queueAll()
		case <-snapTick.C:
			if next := s.Snapshot(); next != snap {
				s.queueChanged(snap, next)
				snap = next
			}
		}
		// Coalesce a burst of changes.
		time.Sleep(50 * time.Millisecond)
	}
}

// takeOver starts a leader's audit: every object is scanned, and every
// scope that holds signet's reports is brought up to date (an object
// deleted while no replica led leaves results behind otherwise). What
// another leader wrote meanwhile is read again before it is replaced.
func (s *Scanner) takeOver(ctx context.Context) {
	s.Metrics.lead()
	scopes := s.scopesWithReports(ctx)
	s.mu.Lock()
	clear(s.written)
	for _, scope := range scopes {
		s.dirty[scope] = true
	}
	s.mu.Unlock()
	s.queueAll()
}

// queueAll queues every object: a full scan.
func (s *Scanner) queueAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.objects {
		s.queue[k] = true
	}
	if s.fullSince.IsZero() {
		s.fullSince = time.Now()
	}
}

// queueChanged queues the objects whose images a policy that changed
// between old and next selects, in either; every object when the settings
// changed.
func (s *Scanner) queueChanged(old, next *policy.Snapshot) {
	if old == nil || next == nil || !sameConfig(old.Config(), next.Config()) {
		s.queueAll()
		return
	}
	changed := changedPolicies(old, next)
	if len(changed) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, e := range s.objects {
		t := policy.Target{Namespace: k.namespace, Kind: e.subject.Kind.Kind}
		if e.subject.Kind.Kind == "" {
			s.queue[k] = true // not decided yet
			continue
		}
	refs:
		for _, im := range e.subject.Images {
			ref, err := reference.Parse(im.Image)
			if err != nil {
				continue
			}
			for _, snap := range []*policy.Snapshot{old, next} {
				for _, p := range snap.Match(ref, t) {
					if changed[p.Object.ID()] {
						s.queue[k] = true
						break refs
					}
				}
			}
		}
	}
}

func sameConfig(a, b policy.Config) bool {
	return a.Unmatched == b.Unmatched && slices.Equal(a.ExcludedNamespaces, b.ExcludedNamespaces) &&
		a.NamespaceOptIn == b.NamespaceOptIn && a.NamespaceOptInLabel == b.NamespaceOptInLabel && a.TrustVersion == b.TrustVersion
}

// changedPolicies are the IDs of the policies added, removed or changed
// (their hash covers spec, key material and trust material).
func changedPolicies(old, next *policy.Snapshot) map[string]bool {
	before := map[string]string{}
	for _, p := range old.Policies() {
		before[p.Object.ID()] = p.Hash
	}
	out := map[string]bool{}
	for _, p := range next.Policies() {
		id := p.Object.ID()
		if h, ok := before[id]; !ok || h != p.Hash {
			out[id] = true
		}
		delete(before, id)
	}
	for id := range before {
		out[id] = true
	}
	return out
}

// scan decides the queued objects, Workers at a time, until the queue is
// empty or this replica stops leading.
func (s *Scanner) scan(ctx context.Context, snap *policy.Snapshot) {
	if snap == nil {
		return
	}
	for ctx.Err() == nil && s.Leading() {
		s.mu.Lock()
		batch := make([]key, 0, min(len(s.queue), scanChunk))
		for k := range s.queue {
			if len(batch) == scanChunk {
				break
			}
			batch = append(batch, k)
			delete(s.queue, k)
		}
		full := s.fullSince
		s.mu.Unlock()
		if n, ok := s.Auditor.Namespaces.(*namespaceReader); ok {
			n.forget()
		}
		if len(batch) == 0 {
			if !full.IsZero() {
				s.mu.Lock()
				s.fullSince = time.Time{}
				s.mu.Unlock()
				s.Metrics.scanned(time.Since(full))
			}
			return
		}
		work := make(chan key)
		var wg sync.WaitGroup
		for range Workers {
			wg.Go(func() {
				for k := range work {
					s.decide(ctx, snap, k)
				}
			})
		}
		for _, k := range batch {
			select {
			case work <- k:
			case <-ctx.Done():
			}
		}
		close(work)
		wg.Wait()
		s.updateMetrics()
		// Results of long scans reach the reports as they come. A policy
		// changed meanwhile queues what it selects again (loop).
		s.write(ctx)
	}
}

// decide audits one object.
func (s *Scanner) decide(ctx context.Context, snap *policy.Snapshot, k key) {
	s.mu.Lock()
	e := s.objects[k]
	if e == nil {
		s.mu.Unlock()
		return
	}
	u := e.obj
	s.mu.Unlock()
	subject, ok, err := SubjectOf(s.Extractor, s.kinds[k.kind], u)
	if err != nil {
		s.Log.Warn("audit: cannot read an object as admission would", "kind", s.kinds[k.kind].Kind.String(), "namespace", k.namespace, "name", k.name, "err", err)
		s.Metrics.scanError()
	}
	var refs []reference.Reference
	for _, im := range subject.Images {
		if ref, err := reference.Parse(im.Image); err == nil {
			refs = append(refs, ref)
		}
	}
	if host, until := s.backedOff(refs); !until.IsZero() {
		s.retryAt(k, until)
		s.Log.Debug("audit: registry rate-limited us; retrying later", "host", host, "at", until)
		return
	}
	var results []audit.Result
	if ok {
		s.yield(ctx)
		results = s.Auditor.Evaluate(ctx, snap, subject)
		s.Metrics.decided()
	}
	if ctx.Err() != nil {
		return
	}
	limited := ""
	for _, r := range results {
		if r.RateLimited {
			if ref, err := reference.Parse(r.Image); err == nil {
				limited = ref.Registry()
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.objects[k] != e {
		return // deleted meanwhile
	}
	if limited != "" && e.tries < maxTries {
		// Slow down rather than fail: keep what was reported, try again
		// once the host has had a rest.
		e.tries++
		s.retryAt(k, s.slowDown(limited))
		return
	}
	e.tries = 0
	// Kept for queueChanged; the JSON Pointers are admission's, for
	// patches, and field paths repeat from object to object.
	for i := range subject.Images {
		subject.Images[i].Pointer, subject.Images[i].Path = "", intern(subject.Images[i].Path)
	}
	e.subject, e.skip = subject, !ok
	turnedFailed := audit.Failed(results) && !e.failed
	e.failed = audit.Failed(results)
	if !sameResults(e.results, results) {
		s.dirty[k.namespace] = true
	}
	e.results = results
	if turnedFailed {
		go s.event(context.WithoutCancel(ctx), u, subject.Object, results)
	}
}

// yieldAtMost bounds how long the audit waits for admissions to end before
// it decides an object: under constant admission load it goes on, slowly.
const yieldAtMost = 250 * time.Millisecond

// yield waits while admission requests are in flight, up to yieldAtMost.
func (s *Scanner) yield(ctx context.Context) {
	if s.Busy == nil {
		return
	}
	deadline := time.Now().Add(yieldAtMost)
	for s.Busy() > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
}

// paths interns image field paths: thousands of Pods share a few.
var paths sync.Map

func intern(p string) string {
	if v, ok := paths.Load(p); ok {
		return v.(string)
	}
	v, _ := paths.LoadOrStore(p, p)
	return v.(string)
}

// maxTries: an object rate-limited this many times in a row is reported
// with what the registry answered.
const maxTries = 5

func (s *Scanner) backedOff(refs []reference.Reference) (string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for _, ref := range refs {
		if b, ok := s.backoff[ref.Registry()]; ok && b.until.After(now) {
			return ref.Registry(), b.until
		}
	}
	return "", time.Time{}
}

// slowDown backs off host: a second, doubling up to a minute while it
// keeps answering 429. Callers hold mu.
func (s *Scanner) slowDown(host string) time.Time {
	b := s.backoff[host]
	switch {
	case b.wait == 0:
		b.wait = time.Second
	case b.wait < time.Minute:
		b.wait *= 2
	}
	b.until = time.Now().Add(b.wait)
	s.backoff[host] = b
	s.Metrics.rateLimited(host)
	return b.until
}

func (s *Scanner) retryAt(k key, at time.Time) {
	time.AfterFunc(time.Until(at), func() {
		s.mu.Lock()
		if s.objects[k] != nil {
			s.queue[k] = true
		}
		s.mu.Unlock()
		s.poke()
	})
}

func sameResults(a, b []audit.Result) bool {
	return slices.EqualFunc(a, b, func(x, y audit.Result) bool {
		return x.Path == y.Path && x.Image == y.Image && x.Digest == y.Digest && x.Policy == y.Policy &&
			x.Effect == y.Effect && x.Reason == y.Reason && x.Admission == y.Admission && slices.Equal(x.Authorities, y.Authorities)
	})
}

// Results returns the current results of every audited object, for tests
// and the metrics.
func (s *Scanner) Results() []audit.Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []audit.Result
	for _, e := range s.objects {
		out = append(out, e.results...)
	}
	return out
}
