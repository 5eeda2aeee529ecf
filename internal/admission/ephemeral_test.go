package admission

import (
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// pinRegistry serves one image, app:v1, under an in-process registry that
// a static pinning policy passes; it returns the tag and its digest.
func pinRegistry(t *testing.T) (snap *policy.Snapshot, tag, digest string) {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	tag = host + "/team/app:v1"
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "pin", Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: host + "/team/**"}}, Digest: "pin",
		Authorities: []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: "pass"}}},
	}}, nil)
	snap, err = policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return snap, tag, d.String()
}

// TestEphemeralContainersPinOnlyWhatTheSubresourceChanges: through
// pods/ephemeralcontainers a patch may only add ephemeral containers (the
// API server drops other changes and refuses changes to ephemeral
// containers that exist), so /mutate pins only the added ones there; a Pod
// itself is pinned everywhere, as before.
func TestEphemeralContainersPinOnlyWhatTheSubresourceChanges(t *testing.T) {
	snap, tag, digest := pinRegistry(t)
	h := handler(t, snap).Mutate()
	pod := func(ephemeral ...string) string {
		var ecs []string
		for _, n := range ephemeral {
			ecs = append(ecs, `{"name":"`+n+`","image":"`+tag+`"}`)
		}
		return `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"initContainers":[{"name":"i","image":"` + tag + `"}],"containers":[{"name":"a","image":"` + tag + `"}],"ephemeralContainers":[` + strings.Join(ecs, ",") + `]}}`
	}
	review := func(sub, object, oldObject string) string {
		if sub != "" {
			sub = `"subResource":"` + sub + `",`
		}
		old := ""
		if oldObject != "" {
			old = `,"oldObject":` + oldObject
		}
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-e","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},` + sub +
			`"namespace":"default","operation":"UPDATE","userInfo":{"username":"alice"},"object":` + object + old + `}}`
	}
	pinned := tag + "@" + digest
	replace := func(path string) map[string]any {
		return map[string]any{"op": "replace", "path": path, "value": pinned}
	}
	for _, tc := range []struct {
		name string
		body string
		want []map[string]any
	}{
		{"a new ephemeral container", review("ephemeralcontainers", pod("debug"), pod()),
			[]map[string]any{replace("/spec/ephemeralContainers/0/image")}},
		{"after one that exists", review("ephemeralcontainers", pod("old", "debug"), pod("old")),
			[]map[string]any{replace("/spec/ephemeralContainers/1/image")}},
		{"the order changed", review("ephemeralcontainers", pod("debug", "old"), pod("old")),
			[]map[string]any{replace("/spec/ephemeralContainers/0/image")}},
		{"nothing added", review("ephemeralcontainers", pod("old"), pod("old")), nil},
		{"no old object", review("ephemeralcontainers", pod("debug"), ""),
			[]map[string]any{replace("/spec/ephemeralContainers/0/image")}},
		{"the Pod itself", review("", pod(), pod()),
			[]map[string]any{replace("/spec/initContainers/0/image"), replace("/spec/containers/0/image")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, h, []byte(tc.body))
			if !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
			var got []map[string]any
			if resp.Patch != nil {
				if err := json.Unmarshal(resp.Patch, &got); err != nil {
					t.Fatal(err)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
		})
	}
	// The old object is read for this alone: one that is not an object is
	// refused.
	resp := post(t, h, []byte(review("ephemeralcontainers", pod("debug"), `"x"`)))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "malformed AdmissionReview: the old object: the object is not a JSON object") {
		t.Errorf("malformed old object: %+v", resp)
	}
}
