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
	"strings"
	"sync"
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
	// parallelImages bounds how many images of one object are decided at
	// once: a pod of 20 images waits for two rounds of registry round trips,
	// not three (each image makes a few requests of its own, 4 at most).
	parallelImages = 16
)

// Namespaces returns the labels of a namespace.
type Namespaces interface {
	Labels(ctx context.Context, name string) (map[string]string, error)
}

// Credentials supplies the pull secrets of a request: the object's
// imagePullSecrets and its service account's, in that order, as Secret data.
type Credentials interface {
	PullSecrets(ctx context.Context, namespace string, secrets []string, serviceAccount string) ([]map[string][]byte, error)
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
	// Observe, when set, is told each decision's outcome ("allowed" or
	// "denied") and duration, with the object's kind: one the extractor
	// handles, "other" or, for a request that could not be decoded,
	// "unknown" (so a metric labelled with them has boundedly many series).
	Observe func(kind, outcome string, d time.Duration)
	// BodyBudget, when set, bounds the bytes of request bodies held at once
	// by all the requests this handler serves, counted in chunks of
	// [BodyChunk] as they arrive (nothing is reserved from Content-Length). A
	// request that needs more than is left is answered 503 Service
	// Unavailable with Retry-After: 1 at once.
	BodyBudget *semaphore.Weighted
}

// BodyChunk is the most a request body is read at once, and the unit of
// Handler.BodyBudget.
const BodyChunk = 32 << 10

// bodies are the buffers request bodies are read into, kept for the next
// request unless larger than maxPooledBody.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

// ServeHTTP serves /validate (mutate false) and /mutate (mutate true).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, mutate bool) {
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
		resp = deny("", fmt.Sprintf("reading the request: %v", err))
	case len(body) > MaxBodyBytes:
		resp = deny(peekUID(body), fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes))
	default:
		resp, kind = h.review(r.Context(), body, mutate)
	}
	review.Response = resp
	outcome := "allowed"
	if !resp.Allowed {
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

func deny(uid types.UID, msg string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{UID: uid, Allowed: false, Result: &metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden, Message: msg,
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
			resp, kind = deny(uid, "signet failed while deciding this request (internal error); denied"), "unknown"
		}
	}()
	kind = "unknown" // until the request is decoded
	var review struct {
		Request *request `json:"request"`
	}
	if err := json.Unmarshal(body, &review); err != nil {
		return deny(peekUID(body), fmt.Sprintf("malformed AdmissionReview: %v", err)), kind
	}
	req := review.Request
	if req == nil {
		return deny(peekUID(body), "malformed AdmissionReview: no request"), kind
	}
	// Depth is checked once the request is decoded, so that the denial
	// carries its UID: peekUID finds the first "uid" in the bytes, which may
	// be another field's, and misses a "UID" that decoding accepts. The
	// decoding is safe at any depth: encoding/json validates the body
	// without recursing, and skips what request does not name likewise.
	if err := checkDepth(body, MaxJSONDepth); err != nil {
		return deny(req.UID, err.Error()), kind
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

// decide answers one admission request.
func (h *Handler) decide(ctx context.Context, req *request, mutate bool) *admissionv1.AdmissionResponse {
	// The request fields go on every line; they are formatted only when a
	// line is written (slog's With formats them up front, at a cost per
	// request comparable to the decision itself when results are cached).
	log := requestLog{h.log(), []any{"uid", req.UID, "kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
		"operation", req.Operation, "user", req.UserInfo.Username, "dryRun", req.DryRun != nil && *req.DryRun}}
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	switch req.Operation {
	case admissionv1.Create, admissionv1.Update:
	case admissionv1.Delete, admissionv1.Connect:
		return allow
	default:
		// The API server sends only the four operations; anything else is
		// not a request it made, and absence is not acceptance.
		return deny("", fmt.Sprintf("malformed AdmissionReview: request.operation %q is not CREATE, UPDATE, DELETE or CONNECT", req.Operation))
	}
	if req.Kind.Kind == "" {
		return deny("", "malformed AdmissionReview: request.kind names no kind")
	}
	k := workload.Kind{Group: req.Kind.Group, Kind: req.Kind.Kind}
	// The kind decides where images are read: a request whose kind
	// disagrees with its resource or its object is not one the API server
	// made, and reading it as declared could find no images.
	if err := checkResource(req, k); err != nil {
		log.Warn("denied malformed request", "err", err)
		return deny("", fmt.Sprintf("malformed AdmissionReview: %v", err))
	}
	// The ephemeralcontainers subresource carries a Pod (checkResource saw
	// to it); other subresources (status, scale, ...) change no images.
	if req.SubResource != "" && !isEphemeralContainers(req) {
		return allow
	}
	// Only the fields that can hold images are decoded, and the object's
	// own apiVersion and kind.
	obj, err := decodeObject(req.Object, h.Extractor.Shape(k))
	if err != nil {
		return deny("", fmt.Sprintf("malformed AdmissionReview: %v", err))
	}
	if obj != nil {
		if err := workload.CheckType(k, req.Kind.Version, obj); err != nil {
			log.Warn("denied malformed request", "err", err)
			return deny("", fmt.Sprintf("malformed AdmissionReview: request.kind is %s %s but %v", req.Kind.Version, k, err))
		}
	}
	if !h.Extractor.Handles(k) {
		// The webhook rules sent a kind signet does not know the image
		// fields of: say so where the user sees it rather than pass it
		// silently.
		log.Warn("allowed unchecked: signet does not know where this kind keeps images")
		allow.Warnings = []string{fmt.Sprintf("signet: %s is not a kind whose images signet knows; allowed without checking (declare its image fields with signet serve --image-field)", k)}
		return allow
	}
	if obj == nil {
		return deny("", fmt.Sprintf("%s %s: the request carries no object", k, req.Name))
	}
	images, err := h.Extractor.Images(k, obj)
	if err != nil {
		return deny("", fmt.Sprintf("%s %s: %v", k, req.Name, err))
	}
	if len(images) == 0 {
		return allow
	}
	if len(images) > maxImagesPerObject {
		return deny("", fmt.Sprintf("%s %s has %d images, more than the %d signet checks in one object", k, req.Name, len(images), maxImagesPerObject))
	}
	// Through pods/ephemeralcontainers a patch may add ephemeral
	// containers and nothing else: only those are pinned.
	pinnable := func(workload.Image) bool { return true }
	if mutate && isEphemeralContainers(req) {
		added, err := addedEphemeralContainers(req.Object, req.OldObject)
		if err != nil {
			return deny("", fmt.Sprintf("malformed AdmissionReview: %v", err))
		}
		pinnable = func(im workload.Image) bool {
			i, ok := ephemeralIndex(im.Pointer)
			return ok && added[i]
		}
	}
	snap := h.Snapshot()
	if snap == nil {
		return deny("", "signet has not loaded its policies yet; try again")
	}

	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	target := policy.Target{Namespace: req.Namespace, Kind: k.Kind}
	if h.Namespaces != nil && req.Namespace != "" {
		labels, err := h.Namespaces.Labels(ctx, req.Namespace)
		if err != nil {
			log.Warn("namespace labels unavailable", "err", err)
			return deny("", fmt.Sprintf("could not read the labels of namespace %s: %v", req.Namespace, err))
		}
		target.NamespaceLabels = labels
	}

	rc, clientKey := h.Decider.Registry, ""
	if h.Credentials != nil && h.Decider.Clients != nil && req.Namespace != "" {
		secrets, sa := h.Extractor.PullSecrets(k, obj)
		var err error
		rc, clientKey, err = h.clientFor(ctx, req.Namespace, secrets, sa)
		if err != nil {
			log.Warn("pull credentials unavailable", "err", err)
			return deny("", fmt.Sprintf("%s %s: reading pull credentials: %v", k, req.Name, err))
		}
	}

	// Warm decisions (cached results, no registry request) run inline; the
	// rest in parallel, at most parallelImages at a time.
	decisions := make([]check.Decision, len(images))
	var pending []int
	for i, im := range images {
		if d, ok := h.Decider.DecideCached(ctx, rc, clientKey, snap, im.Image, target); ok {
			decisions[i] = d
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) == 1 {
		i := pending[0]
		decisions[i] = h.Decider.DecideWith(ctx, rc, clientKey, snap, images[i].Image, target)
	} else if len(pending) > 1 {
		sem := make(chan struct{}, parallelImages)
		var wg sync.WaitGroup
		for _, i := range pending {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				decisions[i] = h.Decider.DecideWith(ctx, rc, clientKey, snap, images[i].Image, target)
			})
		}
		wg.Wait()
	}

	resp := &admissionv1.AdmissionResponse{Allowed: true}
	var denials []string
	var patch []map[string]any
	for i, d := range decisions {
		im := images[i]
		name := im.Image
		if d.Digest != "" && !strings.Contains(name, "@") {
			name += " (" + d.Digest + ")"
		}
		for _, w := range d.Warnings {
			if !strings.Contains(w, im.Image) {
				w = name + ": " + w // as denials say it
			}
			resp.Warnings = append(resp.Warnings, im.Path+": "+w)
		}
		if !d.Allowed {
			for _, r := range d.Denials {
				denials = append(denials, fmt.Sprintf("%s: %s: %s", im.Path, name, r))
			}
			continue
		}
		if mutate && d.PinnedImage != "" && pinnable(im) {
			patch = append(patch, map[string]any{"op": "replace", "path": im.Pointer, "value": d.PinnedImage})
		}
	}
	if len(denials) > 0 {
		log.Info("denied", "reasons", denials)
		r := deny("", strings.Join(denials, "\n"))
		r.Warnings = resp.Warnings
		return r
	}
	if len(patch) > 0 {
		raw, err := json.Marshal(patch)
		if err != nil {
			return deny("", fmt.Sprintf("building the patch: %v", err))
		}
		pt := admissionv1.PatchTypeJSONPatch
		resp.Patch, resp.PatchType = raw, &pt
	}
	// Denials and warnings are logged; a plain allow only at debug level (the
	// decision metrics count every one).
	if len(resp.Warnings) > 0 {
		log.Info("allowed with warnings", "images", len(images), "warnings", resp.Warnings, "patched", len(patch))
	} else {
		log.Debug("allowed", "images", len(images), "patched", len(patch))
	}
	return resp
}

// isEphemeralContainers reports whether req is to the pods/ephemeralcontainers
// subresource, whose object is the whole Pod.
func isEphemeralContainers(req *request) bool {
	return req.Resource.Group == "" && req.Resource.Resource == "pods" && req.SubResource == "ephemeralcontainers"
}

// checkResource checks that request.resource is the resource of
// request.kind k, for the kinds and resources signet knows: a Pod is
// served as "pods", and pods/ephemeralcontainers carries a Pod. Other
// subresources carry other kinds (a Scale for deployments/scale) and are
// not compared; nor are kinds and resources signet knows neither of
// (declared with --image-field: their resources are not declared).
func checkResource(req *request, k workload.Kind) error {
	res := req.Resource
	name := res.Resource
	if req.SubResource != "" {
		name += "/" + req.SubResource
	}
	if res.Group != "" {
		name += "." + res.Group
	}
	pod := workload.Kind{Kind: "Pod"}
	if isEphemeralContainers(req) {
		if k != pod {
			return fmt.Errorf("request.kind %s does not match request.resource %s, which carries a Pod", k, name)
		}
		return nil
	}
	if req.SubResource != "" {
		if res.Resource == "" {
			return fmt.Errorf("request.resource names no resource for subresource %q", req.SubResource)
		}
		return nil
	}
	if want, ok := workload.Resource(k); ok && (res.Group != k.Group || res.Resource != want) {
		if res.Resource == "" {
			return fmt.Errorf("request.resource names no resource; request.kind %s is served as %s", k, want)
		}
		return fmt.Errorf("request.kind %s does not match request.resource %s", k, name)
	}
	if owner, ok := workload.KindOf(res.Group, res.Resource); ok && owner != k {
		return fmt.Errorf("request.kind %s does not match request.resource %s, which serves %s", k, name, owner)
	}
	return nil
}

// clientFor returns the registry client for the request's pull credentials
// (the default client when there are none) and the key of that set.
func (h *Handler) clientFor(ctx context.Context, namespace string, secrets []string, sa string) (*registry.Client, string, error) {
	data, err := h.Credentials.PullSecrets(ctx, namespace, secrets, sa)
	if err != nil {
		return nil, "", err
	}
	rc, key, err := h.Decider.Clients.For(data)
	if err != nil || rc == nil {
		return h.Decider.Registry, "", err
	}
	return rc, key, nil
}

func (h *Handler) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return 20 * time.Second
}

// ErrNotReady is returned by readiness checks before policies are loaded.
var ErrNotReady = errors.New("policies are not loaded yet")
