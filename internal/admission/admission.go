// Package admission turns an AdmissionReview into a decision: every image of
// the object (package workload) is decided (package check) against the
// current policy snapshot, and the answer carries a denial naming the field,
// the image, the digest, the policy and the reason per authority, warnings,
// and for /mutate a JSON patch pinning tags to the verified digests. It knows
// nothing about crypto or registries beyond those packages, and it answers
// with a well-formed AdmissionReview, except when its body budget is spent
// (see [Handler.BodyBudget]): a review cannot be answered without reading
// its body, so that answer is 503 Service Unavailable.
package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"golang.org/x/sync/semaphore"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
)

// Limits of what a request may carry.
const (
	// MaxBodyBytes bounds an AdmissionReview. The API server refuses a
	// request body over 3 MiB, so an object it admits is at most that much
	// JSON; a review carries two (object and, for an update, oldObject) and
	// the request's other fields (user, options: kilobytes): 2 × 3 MiB + 1 MiB.
	MaxBodyBytes = 7 << 20
	// MaxJSONDepth bounds nesting.
	MaxJSONDepth = 64
	// maxImagesPerObject bounds the images of one object.
	maxImagesPerObject = 256
)

// Namespaces returns the labels of a namespace.
type Namespaces interface {
	Labels(ctx context.Context, name string) (map[string]string, error)
}

// Credentials supplies the pull secrets of a request, as named sources in
// order: the object's imagePullSecrets and its service account's, then
// (marked Fallback) signet's fallback service account's.
type Credentials interface {
	PullSecrets(ctx context.Context, namespace string, secrets []string, serviceAccount string) ([]registry.CredentialSource, error)
}

// Handler answers AdmissionReviews.
type Handler struct {
	// Snapshot returns the current policies (nil until loaded).
	Snapshot func() *policy.Snapshot
	Decider  *check.Decider
	// Extractor finds images in objects.
	Extractor *workload.Extractor
	// Namespaces looks up namespace labels (nil: no labels).
	Namespaces Namespaces
	// Credentials, when set, supplies pull secrets; Decider.Clients makes
	// registry clients from them (falling back to signet's own keychain).
	Credentials Credentials
	// Timeout bounds one decision; keep it below the webhook's
	// timeoutSeconds so the API server never applies its failure policy.
	Timeout time.Duration
	Log     *slog.Logger
	// Observe, when set, is told each decision's outcome and duration, with
	// the object's kind: one the extractor handles, "other" or, for a
	// request that could not be decoded, "unknown" (so a metric labelled
	// with them has boundedly many series). The outcome is "allowed",
	// "denied" (a policy, or the request itself, was refused: 4xx) or
	// "error" (signet could not decide, or failed: 5xx, which the API
	// server may retry).
	Observe func(kind, outcome string, d time.Duration)
	// ObserveDecisions, when set, is told the per-image decisions of each
	// request whose images were decided, before the answer is made; it
	// must not keep or change them. Requests refused before their images
	// are decided (malformed, policies not loaded) are not told.
	ObserveDecisions func(decisions []check.Decision)
	// BodyBudget, when set, bounds the bytes of request bodies held at once
	// by all the requests this handler serves, counted in chunks of
	// [BodyChunk] as they arrive (nothing is reserved from Content-Length). A
	// request that needs more than is left is answered 503 Service
	// Unavailable with Retry-After: 1 at once.
	BodyBudget *semaphore.Weighted

	inFlight atomic.Int64
}

// InFlight is how many admission requests are being answered now: the
// background audit yields to them.
func (h *Handler) InFlight() int64 { return h.inFlight.Load() }

// BodyChunk is the most a request body is read at once, and the unit of
// Handler.BodyBudget.
const BodyChunk = 32 << 10

// bodies are the buffers request bodies are read into, kept for the next
// request unless larger than maxPooledBody.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

// ServeHTTP serves /validate (mutate false) and /mutate (mutate true).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, mutate bool) {
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	start := time.Now()
	buf := bodies.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodies.Put(buf)
		}
	}()
	// The buffer grows as bytes arrive, never from Content-Length: a
	// client that announces megabytes and sends nothing holds nothing.
	held, err := h.readBody(buf, r.Body)
	if h.BodyBudget != nil {
		defer h.BodyBudget.Release(held)
	}
	if errors.Is(err, errBusy) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "signet is busy: too many request bytes in flight; retry", http.StatusServiceUnavailable)
		return
	}
	body := buf.Bytes() // nothing decoded from it refers to it after serve returns
	review := &admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}}
	var resp *admissionv1.AdmissionResponse
	kind := "unknown"
	switch {
	case err != nil:
		resp = errored(http.StatusBadRequest, fmt.Sprintf("reading the request: %v", err))
	case len(body) > MaxBodyBytes:
		resp = errored(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
		resp.UID = peekUID(body)
	default:
		resp, kind = h.review(r.Context(), body, mutate)
	}
	review.Response = resp
	outcome := "allowed"
	switch {
	case resp.Allowed:
	case resp.Result != nil && resp.Result.Code >= http.StatusInternalServerError:
		outcome = "error"
	default:
		outcome = "denied"
	}
	if h.Observe != nil {
		h.Observe(kind, outcome, time.Since(start))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(review)
}

// errBusy is returned by readBody when the body budget is spent.
var errBusy = errors.New("body budget spent")

// readBody reads body into buf, at most MaxBodyBytes+1 bytes, BodyChunk at
// a time, each taken from the body budget before it is read. It returns the
// bytes taken, which the caller gives back once it is done with buf.
func (h *Handler) readBody(buf *bytes.Buffer, body io.Reader) (held int64, err error) {
	for buf.Len() <= MaxBodyBytes {
		if h.BodyBudget != nil {
			if !h.BodyBudget.TryAcquire(BodyChunk) {
				return held, errBusy
			}
			held += BodyChunk
		}
		n := min(BodyChunk, MaxBodyBytes+1-buf.Len())
		buf.Grow(n)
		b := buf.AvailableBuffer()[:n]
		for len(b) > 0 && err == nil {
			var m int
			m, err = body.Read(b)
			buf.Write(b[:m]) // in place: b is buf's own free space
			b = b[m:]
		}
		if errors.Is(err, io.EOF) {
			return held, nil
		}
		if err != nil {
			return held, err
		}
	}
	return held, nil
}

// Validate is the http.Handler of /validate.
func (h *Handler) Validate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, false) })
}

// Mutate is the http.Handler of /mutate.
func (h *Handler) Mutate() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, true) })
}

// The answers that refuse a request, after controller-runtime's
// admission.Denied and admission.Errored: the API server passes the code and
// reason on to the client (kubectl prints "Error from server (Forbidden)",
// "(BadRequest)", "(ServiceUnavailable)"), so a refusal says whether a
// policy refused, the request was not one the API server sends, or signet
// could not decide and trying again may help.

// denied: a policy (or one of signet's limits) refuses the request. 403.
func denied(msg string) *admissionv1.AdmissionResponse {
	return errored(http.StatusForbidden, msg)
}

// malformed: the request is not one the API server sends. 400.
func malformed(err error) *admissionv1.AdmissionResponse {
	return errored(http.StatusBadRequest, "malformed AdmissionReview: "+err.Error())
}

// undecided: signet could not decide (policies not loaded, a registry or the
// API server unreachable, where the policy's onError is deny). 503.
func undecided(msg string) *admissionv1.AdmissionResponse {
	return errored(http.StatusServiceUnavailable, msg)
}

// errored refuses with code (and its reason) and msg.
func errored(code int32, msg string) *admissionv1.AdmissionResponse {
	reason := metav1.StatusReasonUnknown
	switch code {
	case http.StatusForbidden:
		reason = metav1.StatusReasonForbidden
	case http.StatusBadRequest:
		reason = metav1.StatusReasonBadRequest
	case http.StatusRequestEntityTooLarge:
		reason = metav1.StatusReasonRequestEntityTooLarge
	case http.StatusServiceUnavailable:
		reason = metav1.StatusReasonServiceUnavailable
	case http.StatusInternalServerError:
		reason = metav1.StatusReasonInternalError
	}
	return &admissionv1.AdmissionResponse{Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: code, Reason: reason, Message: msg,
	}}
}

// peekUID finds the request UID of a body that will not be decoded, so even
// a refused request gets an answer the API server can match.
func peekUID(body []byte) types.UID {
	i := bytes.Index(body, []byte(`"uid"`))
	if i < 0 {
		return ""
	}
	rest := body[i+5:]
	var uid string
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimLeft(bytes.TrimLeft(rest, " \t\r\n"), ":")))
	if dec.Decode(&uid) != nil || len(uid) > 128 {
		return ""
	}
	return types.UID(uid)
}

// review decodes and decides one AdmissionReview. A panic becomes a
// denial, never an allow.
func (h *Handler) review(ctx context.Context, body []byte, mutate bool) (resp *admissionv1.AdmissionResponse, kind string) {
	// The UID of a request that cannot be decoded is looked for in its
	// bytes (only then: it costs a decoder per request).
	defer func() {
		if r := recover(); r != nil {
			uid := peekUID(body)
			h.log().Error("panic while deciding", "uid", uid, "panic", r, "stack", string(debug.Stack()))
			resp, kind = errored(http.StatusInternalServerError, "signet failed while deciding this request (internal error); denied"), "unknown"
			resp.UID = uid
		}
	}()
	kind = "unknown" // until the request is decoded
	var review struct {
		Request *request `json:"request"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		resp = malformed(err)
		resp.UID = peekUID(body)
		return resp, kind
	}
	req := review.Request
	if req == nil {
		resp = malformed(errors.New("no request"))
		resp.UID = peekUID(body)
		return resp, kind
	}
	// Depth is checked once the request is decoded, so that the denial
	// carries its UID: peekUID finds the first "uid" in the bytes, which may
	// be another field's, and misses a "UID" that decoding accepts. The
	// decoding is safe at any depth: encoding/json validates the body
	// without recursing, and skips what request does not name likewise.
	if err := checkDepth(body, MaxJSONDepth); err != nil {
		resp = malformed(err)
		resp.UID = req.UID
		return resp, kind
	}
	kind = h.kindLabel(workload.Kind{Group: req.Kind.Group, Kind: req.Kind.Kind})
	resp = h.decide(ctx, req, mutate)
	resp.UID = req.UID
	return resp, kind
}

// kindLabel is what Observe is told of a request's kind: the kind's name
// when the extractor knows where it keeps images (the built-in kinds, the
// Crossplane packages and the --image-field kinds: a set the operator
// bounds), else "other". A request names any kind it likes, and a metric
// label made from it would grow without bound.
func (h *Handler) kindLabel(k workload.Kind) string {
	if h.Extractor != nil && h.Extractor.Handles(k) {
		return k.Kind
	}
	return "other"
}

// request is the part of an AdmissionRequest signet reads, decoded in one
// pass over the review. The objects are not decoded there (see rawObject);
// the request kind and options, the user's groups and extra are skipped
// unread.
type request struct {
	UID         types.UID                   `json:"uid"`
	Kind        metav1.GroupVersionKind     `json:"kind"`
	Resource    metav1.GroupVersionResource `json:"resource"`
	SubResource string                      `json:"subResource"`
	Name        string                      `json:"name"`
	Namespace   string                      `json:"namespace"`
	Operation   admissionv1.Operation       `json:"operation"`
	UserInfo    struct {
		Username string `json:"username"`
	} `json:"userInfo"`
	DryRun *bool     `json:"dryRun"`
	Object rawObject `json:"object"`
	// OldObject is read only for /mutate on pods/ephemeralcontainers (the
	// names of the ephemeral containers that exist already).
	OldObject rawObject `json:"oldObject"`
}

// rawObject is the admitted object's JSON as it appears in the request
// body. It is a slice of that body, not a copy: the body outlives the
// decision. Unmarshal hands it the bytes of a value it has already
// validated (it checks the whole review before decoding any of it), and
// workload decodes only what it needs of it.
type rawObject []byte

func (o *rawObject) UnmarshalJSON(b []byte) error {
	*o = b
	return nil
}

// checkDepth rejects JSON nested deeper than max, without decoding it.
func checkDepth(body []byte, max int) error {
	depth := 0
	inString, escaped := false, false
	for _, c := range body {
		switch {
		case escaped:
			escaped = false
		case inString:
			switch c {
			case '\\':
				escaped = true
			case '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > max {
				return fmt.Errorf("request nests JSON deeper than %d levels", max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

// requestLog logs with the fields of one admission request.
type requestLog struct {
	l      *slog.Logger
	fields []any
}

func (r requestLog) Info(msg string, args ...any) { r.l.Info(msg, append(r.fields, args...)...) }
func (r requestLog) Warn(msg string, args ...any) { r.l.Warn(msg, append(r.fields, args...)...) }
func (r requestLog) Debug(msg string, args ...any) {
	if r.l.Enabled(context.Background(), slog.LevelDebug) {
		r.l.Debug(msg, append(r.fields, args...)...)
	}
}

func (h *Handler) log() *slog.Logger {
	if h.Log != nil {
		return h.Log
	}
	return slog.Default()
}

func (h *Handler) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 20 * time.Second
}

// ErrNotReady is returned by readiness checks before policies are loaded.
var ErrNotReady = errors.New("policies are not loaded yet")
