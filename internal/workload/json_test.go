package workload

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fields is a shape keeping the named top-level fields whole.
func fields(names ...string) *Shape {
	s := &Shape{Fields: map[string]*Shape{}}
	for _, n := range names {
		s.Fields[n] = nil
	}
	return s
}

func TestDecodeObject(t *testing.T) {
	ex, err := NewExtractor()
	if err != nil {
		t.Fatal(err)
	}
	pod := ex.Shape(Kind{Kind: "Pod"})
	for _, tc := range []struct {
		name, raw string
		shape     *Shape
		want      map[string]any
		wantErr   bool
	}{
		{name: "only the kept fields", raw: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","managedFields":[{"f:spec":{}}]},"spec":{"containers":[{"image":"a"}]},"status":{}}`,
			shape: fields("spec"), want: map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"image": "a"}}}}},
		{name: "a pod spec keeps what leads to images", raw: `{"metadata":{"name":"x"},"spec":{"containers":[{"name":"a","image":"a:1","env":[{"name":"X","value":"1"}],"resources":{}},"not an object"],
			"volumes":[{"name":"v","image":{"reference":"v:1","pullPolicy":"Always"}},{"name":"e","emptyDir":{}}],"imagePullSecrets":[{"name":"s"}],"serviceAccountName":"sa","nodeSelector":{"a":"b"},"initContainers":{"oops":1}}}`,
			shape: pod, want: map[string]any{"spec": map[string]any{
				"containers":         []any{map[string]any{"image": "a:1"}, "not an object"},
				"volumes":            []any{map[string]any{"image": map[string]any{"reference": "v:1"}}, map[string]any{}},
				"imagePullSecrets":   []any{map[string]any{"name": "s"}},
				"serviceAccountName": "sa",
				"initContainers":     map[string]any{"oops": 1.0}, // not a list: kept whole, for Images to report
			}}},
		{name: "names are compared exactly", raw: `{"Spec":{"image":"decoy"},"SPEC":1,"spec":{"image":"real"}}`,
			shape: fields("spec"), want: map[string]any{"spec": map[string]any{"image": "real"}}},
		{name: "escaped names are unescaped", raw: `{"sp\u0065c":{"image":"hidden"}}`,
			shape: fields("spec"), want: map[string]any{"spec": map[string]any{"image": "hidden"}}},
		{name: "escaped strings are unescaped", raw: `{"spec":"a\u0041\n\"é"}`,
			shape: fields("spec"), want: map[string]any{"spec": "aA\n\"é"}},
		{name: "the last of duplicates counts", raw: `{"spec":{"image":"first"},"spec":{"image":"last"}}`,
			shape: fields("spec"), want: map[string]any{"spec": map[string]any{"image": "last"}}},
		{name: "skipped values with braces, quotes and escapes in strings", raw: " {\n\t\"metadata\" : {\"a\":\"}]\\\"{[\",\"b\":[1,{\"c\":\"\\\\\"}]} ,\"n\": -1.5e3, \"t\":true,\"z\":null, \"spec\" : [ 1 , \"x\" ] }\n",
			shape: fields("spec", "n", "t", "z"), want: map[string]any{"spec": []any{1.0, "x"}, "n": -1500.0, "t": true, "z": nil}},
		{name: "null", raw: ` null `, shape: fields("spec"), want: nil},
		{name: "absent", raw: ``, shape: fields("spec"), want: nil},
		{name: "empty object", raw: `{}`, shape: fields("spec"), want: map[string]any{}},
		{name: "an array", raw: `[{"spec":{}}]`, shape: fields("spec"), wantErr: true},
		{name: "a string", raw: `"spec"`, shape: fields("spec"), wantErr: true},
		{name: "truncated", raw: `{"spec":{"image":"a"`, shape: fields("spec"), wantErr: true},
		{name: "a field without a value", raw: `{"spec"}`, shape: fields("spec"), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeObject([]byte(tc.raw), tc.shape)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// fuzzKinds are the kinds FuzzDecodeObject compares Images on: every shape
// of pod spec path, a Crossplane package and a declared custom kind.
var fuzzKinds = []Kind{
	{Kind: "Pod"}, {Kind: "PodTemplate"}, {Group: "apps", Kind: "Deployment"}, {Group: "batch", Kind: "CronJob"},
	{Group: "pkg.crossplane.io", Kind: "Provider"}, {Group: "tekton.dev", Kind: "TaskRun"},
}

// FuzzDecodeObject: on any valid JSON object, what Images and PullSecrets
// find in the pruned decoding of every kind is what they find in
// json.Unmarshal's full decoding, errors included; keeping spec whole
// keeps json.Unmarshal's spec; on any input at all, no panic.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		`{"spec":{"containers":[{"image":"a"}],"initContainers":[{"image":"b","env":[]}],"volumes":[{"image":{"reference":"c"}}],"imagePullSecrets":[{"name":"s"}]},"metadata":{"name":"x"}}`,
		`{"spec":{"template":{"spec":{"containers":[{"image":1}]}},"jobTemplate":{"spec":{"template":{"spec":{"ephemeralContainers":[{"image":"e"}]}}}},"package":"p"}}`,
		`{"template":{"spec":{"containers":"x"}},"steps":[{"image":"t"},{"image":["u"]}],"spec":{"sidecar":{"image":"v"}}}`,
		`{"sp\u0065c":1,"spec":2,"Spec":{"containers":[{"image":"d"}]}}`,
		`{"a":"\"}{][\\","spec":[true,false,null,-0.5e+2]}`,
		`{"\u00e9t\u00e9":{"x":"\ud83d\ude00"},"spec":"\u0000"}`,
		"{\"\xff\":1,\"spec\":{\"containers\":[{\"image\":\"\xfe\"}]}}",
		` { } `,
		`null`,
		`{"spec":`,
	} {
		f.Add([]byte(s))
	}
	ex, err := NewExtractor(Custom{Kind: Kind{Group: "tekton.dev", Kind: "TaskRun"}, Paths: []string{"steps[].image", "spec.sidecar.image"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		spec, specErr := decodeObject(raw, fields("spec"))
		pruned := make([]map[string]any, len(fuzzKinds))
		prunedErr := make([]error, len(fuzzKinds))
		for i, k := range fuzzKinds {
			pruned[i], prunedErr[i] = decodeObject(raw, ex.Shape(k))
		}
		var full map[string]any
		if json.Unmarshal(raw, &full) != nil || full == nil {
			return // not a JSON object: anything but a panic will do
		}
		if specErr != nil {
			t.Fatalf("valid object %q: %v", raw, specErr)
		}
		wantSpec := map[string]any{}
		if v, ok := full["spec"]; ok {
			wantSpec["spec"] = v
		}
		if !reflect.DeepEqual(spec, wantSpec) {
			t.Fatalf("%q: spec only: %#v, want %#v", raw, spec, wantSpec)
		}
		for i, k := range fuzzKinds {
			if prunedErr[i] != nil {
				t.Fatalf("valid object %q as %s: %v", raw, k, prunedErr[i])
			}
			got, gotErr := ex.Images(k, pruned[i])
			want, wantErr := ex.Images(k, full)
			if !reflect.DeepEqual(got, want) || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
				t.Fatalf("%q as %s: pruned finds %v, %v; full finds %v, %v", raw, k, got, gotErr, want, wantErr)
			}
			gs, gsa := ex.PullSecrets(k, pruned[i])
			ws, wsa := ex.PullSecrets(k, full)
			if !reflect.DeepEqual(gs, ws) || gsa != wsa {
				t.Fatalf("%q as %s: pruned pull secrets %v %q; full %v %q", raw, k, gs, gsa, ws, wsa)
			}
		}
	})
}
