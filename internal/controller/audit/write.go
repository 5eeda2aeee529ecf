package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/audit"
)

// The report kinds (wgpolicyk8s.io/v1alpha2, as Kyverno and Policy
// Reporter read them).
var (
	PolicyReport        = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}
	ClusterPolicyReport = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "ClusterPolicyReport"}
)

// ManagedBy labels the reports signet writes (and only those are read
// back or deleted).
const ManagedBy = "app.kubernetes.io/managed-by"

// fieldOwner is signet's field manager for server-side apply.
const fieldOwner = client.FieldOwner("signet-audit")

// write brings the reports of every scope whose results changed up to
// date: parts whose results changed are applied, parts no longer needed
// deleted. A scope whose reports cannot be written stays dirty.
func (s *Scanner) write(ctx context.Context) {
	s.mu.Lock()
	scopes := make([]string, 0, len(s.dirty))
	for scope := range s.dirty {
		scopes = append(scopes, scope)
	}
	s.mu.Unlock()
	for _, scope := range scopes {
		if ctx.Err() != nil || !s.Leading() {
			return
		}
		if err := s.writeScope(ctx, scope); err != nil {
			s.Log.Warn("audit: writing reports", "namespace", scope, "err", err)
			s.Metrics.scanError()
			s.mu.Lock()
			s.dirty[scope] = true
			s.mu.Unlock()
		}
	}
}

// writeScope clears scope's dirty mark as it reads the results it writes,
// so that a change made while it writes marks the scope again.
func (s *Scanner) writeScope(ctx context.Context, scope string) error {
	s.mu.Lock()
	delete(s.dirty, scope)
	var results []audit.Result
	for k, e := range s.objects {
		if k.namespace == scope {
			results = append(results, e.results...)
		}
	}
	old, known := s.written[scope]
	s.mu.Unlock()
	if !known {
		parts, err := s.readReports(ctx, scope)
		if err != nil {
			return err
		}
		old = audit.Record(parts)
	}
	parts := audit.Reports(results, old, time.Now())
	kept := map[string]bool{}
	for _, p := range parts {
		kept[p.Name] = true
		if !old.Changed(p) {
			continue
		}
		if err := s.apply(ctx, scope, p); err != nil {
			return err
		}
	}
	for _, o := range old.Parts {
		if kept[o.Name] {
			continue
		}
		if err := s.client.Delete(ctx, reportObject(scope, o.Name)); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("deleting %s: %w", o.Name, err)
		}
	}
	s.mu.Lock()
	s.written[scope] = audit.Record(parts)
	s.mu.Unlock()
	return nil
}

func reportObject(scope, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	if scope == "" {
		u.SetGroupVersionKind(ClusterPolicyReport)
	} else {
		u.SetGroupVersionKind(PolicyReport)
		u.SetNamespace(scope)
	}
	u.SetName(name)
	return u
}

// apply writes one report part (server-side apply: created or replaced).
func (s *Scanner) apply(ctx context.Context, scope string, p audit.Report) error {
	u := reportObject(scope, p.Name)
	u.SetLabels(map[string]string{ManagedBy: "signet"})
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	var fields map[string]any
	if err := json.Unmarshal(body, &fields); err != nil {
		return err
	}
	u.Object["summary"], u.Object["results"] = fields["summary"], fields["results"]
	if err := s.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), fieldOwner, client.ForceOwnership); err != nil {
		if meta.IsNoMatchError(err) {
			return fmt.Errorf("the %s CRD is not installed (the Helm chart and deploy/crds ship it): %w", u.GetKind(), err)
		}
		return fmt.Errorf("writing %s %s: %w", u.GetKind(), p.Name, err)
	}
	return nil
}

// readReports reads the parts of scope's reports that signet wrote before
// (by another leader, or before a restart), so that unchanged results keep
// their timestamps and stale parts are deleted.
func (s *Scanner) readReports(ctx context.Context, scope string) ([]audit.Report, error) {
	list := &unstructured.UnstructuredList{}
	gvk := PolicyReport
	opts := []client.ListOption{client.MatchingLabels{ManagedBy: "signet"}}
	if scope == "" {
		gvk = ClusterPolicyReport
	} else {
		opts = append(opts, client.InNamespace(scope))
	}
	list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	if err := s.client.List(ctx, list, opts...); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, fmt.Errorf("the %s CRD is not installed (the Helm chart and deploy/crds ship it): %w", gvk.Kind, err)
		}
		return nil, err
	}
	byName := map[string]audit.Report{}
	for _, item := range list.Items {
		if !audit.IsReportName(item.GetName()) {
			continue
		}
		body, err := json.Marshal(item.Object)
		if err != nil {
			return nil, err
		}
		var r audit.Report
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("reading %s %s/%s: %w", gvk.Kind, scope, item.GetName(), err)
		}
		r.Name = item.GetName()
		byName[r.Name] = r
	}
	var out []audit.Report
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[name])
	}
	return out, nil
}

// scopesWithReports lists the scopes that hold reports signet wrote, so
// that a new leader brings them all up to date (an object deleted while no
// replica led leaves results behind otherwise).
func (s *Scanner) scopesWithReports(ctx context.Context) []string {
	var scopes []string
	for _, gvk := range []schema.GroupVersionKind{PolicyReport, ClusterPolicyReport} {
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := s.client.List(ctx, list, client.MatchingLabels{ManagedBy: "signet"}); err != nil {
			s.Log.Warn("audit: listing reports", "kind", gvk.Kind, "err", err)
			continue
		}
		for _, item := range list.Items {
			scopes = append(scopes, item.GetNamespace())
		}
	}
	return scopes
}

// event records a Warning Event SignatureVerificationFailed on obj, whose
// verdict turned to fail: which policy and authority refused which image,
// and why. Events are rate-limited: one per object per eventInterval, and
// 5 a second (burst 50) in all; one that cannot be recorded is logged.
func (s *Scanner) event(ctx context.Context, u *unstructured.Unstructured, obj audit.Object, results []audit.Result) {
	if !s.events.allow(obj.UID) {
		return
	}
	var reasons []string
	for _, r := range results {
		if r.Admission != "denied" {
			continue
		}
		line := r.Policy
		if len(r.Authorities) > 0 {
			line += " (authority " + strings.Join(r.Authorities, ", ") + ")"
		}
		reasons = append(reasons, fmt.Sprintf("%s: %s: %s", r.Path, line, r.Reason))
	}
	msg := "signet's audit: this object would be denied now: " + strings.Join(reasons, "; ")
	if len(msg) > maxEventMessage {
		msg = msg[:maxEventMessage-3] + "..."
	}
	ns := obj.Namespace
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: obj.Name + "."},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: obj.APIVersion, Kind: obj.Kind, Name: obj.Name, Namespace: obj.Namespace,
			UID: types.UID(obj.UID), ResourceVersion: u.GetResourceVersion(),
		},
		Reason: "SignatureVerificationFailed", Message: msg, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "signet"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "signet.dev/audit", ReportingInstance: hostname(),
	}
	if err := s.client.Create(ctx, ev); err != nil {
		s.Log.Warn("audit: recording an event", "object", obj.String(), "err", err)
	}
}

// maxEventMessage is the API server's limit on an Event's message.
const maxEventMessage = 1024

// eventInterval is the least time between two Events on one object.
const eventInterval = 10 * time.Minute

type eventLimiter struct {
	mu   sync.Mutex
	all  *rate.Limiter
	last map[string]time.Time
}

func newEventLimiter() *eventLimiter {
	return &eventLimiter{all: rate.NewLimiter(5, 50), last: map[string]time.Time{}}
}

func (l *eventLimiter) allow(uid string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[uid]; ok && now.Sub(t) < eventInterval {
		return false
	}
	if !l.all.AllowN(now, 1) {
		return false
	}
	if len(l.last) > 100000 {
		for k, t := range l.last {
			if now.Sub(t) >= eventInterval {
				delete(l.last, k)
			}
		}
	}
	l.last[uid] = now
	return true
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}
