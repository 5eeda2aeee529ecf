package admission

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

// deploymentReview is a Deployment whose pod template has an init container,
// a container and ephemeral containers: one image the static policy passes,
// one no policy matches, one given by digest (which needs the registry).
const deploymentReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-2","kind":{"group":"apps","version":"v1","kind":"Deployment"},"resource":{"group":"apps","version":"v1","resource":"deployments"},"namespace":"default","operation":"CREATE","userInfo":{"username":"alice"},"object":{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{"template":{"spec":{"initContainers":[{"name":"i","image":"registry.example.org/init:v1"}],"containers":[{"name":"a","image":"registry.example.org/app:v1"}],"ephemeralContainers":[{"name":"e","image":"docker.io/library/busybox:1"},{"name":"f","image":"registry.example.org/debug@sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}}}}}}`

// knownOperation lists the operations the API server sends.
var knownOperation = map[admissionv1.Operation]bool{admissionv1.Create: true, admissionv1.Update: true, admissionv1.Delete: true, admissionv1.Connect: true}

// FuzzValidate posts arbitrary bytes to /validate and /mutate. A malformed
// request must get a well-formed denial, and nothing may panic:
//   - the answer is 200 (or a 4xx) with an admission.k8s.io/v1
//     AdmissionReview that has a response, and a denial says why;
//   - a body that decodes as an AdmissionReview with a request UID gets that
//     UID back (the API server discards an answer with another UID and
//     applies the webhook's failure policy, which may be Ignore);
//   - a body that is not JSON is never allowed, nor is a request with no
//     operation or one the API server never sends (a body can be JSON and
//     still fail to decode as an AdmissionReview in fields signet does not
//     read, such as request.resource; that alone does not deny it);
//   - nothing is logged at error level: the handler turns a panic into a
//     denial and logs it there, so a denial alone would hide it.
//
// That nothing unbounded is read is not exercised here (fuzz inputs are
// small): see the "too large" case of TestMalformedRequestsGetWellFormedDenials.
func FuzzValidate(f *testing.F) {
	deep := strings.Repeat(`{"a":`, 2*MaxJSONDepth) + `1` + strings.Repeat(`}`, 2*MaxJSONDepth)
	for _, seed := range []string{
		podReview,
		podReview[:len(podReview)/2],
		strings.Replace(podReview, `"metadata":{"name":"p"}`, `"metadata":`+deep, 1),
		``,
		`null`,
		strings.Replace(podReview, `"object":{"apiVersion"`, `"object":"{\"apiVersion\"","o":{"apiVersion"`, 1),
		deploymentReview,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		// Images under registry.example.org pass a static policy; no policy
		// matches the others, and unmatched images are denied.
		h := handler(t, staticSnapshot(t, "pass"))
		rc, err := registry.New(registry.WithTransport(registrytest.Status(http.StatusNotFound)))
		if err != nil {
			t.Fatal(err)
		}
		h.Decider.Registry = rc
		var logs bytes.Buffer
		h.Log = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelError}))

		var in admissionv1.AdmissionReview
		decodes := json.Unmarshal(body, &in) == nil
		for _, e := range []struct {
			path string
			h    http.Handler
		}{{"/validate", h.Validate()}, {"/mutate", h.Mutate()}} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodPost, e.path, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			e.h.ServeHTTP(rec, req)
			if rec.Code/100 == 4 {
				continue
			}
			if rec.Code != http.StatusOK {
				t.Fatalf("%s: status %d", e.path, rec.Code)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil ||
				out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
				t.Fatalf("%s: malformed answer (%v): %s", e.path, err, rec.Body.String())
			}
			resp := out.Response
			if !resp.Allowed && (resp.Result == nil || resp.Result.Message == "") {
				t.Errorf("%s: a denial that does not say why: %+v", e.path, resp)
			}
			if decodes && in.Request != nil && in.Request.UID != "" && resp.UID != in.Request.UID {
				t.Errorf("%s: answered UID %q to request UID %q", e.path, resp.UID, in.Request.UID)
			}
			if resp.Allowed && !json.Valid(body) {
				t.Errorf("%s: allowed a body that is not JSON", e.path)
			}
			if resp.Allowed && decodes && in.Request != nil && !knownOperation[in.Request.Operation] {
				t.Errorf("%s: allowed operation %q", e.path, in.Request.Operation)
			}
		}
		if logs.Len() > 0 {
			t.Errorf("logged an error: %s", logs.String())
		}
	})
}
