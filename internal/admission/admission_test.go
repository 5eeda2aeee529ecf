package admission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sync/semaphore"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
)

func handler(t *testing.T, snap *policy.Snapshot) *Handler {
	t.Helper()
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	ex, err := workload.NewExtractor()
	if err != nil {
		t.Fatal(err)
	}
	return &Handler{Snapshot: func() *policy.Snapshot { return snap }, Decider: &check.Decider{Registry: rc}, Extractor: ex}
}

func staticSnapshot(t *testing.T, action string) *policy.Snapshot {
	t.Helper()
	p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: "static-" + action, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}, Digest: "none",
		Authorities: []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: action, Message: "static says " + action}}},
	}}, nil)
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func post(t *testing.T, h http.Handler, body []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", bytes.NewReader(body)))
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("answer is not an AdmissionReview: %v: %s", err, rec.Body.String())
	}
	if review.Response == nil || review.APIVersion != "admission.k8s.io/v1" || review.Kind != "AdmissionReview" {
		t.Fatalf("malformed answer: %s", rec.Body.String())
	}
	return review.Response
}

const podReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"default","operation":"CREATE","userInfo":{"username":"alice"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}}}}`

func TestMalformedRequestsGetWellFormedDenials(t *testing.T) {
	h := handler(t, staticSnapshot(t, "pass")).Validate()
	deep := `{"request":{"uid":"u-deep","object":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat(`}`, 100) + `}}`
	for _, tc := range []struct {
		name, body, uid, want string
	}{
		{"not JSON", `{"request":{"uid":"u-2",`, "u-2", "malformed AdmissionReview"},
		{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "", "no request"},
		{"too deep", deep, "u-deep", "deeper than"},
		{"containers not a list", strings.Replace(podReview, `"containers":[{"name":"a","image":"registry.example.org/app:v1"}]`, `"containers":{"name":"a"}`, 1), "u-1", "spec.containers: not a list"},
		{"container image not a string", strings.Replace(podReview, `"image":"registry.example.org/app:v1"`, `"image":["x"]`, 1), "u-1", "not a string"},
		{"too large", `{"request":{"uid":"u-big","x":"` + strings.Repeat("a", MaxBodyBytes) + `"}}`, "u-big", "larger than"},
		{"object not an object", strings.Replace(podReview, `"object":{"apiVersion"`, `"object":"x","o":{"apiVersion"`, 1), "u-1", "malformed AdmissionReview"},
		{"no object", strings.Replace(podReview, `"object":{"apiVersion"`, `"o":{"apiVersion"`, 1), "u-1", "carries no object"},
		{"null object", strings.Replace(podReview, `"object":{"apiVersion"`, `"object":null,"o":{"apiVersion"`, 1), "u-1", "carries no object"},
		{"no operation", strings.Replace(podReview, `"operation":"CREATE"`, `"op":"CREATE"`, 1), "u-1", `request.operation "" is not`},
		{"unknown operation", strings.Replace(podReview, `"operation":"CREATE"`, `"operation":"PATCH"`, 1), "u-1", `request.operation "PATCH" is not`},
		{"no kind", strings.Replace(podReview, `"kind":{"group":"","version":"v1","kind":"Pod"}`, `"kind":{"group":"","version":"v1"}`, 1), "u-1", "request.kind names no kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, h, []byte(tc.body))
			if resp.Allowed {
				t.Fatal("allowed")
			}
			if string(resp.UID) != tc.uid {
				t.Errorf("UID %q, want %q", resp.UID, tc.uid)
			}
			if resp.Result == nil || !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("message %+v does not say %q", resp.Result, tc.want)
			}
		})
	}
}

// TestOldObjectIsNotRead: on UPDATE the new object is decided; the old one,
// however malformed, is skipped.
func TestOldObjectIsNotRead(t *testing.T) {
	h := handler(t, staticSnapshot(t, "pass")).Validate()
	update := strings.Replace(podReview, `"operation":"CREATE"`, `"operation":"UPDATE","oldObject":{"spec":{"containers":"not a list"}}`, 1)
	if resp := post(t, h, []byte(update)); !resp.Allowed || resp.UID != "u-1" {
		t.Fatalf("UPDATE with a malformed old object: %+v", resp)
	}
}

func TestStaticPolicies(t *testing.T) {
	resp := post(t, handler(t, staticSnapshot(t, "pass")).Validate(), []byte(podReview))
	if !resp.Allowed || resp.UID != "u-1" {
		t.Fatalf("static pass: %+v", resp)
	}
	resp = post(t, handler(t, staticSnapshot(t, "fail")).Validate(), []byte(podReview))
	if resp.Allowed || !strings.Contains(resp.Result.Message, "spec.containers[0].image: registry.example.org/app:v1: denied by policy static-fail: authority s: static says fail") {
		t.Fatalf("static fail: %+v", resp.Result)
	}
	// Operations other than CREATE and UPDATE, and kinds without images,
	// pass through.
	del := strings.Replace(podReview, `"operation":"CREATE"`, `"operation":"DELETE"`, 1)
	if resp := post(t, handler(t, staticSnapshot(t, "fail")).Validate(), []byte(del)); !resp.Allowed || len(resp.Warnings) > 0 {
		t.Fatalf("DELETE denied or warned: %+v", resp)
	}
	// A kind signet does not know the images of (the webhook rules sent it
	// anyway) passes, with a warning that says so.
	widget := strings.NewReplacer(`"kind":{"group":"","version":"v1","kind":"Pod"}`, `"kind":{"group":"example.org","version":"v1","kind":"Widget"}`,
		`"resource":{"group":"","version":"v1","resource":"pods"}`, `"resource":{"group":"example.org","version":"v1","resource":"widgets"}`,
		`"object":{"apiVersion":"v1","kind":"Pod"`, `"object":{"apiVersion":"example.org/v1","kind":"Widget"`).Replace(podReview)
	resp = post(t, handler(t, staticSnapshot(t, "fail")).Validate(), []byte(widget))
	if !resp.Allowed || len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "Widget") || !strings.Contains(resp.Warnings[0], "--image-field") {
		t.Fatalf("unknown kind: %+v", resp)
	}
}

func TestPanicIsADenial(t *testing.T) {
	h := handler(t, staticSnapshot(t, "pass"))
	h.Snapshot = func() *policy.Snapshot { panic("boom") }
	resp := post(t, h.Validate(), []byte(podReview))
	if resp.Allowed || resp.UID != "u-1" || !strings.Contains(resp.Result.Message, "internal error") {
		t.Fatalf("panic answered %+v", resp)
	}
}

func TestNotLoadedYetDenies(t *testing.T) {
	h := handler(t, nil)
	h.Snapshot = func() *policy.Snapshot { return nil }
	if resp := post(t, h.Validate(), []byte(podReview)); resp.Allowed {
		t.Fatal("allowed before policies were loaded")
	}
}

// TestImagesAreReadWhereTheRuntimeReadsThem: only the fields that hold
// images are decoded, under their exact names: an escaped "spec" is spec,
// a "Spec" is not, and PodTemplate's pod spec is under template.
func TestImagesAreReadWhereTheRuntimeReadsThem(t *testing.T) {
	h := handler(t, staticSnapshot(t, "fail")).Validate()
	const image = `{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}`
	for _, tc := range []struct {
		name, kind, resource, object string
		denied                       bool
	}{
		{"escaped name", "Pod", "pods", `{"metadata":{"name":"p"},"sp\u0065c":` + image + `}`, true},
		{"decoy with another case", "Pod", "pods", `{"Spec":` + image + `,"spec":{"containers":[]}}`, false},
		{"PodTemplate", "PodTemplate", "podtemplates", `{"metadata":{"name":"p"},"template":{"spec":` + image + `}}`, true},
		{"spec of a PodTemplate holds no pod spec", "PodTemplate", "podtemplates", `{"spec":{"template":{"spec":` + image + `}}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.NewReplacer(`"kind":"Pod"},"resource"`, `"kind":"`+tc.kind+`"},"resource"`,
				`"resource":"pods"`, `"resource":"`+tc.resource+`"`).Replace(podReview)
			body = body[:strings.Index(body, `"object":`)] + `"object":` + tc.object + `}}`
			resp := post(t, h, []byte(body))
			if resp.Allowed == tc.denied {
				t.Fatalf("allowed %v, want denied %v: %+v", resp.Allowed, tc.denied, resp.Result)
			}
		})
	}
}

// A request announcing a large body costs what it sends, not what it
// announces: the buffer grows as bytes arrive. (It was grown to the
// Content-Length before the first byte: 80 clients sending headers only
// held 700 MiB.)
func TestBodyBufferGrowsWithTheBytesNotTheContentLength(t *testing.T) {
	h := handler(t, staticSnapshot(t, "pass")).Validate()
	const requests = 20
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range requests {
		r := httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(podReview))
		r.ContentLength = MaxBodyBytes // announced, never sent
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"allowed":true`) {
			t.Fatalf("%d %s", rec.Code, rec.Body.String())
		}
	}
	runtime.ReadMemStats(&after)
	// A small review costs tens of KiB to decide; the announced size would
	// be 7 MiB per request.
	if perRequest := (after.TotalAlloc - before.TotalAlloc) / requests; perRequest > 1<<20 {
		t.Errorf("a %d-byte review announcing %d bytes allocated %d bytes", len(podReview), MaxBodyBytes, perRequest)
	}
}

// The body budget bounds the bytes held by all requests at once: a request
// that needs more than is left is answered 503 at once, and every byte
// taken is given back.
func TestBodyBudget(t *testing.T) {
	h := handler(t, staticSnapshot(t, "pass"))
	h.BodyBudget = semaphore.NewWeighted(2 * BodyChunk)
	big := `{"request":{"uid":"u-big","x":"` + strings.Repeat("a", 2*BodyChunk) + `"}}`
	for _, tc := range []struct {
		name     string
		held     int64 // taken by other requests meanwhile
		body     string
		wantCode int
		want     string
	}{
		{"small review", 0, podReview, http.StatusOK, `"allowed":true`},
		{"larger than the whole budget", 0, big, http.StatusServiceUnavailable, "signet is busy"},
		{"small review, budget held by others", 2 * BodyChunk, podReview, http.StatusServiceUnavailable, "signet is busy"},
		{"small review, one chunk left", BodyChunk, podReview, http.StatusOK, `"allowed":true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.held > 0 && !h.BodyBudget.TryAcquire(tc.held) {
				t.Fatal("budget not given back by an earlier request")
			}
			rec := httptest.NewRecorder()
			h.Validate().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/validate", strings.NewReader(tc.body)))
			if tc.held > 0 {
				h.BodyBudget.Release(tc.held)
			}
			if rec.Code != tc.wantCode || !strings.Contains(rec.Body.String(), tc.want) {
				t.Errorf("got %d %q, want %d and %q", rec.Code, rec.Body.String(), tc.wantCode, tc.want)
			}
			if tc.wantCode == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
				t.Error("a busy answer without Retry-After")
			}
			if !h.BodyBudget.TryAcquire(2 * BodyChunk) {
				t.Fatal("the request kept part of the budget")
			}
			h.BodyBudget.Release(2 * BodyChunk)
		})
	}
}

// TestKindMustMatchResourceAndObject: the request's kind decides where
// images are read, so a request whose kind disagrees with its resource or
// with the object's own apiVersion and kind is refused as malformed (a Pod
// read as a Deployment shows no images), and one that agrees is decided.
func TestKindMustMatchResourceAndObject(t *testing.T) {
	h := handler(t, staticSnapshot(t, "fail")).Validate()
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}}`
	review := func(kind, resource, subResource, object string) string {
		sub := ""
		if subResource != "" {
			sub = `"subResource":"` + subResource + `",`
		}
		return `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-k","kind":` + kind + `,"resource":` + resource + `,` + sub +
			`"namespace":"default","operation":"UPDATE","userInfo":{"username":"alice"},"object":` + object + `}}`
	}
	const (
		podKind  = `{"group":"","version":"v1","kind":"Pod"}`
		pods     = `{"group":"","version":"v1","resource":"pods"}`
		deplKind = `{"group":"apps","version":"v1","kind":"Deployment"}`
		depls    = `{"group":"apps","version":"v1","resource":"deployments"}`
		rcKind   = `{"group":"","version":"v1","kind":"ReplicationController"}`
		rcs      = `{"group":"","version":"v1","resource":"replicationcontrollers"}`
	)
	for _, tc := range []struct {
		name string
		body string
		want string // in the denial
	}{
		{"a Pod declared a Deployment", review(deplKind, depls, "", pod), `request.kind is v1 Deployment.apps but the object's apiVersion "v1" is not "apps/v1"`},
		{"a Pod declared a ReplicationController", review(rcKind, rcs, "", pod), `the object's kind "Pod" is not "ReplicationController"`},
		{"an escaped kind field", review(rcKind, rcs, "", strings.Replace(pod, `"kind"`, `"\u006bind"`, 1)), `the object's kind "Pod" is not "ReplicationController"`},
		{"the kind is not a string", review(podKind, pods, "", strings.Replace(pod, `"kind":"Pod"`, `"kind":7`, 1)), "the object's kind is not a string"},
		{"the apiVersion is not a string", review(podKind, pods, "", strings.Replace(pod, `"apiVersion":"v1"`, `"apiVersion":["v1"]`, 1)), "the object's apiVersion is not a string"},
		{"a Deployment served as pods", review(deplKind, pods, "", `{"spec":{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}}`), "request.kind Deployment.apps does not match request.resource pods"},
		{"a Pod served as deployments", review(podKind, depls, "", pod), "request.kind Pod does not match request.resource deployments.apps"},
		{"an unknown kind served as pods", review(`{"group":"example.org","version":"v1","kind":"Widget"}`, pods, "", `{"spec":{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}}`), "request.kind Widget.example.org does not match request.resource pods, which serves Pod"},
		{"no resource", review(podKind, `{}`, "", pod), "request.resource names no resource; request.kind Pod is served as pods"},
		{"no resource for a subresource", review(podKind, `{}`, "ephemeralcontainers", pod), `request.resource names no resource for subresource "ephemeralcontainers"`},
		{"ephemeralcontainers declared a Deployment", review(deplKind, pods, "ephemeralcontainers", pod), "request.kind Deployment.apps does not match request.resource pods/ephemeralcontainers, which carries a Pod"},
		{"a Provider served as configurations", review(`{"group":"pkg.crossplane.io","version":"v1","kind":"Provider"}`, `{"group":"pkg.crossplane.io","version":"v1","resource":"configurations"}`, "", `{"spec":{"package":"registry.example.org/p:v1"}}`),
			"request.kind Provider.pkg.crossplane.io does not match request.resource configurations.pkg.crossplane.io"},
		// What agrees is decided (the static policy denies the image).
		{"a Pod", review(podKind, pods, "", pod), "spec.containers[0].image: registry.example.org/app:v1: denied by policy static-fail"},
		{"a Pod that does not state its type", review(podKind, pods, "", `{"spec":{"containers":[{"name":"a","image":"registry.example.org/app:v1"}]}}`), "denied by policy static-fail"},
		{"a Pod's ephemeral containers", review(podKind, pods, "ephemeralcontainers", pod), "denied by policy static-fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := post(t, h, []byte(tc.body))
			if resp.Allowed {
				t.Fatalf("allowed: %+v", resp)
			}
			if resp.UID != "u-k" {
				t.Errorf("UID %q, want u-k", resp.UID)
			}
			if resp.Result == nil || !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("denial %+v does not say %q", resp.Result, tc.want)
			}
		})
	}
	// Subresources other than ephemeralcontainers carry other kinds and
	// change no images: they pass, as before.
	for _, tc := range []struct{ name, body string }{
		{"pods/status", review(podKind, pods, "status", pod)},
		{"deployments/scale", review(`{"group":"autoscaling","version":"v1","kind":"Scale"}`, depls, "scale", `{"apiVersion":"autoscaling/v1","kind":"Scale","spec":{"replicas":2}}`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if resp := post(t, h, []byte(tc.body)); !resp.Allowed {
				t.Fatalf("denied: %+v", resp.Result)
			}
		})
	}
}

// Observe is told a kind from a bounded set whatever kinds requests name.
func TestObservedKindsAreBounded(t *testing.T) {
	h := handler(t, staticSnapshot(t, "pass"))
	h.Log = slog.New(slog.DiscardHandler)
	kinds := map[string]bool{}
	h.Observe = func(kind, _ string, _ time.Duration) { kinds[kind] = true }
	review := func(group, kind string) string {
		return strings.Replace(podReview, `"kind":{"group":"","version":"v1","kind":"Pod"}`,
			`"kind":{"group":"`+group+`","version":"v1","kind":"`+kind+`"}`, 1)
	}
	for i := range 2000 {
		post(t, h.Validate(), []byte(review("made.up", fmt.Sprintf("Kind%d", i))))
	}
	post(t, h.Validate(), []byte(review("evil.example", "Pod")))
	post(t, h.Validate(), []byte(podReview))
	post(t, h.Validate(), []byte(review("pkg.crossplane.io", "Provider")))
	post(t, h.Validate(), []byte(`not json`))
	want := map[string]bool{"Pod": true, "Provider": true, "other": true, "unknown": true}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("observed kinds (-want +got):\n%s", diff)
	}
}

// TestCrossplanePackageWithoutRegistry: a Crossplane package that names no
// registry is Crossplane's registry's (xpkg.crossplane.io unless
// configured), not Docker Hub's: that registry's policies decide it, and
// the denial names the reference as resolved.
func TestCrossplanePackageWithoutRegistry(t *testing.T) {
	static := func(name, glob, action string) *policy.Policy {
		return policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: name, Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: glob}}, Digest: "none",
			Authorities: []v1alpha1.Authority{{Name: "s", Static: &v1alpha1.StaticAuthority{Action: action, Message: name + " says " + action}}},
		}}, nil)
	}
	// Docker Hub's images pass; Crossplane's and Upbound's are denied, each
	// by its own policy.
	snap, err := policy.NewSnapshot([]*policy.Policy{
		static("hub", "docker.io/**", "pass"),
		static("crossplane", "xpkg.crossplane.io/**", "fail"),
		static("upbound", "xpkg.upbound.io/**", "fail"),
	}, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	provider := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-x","kind":{"group":"pkg.crossplane.io","version":"v1","kind":"Provider"},"resource":{"group":"pkg.crossplane.io","version":"v1","resource":"providers"},` +
		`"name":"provider-aws","operation":"CREATE","userInfo":{"username":"alice"},"object":{"apiVersion":"pkg.crossplane.io/v1","kind":"Provider","metadata":{"name":"provider-aws"},"spec":{"package":"crossplane-contrib/provider-aws:v1"}}}}`
	for _, tc := range []struct {
		name     string
		registry string // "" for the default
		want     string
	}{
		{"default", "", "spec.package: xpkg.crossplane.io/crossplane-contrib/provider-aws:v1: denied by policy crossplane"},
		{"configured", "xpkg.upbound.io", "spec.package: xpkg.upbound.io/crossplane-contrib/provider-aws:v1: denied by policy upbound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := handler(t, snap)
			if tc.registry != "" {
				ex, err := workload.NewExtractor(workload.CrossplaneRegistry(tc.registry))
				if err != nil {
					t.Fatal(err)
				}
				h.Extractor = ex
			}
			resp := post(t, h.Validate(), []byte(provider))
			if resp.Allowed {
				t.Fatalf("allowed (decided as Docker Hub's?): %+v", resp)
			}
			if !strings.Contains(resp.Result.Message, tc.want) {
				t.Errorf("denial %q does not say %q", resp.Result.Message, tc.want)
			}
		})
	}
}

// Observe tells a refusal signet could not decide (5xx) from a denial, and
// ObserveDecisions is told the decisions of the requests whose images were
// decided, and only those.
func TestObservedOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		snap      *policy.Snapshot
		body      string
		outcome   string
		decisions []string // "policy:verified" per matching policy
	}{
		{"allowed", staticSnapshot(t, "pass"), podReview, "allowed", []string{"ClusterImagePolicy static-pass:true"}},
		{"denied by a policy", staticSnapshot(t, "fail"), podReview, "denied", []string{"ClusterImagePolicy static-fail:false"}},
		{"malformed", staticSnapshot(t, "pass"), `{"request":`, "denied", nil},
		{"policies not loaded", nil, podReview, "error", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := handler(t, tc.snap)
			h.Log = slog.New(slog.DiscardHandler)
			var outcome string
			var decided []string
			h.Observe = func(_, o string, _ time.Duration) { outcome = o }
			h.ObserveDecisions = func(ds []check.Decision) {
				for _, d := range ds {
					for _, pd := range d.Policies {
						decided = append(decided, fmt.Sprintf("%s:%v", pd.Policy, pd.Result != nil && pd.Result.Verified))
					}
				}
			}
			post(t, h.Validate(), []byte(tc.body))
			if outcome != tc.outcome {
				t.Errorf("outcome %q, want %q", outcome, tc.outcome)
			}
			if diff := cmp.Diff(tc.decisions, decided); diff != "" {
				t.Errorf("decisions observed (-want +got):\n%s", diff)
			}
		})
	}
}
