package workload

import (
	"encoding/json"
	"strings"
	"testing"
)

func decode(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

const podSpec = `{"initContainers":[{"name":"i","image":"init:1"}],"containers":[{"name":"a","image":"app:1"},{"name":"b","image":"side:2"}],"ephemeralContainers":[{"name":"dbg","image":"busybox"}],"volumes":[{"name":"v","emptyDir":{}},{"name":"data","image":{"reference":"data:3"}}]}`

func TestImagesEveryKind(t *testing.T) {
	want := func(prefix string) string {
		return strings.Join([]string{
			prefix + ".initContainers[0].image=init:1",
			prefix + ".containers[0].image=app:1",
			prefix + ".containers[1].image=side:2",
			prefix + ".ephemeralContainers[0].image=busybox",
			prefix + ".volumes[1].image.reference=data:3",
		}, " ")
	}
	e, err := NewExtractor(Custom{Kind: Kind{"tekton.dev", "Task"}, Paths: []string{"spec.steps[].image"}})
	if err != nil {
		t.Fatal(err)
	}
	template := `{"template":{"spec":` + podSpec + `}}`
	for _, tc := range []struct {
		kind Kind
		obj  string
		want string
	}{
		{Kind{"", "Pod"}, `{"metadata":{"annotations":{"signet.dev/skip":"true"},"deletionTimestamp":"2026-01-01T00:00:00Z","ownerReferences":[{"kind":"ReplicaSet"}]},"spec":` + podSpec + `}`, want("spec")},
		{Kind{"apps", "Deployment"}, `{"spec":` + template + `}`, want("spec.template.spec")},
		{Kind{"apps", "ReplicaSet"}, `{"spec":` + template + `}`, want("spec.template.spec")},
		{Kind{"apps", "StatefulSet"}, `{"spec":` + template + `}`, want("spec.template.spec")},
		{Kind{"apps", "DaemonSet"}, `{"spec":` + template + `}`, want("spec.template.spec")},
		{Kind{"batch", "Job"}, `{"spec":` + template + `}`, want("spec.template.spec")},
		{Kind{"", "ReplicationController"}, `{"spec":` + template + `}`, want("spec.template.spec")},
		{Kind{"batch", "CronJob"}, `{"spec":{"jobTemplate":{"spec":` + template + `}}}`, want("spec.jobTemplate.spec.template.spec")},
		{Kind{"pkg.crossplane.io", "Provider"}, `{"spec":{"package":"xpkg.upbound.io/upbound/provider-aws:v1"}}`, "spec.package=xpkg.upbound.io/upbound/provider-aws:v1"},
		{Kind{"pkg.crossplane.io", "Function"}, `{"spec":{"package":"fn:1"}}`, "spec.package=fn:1"},
		{Kind{"pkg.crossplane.io", "Configuration"}, `{"spec":{"package":"cfg:1"}}`, "spec.package=cfg:1"},
		{Kind{"tekton.dev", "Task"}, `{"spec":{"steps":[{"image":"a:1"},{"name":"no-image"},{"image":"b:2"}]}}`, "spec.steps[0].image=a:1 spec.steps[2].image=b:2"},
		{Kind{"example.org", "Provider"}, `{"spec":{"package":"not-crossplane"}}`, ""},
	} {
		imgs, err := e.Images(tc.kind, decode(t, tc.obj))
		if err != nil {
			t.Fatalf("%s: %v", tc.kind, err)
		}
		var got []string
		for _, im := range imgs {
			got = append(got, im.Path+"="+im.Image)
			if !strings.HasPrefix(im.Pointer, "/") {
				t.Errorf("pointer %q", im.Pointer)
			}
		}
		if g := strings.Join(got, " "); g != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.kind, g, tc.want)
		}
	}
}

func TestPointers(t *testing.T) {
	e, _ := NewExtractor()
	imgs, err := e.Images(Kind{"apps", "Deployment"}, decode(t, `{"spec":{"template":{"spec":`+podSpec+`}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if imgs[1].Pointer != "/spec/template/spec/containers/0/image" || imgs[4].Pointer != "/spec/template/spec/volumes/1/image/reference" {
		t.Errorf("pointers: %q, %q", imgs[1].Pointer, imgs[4].Pointer)
	}
}

func TestMalformedObjectsAreErrors(t *testing.T) {
	e, _ := NewExtractor()
	for _, obj := range []string{
		`{"spec":{"containers":{"a":"b"}}}`,
		`{"spec":{"containers":[{"image":7}]}}`,
		`{"spec":{"containers":["nginx"]}}`,
		`{"spec":{"volumes":[{"image":{"reference":["x"]}}]}}`,
		`{"spec":"nope"}`,
	} {
		if _, err := e.Images(Kind{"", "Pod"}, decode(t, obj)); err == nil {
			t.Errorf("%s: no error", obj)
		}
	}
	if _, err := NewExtractor(Custom{Kind: Kind{"x", "Y"}, Paths: []string{"spec..image"}}); err == nil {
		t.Error("an empty field name was accepted")
	}
}

func TestReads(t *testing.T) {
	e, err := NewExtractor(Custom{Kind: Kind{"tekton.dev", "TaskRun"}, Paths: []string{"steps[].image", "spec.sidecar.image"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind  Kind
		field string
		want  bool
	}{
		{Kind{"", "Pod"}, "spec", true},
		{Kind{"", "Pod"}, "metadata", false},
		{Kind{"", "Pod"}, "status", false},
		{Kind{"batch", "CronJob"}, "spec", true},
		{Kind{"", "PodTemplate"}, "template", true},
		{Kind{"", "PodTemplate"}, "spec", false},
		{Kind{"pkg.crossplane.io", "Provider"}, "spec", true},
		{Kind{"tekton.dev", "TaskRun"}, "steps", true},
		{Kind{"tekton.dev", "TaskRun"}, "spec", true},
		{Kind{"tekton.dev", "TaskRun"}, "metadata", false},
		{Kind{"", "ConfigMap"}, "data", false},
	} {
		if got := e.Reads(tc.kind, tc.field); got != tc.want {
			t.Errorf("Reads(%s, %q) = %v, want %v", tc.kind, tc.field, got, tc.want)
		}
	}
}
