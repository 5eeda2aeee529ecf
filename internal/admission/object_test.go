package admission

import (
	"encoding/json"
	"reflect"
	"testing"
)

func keepOnly(names ...string) func(string) bool {
	return func(f string) bool {
		for _, n := range names {
			if f == n {
				return true
			}
		}
		return false
	}
}

func TestDecodeFields(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		keep      []string
		want      map[string]any
		wantErr   bool
	}{
		{name: "only the kept fields", raw: `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"x","managedFields":[{"f:spec":{}}]},"spec":{"containers":[{"image":"a"}]},"status":{}}`,
			keep: []string{"spec"}, want: map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"image": "a"}}}}},
		{name: "names are compared exactly", raw: `{"Spec":{"image":"decoy"},"SPEC":1,"spec":{"image":"real"}}`,
			keep: []string{"spec"}, want: map[string]any{"spec": map[string]any{"image": "real"}}},
		{name: "escaped names are unescaped", raw: `{"sp\u0065c":{"image":"hidden"}}`,
			keep: []string{"spec"}, want: map[string]any{"spec": map[string]any{"image": "hidden"}}},
		{name: "the last of duplicates counts", raw: `{"spec":{"image":"first"},"spec":{"image":"last"}}`,
			keep: []string{"spec"}, want: map[string]any{"spec": map[string]any{"image": "last"}}},
		{name: "skipped values with braces, quotes and escapes in strings", raw: " {\n\t\"metadata\" : {\"a\":\"}]\\\"{[\",\"b\":[1,{\"c\":\"\\\\\"}]} ,\"n\": -1.5e3, \"t\":true,\"z\":null, \"spec\" : [ 1 , \"x\" ] }\n",
			keep: []string{"spec", "n", "t", "z"}, want: map[string]any{"spec": []any{1.0, "x"}, "n": -1500.0, "t": true, "z": nil}},
		{name: "null", raw: ` null `, keep: []string{"spec"}, want: nil},
		{name: "absent", raw: ``, keep: []string{"spec"}, want: nil},
		{name: "empty object", raw: `{}`, keep: []string{"spec"}, want: map[string]any{}},
		{name: "an array", raw: `[{"spec":{}}]`, keep: []string{"spec"}, wantErr: true},
		{name: "a string", raw: `"spec"`, keep: []string{"spec"}, wantErr: true},
		{name: "truncated", raw: `{"spec":{"image":"a"`, keep: []string{"spec"}, wantErr: true},
		{name: "a field without a value", raw: `{"spec"}`, keep: []string{"spec"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeFields([]byte(tc.raw), keepOnly(tc.keep...))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

// FuzzDecodeFields: on any valid JSON object, decodeFields keeping every
// field is json.Unmarshal into map[string]any, and keeping one field is
// that map's entry; on any input at all it returns without panicking.
func FuzzDecodeFields(f *testing.F) {
	for _, s := range []string{
		`{"spec":{"containers":[{"image":"a"}]},"metadata":{"name":"x"}}`,
		`{"sp\u0065c":1,"spec":2}`,
		`{"a":"\"}{][\\","spec":[true,false,null,-0.5e+2]}`,
		`{"\u00e9t\u00e9":{"x":"\ud83d\ude00"},"spec":"\u0000"}`,
		"{\"\xff\":1}",
		` { } `,
		`null`,
		`{"spec":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		all, err := decodeFields(raw, func(string) bool { return true })
		spec, specErr := decodeFields(raw, keepOnly("spec"))
		var want map[string]any
		if json.Unmarshal(raw, &want) != nil || want == nil {
			return // not a JSON object: anything but a panic will do
		}
		if err != nil || specErr != nil {
			t.Fatalf("valid object %q: %v, %v", raw, err, specErr)
		}
		if !reflect.DeepEqual(all, want) {
			t.Fatalf("%q: every field: %#v, json.Unmarshal: %#v", raw, all, want)
		}
		wantSpec := map[string]any{}
		if v, ok := want["spec"]; ok {
			wantSpec["spec"] = v
		}
		if !reflect.DeepEqual(spec, wantSpec) {
			t.Fatalf("%q: spec only: %#v, want %#v", raw, spec, wantSpec)
		}
	})
}
