package controller

import (
	"context"
	"fmt"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// rebuild brings the TrustRoots up to date, compiles the policies in the
// cache into a new snapshot and swaps it in; the leader then writes the
// status of both.
func (c *Controller) rebuild(ctx context.Context) error {
	// Trust roots first: policies naming one compile against its material.
	cfg, trustRoots, err := c.syncTrustRoots(ctx)
	if err != nil {
		return err
	}
	targets, err := CompilePolicies(ctx, c.cache, resolver{c: c})
	if err != nil {
		return err
	}
	compiled := Policies(targets)
	snap, err := policy.NewSnapshot(compiled, cfg)
	if err != nil {
		return err
	}
	prev := c.snap.Swap(snap)
	c.Log.Info("policy snapshot loaded", "policies", len(compiled))
	if snap.ClusterPolicies() == 0 && (prev == nil || prev.ClusterPolicies() > 0) {
		// Said once, when it becomes true: every image is unmatched now.
		c.Log.Warn("no ClusterImagePolicy exists: every image in an enforced namespace is unmatched", "unmatched", snap.Config().Unmatched)
	}
	c.writeTrustRootStatus(ctx, trustRoots)
	c.writePolicyStatus(ctx, targets)
	return nil
}

// writePolicyStatus sets each policy's Ready condition (True, or False
// with its field errors) and records an Event when it changes; only the
// leader does. Failures are logged.
func (c *Controller) writePolicyStatus(ctx context.Context, targets []CompiledPolicy) {
	if !c.leader.Leading() {
		return
	}
	for _, t := range targets {
		cond := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Loaded", Message: "the policy is enforced", ObservedGeneration: t.Object.GetGeneration()}
		if t.Policy.Err != nil {
			cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "Invalid", t.Policy.Err.Error()+"; images it selects are denied"
		}
		existing := meta.FindStatusCondition(t.Status.Conditions, "Ready")
		if existing != nil && existing.Status == cond.Status && existing.Reason == cond.Reason && existing.Message == cond.Message &&
			existing.ObservedGeneration == cond.ObservedGeneration && t.Status.ObservedGeneration == t.Object.GetGeneration() {
			continue
		}
		changed := existing == nil || existing.Status != cond.Status || existing.Message != cond.Message
		meta.SetStatusCondition(&t.Status.Conditions, cond)
		t.Status.ObservedGeneration = t.Object.GetGeneration()
		if err := c.client.Status().Update(ctx, t.Object); err != nil {
			c.Log.Warn("writing policy status", "policy", t.Policy.Object.ID(), "err", err)
			continue
		}
		if changed {
			c.event(ctx, t.Object, t.Policy.Object.Kind, cond)
		}
	}
}

// event records a policy's new Ready condition as a Kubernetes Event on it
// (`kubectl describe` shows it), in the policy's namespace, or "default" for
// a cluster-scoped policy. Failing to record one is logged, never fatal.
func (c *Controller) event(ctx context.Context, obj client.Object, kind string, cond metav1.Condition) {
	ns := obj.GetNamespace()
	if ns == "" {
		ns = metav1.NamespaceDefault
	}
	typ := corev1.EventTypeNormal
	if cond.Status != metav1.ConditionTrue {
		typ = corev1.EventTypeWarning
	}
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: obj.GetName() + "."},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: v1alpha1.GroupVersion.String(), Kind: kind, Name: obj.GetName(), Namespace: obj.GetNamespace(),
			UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: cond.Reason, Message: cond.Message, Type: typ,
		Source:         corev1.EventSource{Component: "signet"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
		ReportingController: "signet.dev/controller", ReportingInstance: hostname(),
	}
	if err := c.client.Create(ctx, ev); err != nil {
		c.Log.Warn("recording an event", "object", obj.GetName(), "err", err)
	}
}

func hostname() string {
	h, _ := os.Hostname()
	return h
}

// resolver reads Secrets through the API (uncached: signet has no reason to
// watch every Secret) and the default trust root.
type resolver struct {
	c *Controller
}

var _ policy.Resolver = resolver{}

func (r resolver) SecretKeys(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return ReadSecret(ctx, r.c.client, r.c.Namespace, namespace, name)
}

// ReadSecret reads a Secret's data by name, uncached, from namespace (or
// defaultNamespace when it is ""), for policy.Resolver implementations.
func ReadSecret(ctx context.Context, c client.Reader, defaultNamespace, namespace, name string) (map[string][]byte, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	var s corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s); err != nil {
		return nil, fmt.Errorf("reading the Secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}

// ConfigMapData implements policy.ConfigMapResolver, uncached like
// SecretKeys.
func (r resolver) ConfigMapData(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return ReadConfigMap(ctx, r.c.client, r.c.Namespace, namespace, name)
}

// ReadConfigMap reads a ConfigMap's data and binaryData by name, uncached,
// from namespace (or defaultNamespace when it is "").
func ReadConfigMap(ctx context.Context, c client.Reader, defaultNamespace, namespace, name string) (map[string][]byte, error) {
	if namespace == "" {
		namespace = defaultNamespace
	}
	var cm corev1.ConfigMap
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &cm); err != nil {
		return nil, fmt.Errorf("reading the ConfigMap %s/%s: %w", namespace, name, err)
	}
	out := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out, nil
}

func (r resolver) TrustedMaterial(_ context.Context, name string) (root.TrustedMaterial, error) {
	if name != "" {
		return r.c.trustRoots.material(name)
	}
	return r.c.Trust()
}

// CompiledPolicy is one policy object from the cache with its compiled
// form and its status, for the leader to write.
type CompiledPolicy struct {
	Object client.Object
	Status *v1alpha1.ImagePolicyStatus
	Policy *policy.Policy
}

// CompilePolicies lists the ClusterImagePolicies and ImagePolicies in r and
// compiles each with res (signet serve's controller and the node agent).
func CompilePolicies(ctx context.Context, r client.Reader, res policy.Resolver) ([]CompiledPolicy, error) {
	var cips v1alpha1.ClusterImagePolicyList
	if err := r.List(ctx, &cips); err != nil {
		return nil, err
	}
	var ips v1alpha1.ImagePolicyList
	if err := r.List(ctx, &ips); err != nil {
		return nil, err
	}
	out := make([]CompiledPolicy, 0, len(cips.Items)+len(ips.Items))
	for i := range cips.Items {
		o := &cips.Items[i]
		p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindClusterImagePolicy, Name: o.Name, Spec: o.Spec}, res)
		out = append(out, CompiledPolicy{o, &o.Status, p})
	}
	for i := range ips.Items {
		o := &ips.Items[i]
		p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindImagePolicy, Name: o.Name, Namespace: o.Namespace, Spec: o.Spec}, res)
		out = append(out, CompiledPolicy{o, &o.Status, p})
	}
	return out, nil
}

// Policies returns the compiled policies of cps.
func Policies(cps []CompiledPolicy) []*policy.Policy {
	out := make([]*policy.Policy, len(cps))
	for i, cp := range cps {
		out[i] = cp.Policy
	}
	return out
}
