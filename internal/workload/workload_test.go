package workload

import (
	"encoding/json"
	"slices"
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
		{Kind{"pkg.crossplane.io", "Function"}, `{"spec":{"package":"fn:1"}}`, "spec.package=xpkg.crossplane.io/fn:1"},
		{Kind{"pkg.crossplane.io", "Configuration"}, `{"spec":{"package":"cfg:1"}}`, "spec.package=xpkg.crossplane.io/cfg:1"},
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

// TestShape: the shape of a kind names the fields its images are under,
// from the top, and the object's apiVersion and kind, and no others.
func TestShape(t *testing.T) {
	e, err := NewExtractor(Custom{Kind: Kind{"tekton.dev", "TaskRun"}, Paths: []string{"steps[].image", "spec.sidecar.image"}},
		Custom{Kind: Kind{"", "Pod"}, Paths: []string{"spec.extra.image"}})
	if err != nil {
		t.Fatal(err)
	}
	top := func(k Kind) []string {
		var out []string
		for name := range e.Shape(k).Fields {
			out = append(out, name)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		kind Kind
		want []string
	}{
		{Kind{"", "Pod"}, []string{"apiVersion", "kind", "spec"}},
		{Kind{"batch", "CronJob"}, []string{"apiVersion", "kind", "spec"}},
		{Kind{"", "PodTemplate"}, []string{"apiVersion", "kind", "template"}},
		{Kind{"pkg.crossplane.io", "Provider"}, []string{"apiVersion", "kind", "spec"}},
		{Kind{"foo.pkg.crossplane.io", "Provider"}, []string{"apiVersion", "kind", "spec"}},
		{Kind{"tekton.dev", "TaskRun"}, []string{"apiVersion", "kind", "spec", "steps"}},
		{Kind{"", "ConfigMap"}, []string{"apiVersion", "kind"}},
	} {
		if got := top(tc.kind); !slices.Equal(got, tc.want) {
			t.Errorf("%s: top-level fields %v, want %v", tc.kind, got, tc.want)
		}
	}
	// A declared path for a built-in kind adds to its pod spec's fields.
	spec := e.Shape(Kind{"", "Pod"}).Fields["spec"]
	for _, f := range []string{"containers", "initContainers", "ephemeralContainers", "volumes", "imagePullSecrets", "serviceAccountName", "extra"} {
		if _, ok := spec.Fields[f]; !ok {
			t.Errorf("Pod spec shape lacks %s", f)
		}
	}
	if _, ok := spec.Fields["env"]; ok {
		t.Error("Pod spec shape keeps env")
	}
	cronSpec := e.Shape(Kind{"batch", "CronJob"}).Fields["spec"].Fields["jobTemplate"].Fields["spec"].Fields["template"].Fields["spec"]
	if cronSpec != podSpecShape {
		t.Error("CronJob's pod spec is not under spec.jobTemplate.spec.template.spec")
	}
	steps := e.Shape(Kind{"tekton.dev", "TaskRun"}).Fields["steps"]
	if steps == nil || steps.Elem == nil {
		t.Fatal("steps[] is not a list shape")
	}
	if s, ok := steps.Elem.Fields["image"]; !ok || s != nil {
		t.Error("steps[].image is not kept whole")
	}
}
