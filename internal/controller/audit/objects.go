package audit

import (
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/workload"
)

// Kind is one kind the audit reads: its kind for extraction and the
// resource the API serves it as.
type Kind struct {
	Kind     workload.Kind
	GVK      schema.GroupVersionKind
	Resource schema.GroupVersionResource
	// Namespaced: objects of the kind live in namespaces (their results
	// go into PolicyReports, else into ClusterPolicyReports).
	Namespaced bool
}

// Kinds returns the kinds whose images ex knows (the workload kinds,
// Crossplane packages and --image-field kinds) that the cluster serves, at
// the version it prefers; missing names the kinds it does not serve (a
// Crossplane package without Crossplane installed): they are looked for
// again on the next call.
func Kinds(mapper meta.RESTMapper, ex *workload.Extractor) (kinds []Kind, missing []string) {
	for _, k := range append(ex.Kinds(), workload.CrossplanePackageKinds()...) {
		m, err := mapper.RESTMapping(schema.GroupKind{Group: k.Group, Kind: k.Kind})
		if err != nil {
			missing = append(missing, k.String())
			continue
		}
		kinds = append(kinds, Kind{Kind: k, GVK: m.GroupVersionKind, Resource: m.Resource, Namespaced: m.Scope.Name() == meta.RESTScopeNameNamespace})
	}
	return kinds, missing
}

// SubjectOf reads the object u of kind k into what the audit decides:
// ok is false for an object whose images are audited elsewhere or do not
// run (a ReplicaSet or Job a controller owns: its owner's template is
// audited; a Pod that has finished), and an error says the object cannot
// be read as admission would read it.
func SubjectOf(ex *workload.Extractor, k Kind, u *unstructured.Unstructured) (s audit.Subject, ok bool, err error) {
	raw, err := rawOf(u)
	if err != nil {
		return audit.Subject{}, false, err
	}
	if skipped(k, u, raw) {
		return audit.Subject{}, false, nil
	}
	obj, err := ex.Decode(k.Kind, k.GVK.Version, raw)
	if err != nil {
		return audit.Subject{}, false, fmt.Errorf("%s %s: %w", k.Kind, u.GetName(), err)
	}
	images := obj.Images
	if k.Kind == (workload.Kind{Kind: "Pod"}) {
		if images, err = audit.RunningImages(raw, images); err != nil {
			return audit.Subject{}, false, err
		}
	}
	return audit.Subject{
		Object: audit.Object{APIVersion: k.GVK.GroupVersion().String(), Kind: k.GVK.Kind, Namespace: u.GetNamespace(),
			Name: u.GetName(), UID: string(u.GetUID())},
		Kind: k.Kind, Images: images, PullSecrets: obj.PullSecrets, ServiceAccount: obj.ServiceAccount,
	}, true, nil
}

// skipped: objects whose images another object's audit covers, or that no
// longer run.
func skipped(k Kind, u *unstructured.Unstructured, raw []byte) bool {
	switch k.Kind {
	case workload.Kind{Group: "apps", Kind: "ReplicaSet"}:
		// A Deployment's ReplicaSets: the Deployment's template.
		return controlled(u)
	case workload.Kind{Group: "batch", Kind: "Job"}:
		// A CronJob's Jobs: the CronJob's template.
		return controlled(u)
	case workload.Kind{Kind: "Pod"}:
		var pod struct {
			Status struct {
				Phase string `json:"phase"`
			} `json:"status"`
		}
		_ = json.Unmarshal(raw, &pod) // a malformed Pod is not skipped: Decode says why
		return pod.Status.Phase == "Succeeded" || pod.Status.Phase == "Failed"
	}
	return false
}

func controlled(u *unstructured.Unstructured) bool {
	for _, o := range u.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			return true
		}
	}
	return false
}

// TrimFor returns the informers' transform: it keeps of an object what
// SubjectOf and the audit read, so that the caches hold little more than
// image fields. It keeps metadata's identity and owners, what ex reads of
// the kind (workload.Extractor.Shape: image fields, pull secrets, service
// account), and of a Pod its containers' names, its phase and its
// container statuses' names and image IDs.
func TrimFor(ex *workload.Extractor) func(any) (any, error) {
	return func(obj any) (any, error) {
		u, ok := obj.(*unstructured.Unstructured)
		if !ok {
			return obj, nil
		}
		if _, done := u.Object[trimmedField]; done {
			// Trimmed already: informers may transform an object twice.
			return u, nil
		}
		gvk := u.GroupVersionKind()
		k := workload.Kind{Group: gvk.Group, Kind: gvk.Kind}
		shape := ex.Shape(k)
		if k == (workload.Kind{Kind: "Pod"}) {
			shape = workload.MergeShapes(shape, podRunShape)
		}
		pruned, _ := workload.Prune(u.Object, shape).(map[string]any)
		if pruned == nil {
			return u, nil
		}
		delete(pruned, "metadata")
		body, err := json.Marshal(pruned)
		if err != nil {
			return nil, err
		}
		out := map[string]any{"apiVersion": u.Object["apiVersion"], "kind": u.Object["kind"], trimmedField: string(body)}
		if m, ok := u.Object["metadata"].(map[string]any); ok {
			meta := map[string]any{}
			for _, f := range []string{"name", "namespace", "uid", "resourceVersion"} {
				if v, ok := m[f]; ok {
					meta[f] = v
				}
			}
			// Of the owners, only whether a controller owns it (skipped).
			if controlled(u) {
				meta["ownerReferences"] = controlledBy
			}
			out["metadata"] = meta
		}
		return &unstructured.Unstructured{Object: out}, nil
	}
}

// trimmedField holds, in a trimmed object, the JSON of what extraction
// reads (a string: about a fifth of the memory of the same as maps, and a
// JSON value, so the object still deep-copies).
const trimmedField = "signet.dev/trimmed"

// rawOf is the JSON extraction reads of u: what TrimFor kept, else all of
// u.
func rawOf(u *unstructured.Unstructured) ([]byte, error) {
	if t, ok := u.Object[trimmedField].(string); ok {
		return []byte(t), nil
	}
	return json.Marshal(u.Object)
}

// controlledBy stands for the owner references of a controlled object in
// the cache: skipped reads only that one is the controller.
var controlledBy = []any{map[string]any{"apiVersion": "v1", "kind": "Owner", "name": "owner", "uid": "owner", "controller": true}}

// podRunShape is what RunningImages and skipped read of a Pod besides its
// images.
var podRunShape = func() *workload.Shape {
	named := &workload.Shape{Elem: &workload.Shape{Fields: map[string]*workload.Shape{"name": nil}}}
	status := &workload.Shape{Elem: &workload.Shape{Fields: map[string]*workload.Shape{"name": nil, "imageID": nil}}}
	return &workload.Shape{Fields: map[string]*workload.Shape{
		"spec":   {Fields: map[string]*workload.Shape{"containers": named, "initContainers": named, "ephemeralContainers": named}},
		"status": {Fields: map[string]*workload.Shape{"phase": nil, "containerStatuses": status, "initContainerStatuses": status, "ephemeralContainerStatuses": status}},
	}}
}()
