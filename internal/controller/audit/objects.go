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
	if skipped(k, u) {
		return audit.Subject{}, false, nil
	}
	raw, err := json.Marshal(u.Object)
	if err != nil {
		return audit.Subject{}, false, err
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
func skipped(k Kind, u *unstructured.Unstructured) bool {
	switch k.Kind {
	case workload.Kind{Group: "apps", Kind: "ReplicaSet"}:
		// A Deployment's ReplicaSets: the Deployment's template.
		return controlled(u)
	case workload.Kind{Group: "batch", Kind: "Job"}:
		// A CronJob's Jobs: the CronJob's template.
		return controlled(u)
	case workload.Kind{Kind: "Pod"}:
		phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
		return phase == "Succeeded" || phase == "Failed"
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

// builtin are the kinds whose image fields are all in spec.
var builtin = map[workload.Kind]bool{
	{Kind: "Pod"}: true, {Kind: "ReplicationController"}: true, {Group: "apps", Kind: "Deployment"}: true,
	{Group: "apps", Kind: "ReplicaSet"}: true, {Group: "apps", Kind: "StatefulSet"}: true, {Group: "apps", Kind: "DaemonSet"}: true,
	{Group: "batch", Kind: "Job"}: true, {Group: "batch", Kind: "CronJob"}: true,
}

// Trim keeps of an object what SubjectOf and the audit read, so that the
// informers' caches hold little more than image fields. Of a built-in kind:
// metadata's identity and owners, spec but its Pod template's metadata, and
// a Pod's phase and container statuses' names and image IDs; of another
// kind, all but managed fields and annotations. It is the informers'
// transform.
func Trim(obj any) (any, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return obj, nil
	}
	gvk := u.GroupVersionKind()
	if !builtin[workload.Kind{Group: gvk.Group, Kind: gvk.Kind}] {
		// A declared kind's image fields may be anywhere: keep all but
		// what no extraction reads.
		unstructured.RemoveNestedField(u.Object, "metadata", "managedFields")
		unstructured.RemoveNestedField(u.Object, "metadata", "annotations")
		return u, nil
	}
	meta := map[string]any{}
	if m, ok := u.Object["metadata"].(map[string]any); ok {
		for _, f := range []string{"name", "namespace", "uid", "resourceVersion", "generation", "ownerReferences", "deletionTimestamp"} {
			if v, ok := m[f]; ok {
				meta[f] = v
			}
		}
	}
	out := map[string]any{"apiVersion": u.Object["apiVersion"], "kind": u.Object["kind"], "metadata": meta}
	if spec, ok := u.Object["spec"]; ok {
		out["spec"] = spec
	}
	if status, ok := u.Object["status"].(map[string]any); ok && u.GetKind() == "Pod" {
		st := map[string]any{}
		if p, ok := status["phase"]; ok {
			st["phase"] = p
		}
		for _, list := range []string{"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"} {
			items, ok := status[list].([]any)
			if !ok {
				continue
			}
			kept := make([]any, 0, len(items))
			for _, it := range items {
				if c, ok := it.(map[string]any); ok {
					kept = append(kept, map[string]any{"name": c["name"], "imageID": c["imageID"]})
				}
			}
			st[list] = kept
		}
		out["status"] = st
	}
	// A Pod template's metadata is not read either.
	dropTemplateMetadata(out)
	return &unstructured.Unstructured{Object: out}, nil
}

func dropTemplateMetadata(obj map[string]any) {
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		return
	}
	for _, path := range [][]string{{"template"}, {"jobTemplate", "spec", "template"}} {
		m := spec
		for _, p := range path[:len(path)-1] {
			if m, ok = m[p].(map[string]any); !ok {
				break
			}
		}
		if t, ok := m[path[len(path)-1]].(map[string]any); ok && m != nil {
			delete(t, "metadata")
		}
	}
}
