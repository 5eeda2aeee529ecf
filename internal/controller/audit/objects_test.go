package audit

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/signet-dev/signet/internal/workload"
)

func object(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

const runningPod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"team","uid":"u1","resourceVersion":"7",
  "annotations":{"signet.dev/skip":"true"},"managedFields":[{"manager":"kubectl"}],"labels":{"app":"x"}},
 "spec":{"containers":[{"name":"app","image":"registry.example.org/app:v1","env":[{"name":"A","value":"b"}]}],"imagePullSecrets":[{"name":"regcred"}]},
 "status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}],
  "containerStatuses":[{"name":"app","image":"registry.example.org/app:v1","imageID":"registry.example.org/app@sha256:1111111111111111111111111111111111111111111111111111111111111111","ready":true,"restartCount":3}]}}`

// readTrimmed is what a trimmed object keeps for extraction.
func readTrimmed(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	raw, ok := u.Object[trimmedField].(string)
	if !ok {
		t.Fatalf("no %s in %v", trimmedField, u.Object)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTrimKeepsWhatTheAuditReads: the informers' caches keep image fields,
// the kubelet's image IDs and identity, and drop the rest; the audit reads
// a trimmed object as it reads the whole one.
func TestTrimKeepsWhatTheAuditReads(t *testing.T) {
	ex, err := workload.NewExtractor()
	if err != nil {
		t.Fatal(err)
	}
	pod := Kind{Kind: workload.Kind{Kind: "Pod"}, GVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespaced: true}
	whole := object(t, runningPod)
	trim := TrimFor(ex)
	trimmedAny, err := trim(object(t, runningPod))
	if err != nil {
		t.Fatal(err)
	}
	trimmed := trimmedAny.(*unstructured.Unstructured)
	kept := readTrimmed(t, trimmed)
	for _, gone := range [][]string{{"metadata", "annotations"}, {"metadata", "managedFields"}, {"metadata", "labels"}} {
		if _, found, _ := unstructured.NestedFieldNoCopy(trimmed.Object, gone...); found {
			t.Errorf("%v is kept", gone)
		}
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(kept, "status", "conditions"); found {
		t.Error("status.conditions is kept")
	}
	if trimmed.GetName() != "p" || trimmed.GetNamespace() != "team" || string(trimmed.GetUID()) != "u1" {
		t.Errorf("identity lost: %v", trimmed.Object["metadata"])
	}
	if again, _ := trim(trimmed); again.(*unstructured.Unstructured).Object[trimmedField] != trimmed.Object[trimmedField] {
		t.Error("trimming twice loses what the first kept")
	}
	copied := trimmed.DeepCopy() // as controller-runtime's cache does on Get
	if copied.Object[trimmedField] != trimmed.Object[trimmedField] {
		t.Error("a deep copy differs")
	}
	containers, _, _ := unstructured.NestedSlice(kept, "spec", "containers")
	if c := containers[0].(map[string]any); len(c) != 2 || c["name"] != "app" {
		t.Errorf("a container keeps %v; want its name and image", c)
	}
	a, okA, errA := SubjectOf(ex, pod, whole)
	b, okB, errB := SubjectOf(ex, pod, trimmed)
	if errA != nil || errB != nil || !okA || !okB {
		t.Fatalf("SubjectOf: %v %v %v %v", okA, errA, okB, errB)
	}
	if len(a.Images) != 1 || a.Images[0] != b.Images[0] || a.Object != b.Object || a.ServiceAccount != b.ServiceAccount || len(b.PullSecrets) != 1 {
		t.Fatalf("whole %+v, trimmed %+v", a, b)
	}
	if want := "registry.example.org/app:v1@sha256:1111111111111111111111111111111111111111111111111111111111111111"; b.Images[0].Image != want {
		t.Errorf("the running image is %s, want %s", b.Images[0].Image, want)
	}

	t.Run("an update of what the audit does not read is no change", func(t *testing.T) {
		next := object(t, runningPod)
		if err := unstructured.SetNestedField(next.Object, "8", "metadata", "resourceVersion"); err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedSlice(next.Object, []any{map[string]any{"type": "Ready", "status": "False"}}, "status", "conditions"); err != nil {
			t.Fatal(err)
		}
		trimmedNext, _ := trim(next)
		if !sameTrimmed(trimmed, trimmedNext) {
			t.Error("a condition's change is a change")
		}
		if err := unstructured.SetNestedSlice(next.Object, []any{map[string]any{"name": "app", "imageID": "registry.example.org/app@sha256:2222222222222222222222222222222222222222222222222222222222222222"}}, "status", "containerStatuses"); err != nil {
			t.Fatal(err)
		}
		trimmedNext, _ = trim(next)
		if sameTrimmed(trimmed, trimmedNext) {
			t.Error("a new image ID is no change")
		}
	})
	t.Run("a declared kind keeps its image fields", func(t *testing.T) {
		ex, err := workload.NewExtractor(workload.Custom{Kind: workload.Kind{Group: "tekton.dev", Kind: "Task"}, Paths: []string{"spec.steps[].image"}})
		if err != nil {
			t.Fatal(err)
		}
		task := object(t, `{"apiVersion":"tekton.dev/v1","kind":"Task","metadata":{"name":"t","annotations":{"a":"b"}},"spec":{"steps":[{"name":"s","image":"x","script":"echo"}]},"status":{"image":"y"}}`)
		out, _ := TrimFor(ex)(task)
		u := out.(*unstructured.Unstructured)
		kept := readTrimmed(t, u)
		steps, _, _ := unstructured.NestedSlice(kept, "spec", "steps")
		if len(steps) != 1 || steps[0].(map[string]any)["image"] != "x" || steps[0].(map[string]any)["script"] != nil {
			t.Errorf("steps %v: want the image only", steps)
		}
		if _, found, _ := unstructured.NestedFieldNoCopy(u.Object, "metadata", "annotations"); found {
			t.Error("annotations are kept")
		}
		if _, found := kept["status"]; found {
			t.Error("status is kept")
		}
	})
}

// TestSubjectOfSkipsWhatRunsElsewhere: owned ReplicaSets and Jobs are
// audited through their owner's template; finished Pods run nothing.
func TestSubjectOfSkipsWhatRunsElsewhere(t *testing.T) {
	ex, err := workload.NewExtractor()
	if err != nil {
		t.Fatal(err)
	}
	rs := Kind{Kind: workload.Kind{Group: "apps", Kind: "ReplicaSet"}, GVK: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "ReplicaSet"}}
	pod := Kind{Kind: workload.Kind{Kind: "Pod"}, GVK: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}}
	const template = `"spec":{"template":{"spec":{"containers":[{"name":"a","image":"registry.example.org/a:v1"}]}}}`
	for _, tc := range []struct {
		name string
		kind Kind
		doc  string
		want bool
	}{
		{"owned ReplicaSet", rs, `{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r","ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":"d","uid":"x","controller":true}]},` + template + `}`, false},
		{"ReplicaSet without an owner", rs, `{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"r"},` + template + `}`, true},
		{"succeeded Pod", pod, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}]},"status":{"phase":"Succeeded"}}`, false},
		{"pending Pod", pod, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"a"}]},"status":{"phase":"Pending"}}`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, ok, err := SubjectOf(ex, tc.kind, object(t, tc.doc))
			if err != nil || ok != tc.want {
				t.Fatalf("audited %v (%v), want %v", ok, err, tc.want)
			}
		})
	}
	t.Run("a malformed object is an error, as admission refuses it", func(t *testing.T) {
		_, _, err := SubjectOf(ex, pod, object(t, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":42}]}}`))
		if err == nil {
			t.Fatal("no error")
		}
	})
}
