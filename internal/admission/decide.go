package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/workload"
)

// decide answers one admission request: the request is checked, the object
// decoded into its images (package workload), the images decided (package
// check), and the decisions turned into the answer. Only the answer's shape
// is decided here: which image is allowed is check's, and the verdict
// policy.Snapshot.Combine's.
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
		return malformed(fmt.Errorf("request.operation %q is not CREATE, UPDATE, DELETE or CONNECT", req.Operation))
	}
	if req.Kind.Kind == "" {
		return malformed(errors.New("request.kind names no kind"))
	}
	wr := workload.Request{Kind: workload.Kind{Group: req.Kind.Group, Kind: req.Kind.Kind},
		Group: req.Resource.Group, Resource: req.Resource.Resource, SubResource: req.SubResource}
	if err := wr.Check(); err != nil {
		log.Warn("denied malformed request", "err", err)
		return malformed(err)
	}
	if !wr.ChangesImages() {
		return allow
	}
	obj, err := h.Extractor.Decode(wr.Kind, req.Kind.Version, req.Object)
	switch {
	case errors.Is(err, workload.ErrUnknownKind):
		// The webhook rules sent a kind signet does not know the image
		// fields of: say so where the user sees it rather than pass it
		// silently.
		log.Warn("allowed unchecked: signet does not know where this kind keeps images")
		allow.Warnings = []string{fmt.Sprintf("signet: %s is not a kind whose images signet knows; allowed without checking (declare its image fields with signet serve --image-field)", wr.Kind)}
		return allow
	case err != nil:
		log.Warn("denied malformed request", "err", err)
		return malformed(fmt.Errorf("%s %s: %w", wr.Kind, req.Name, err))
	}
	images := obj.Images
	if len(images) == 0 {
		return allow
	}
	if len(images) > maxImagesPerObject {
		return denied(fmt.Sprintf("%s %s has %d images, more than the %d signet checks in one object", wr.Kind, req.Name, len(images), maxImagesPerObject))
	}
	// Through pods/ephemeralcontainers a patch may add ephemeral
	// containers and nothing else: only those are pinned.
	pinnable := func(workload.Image) bool { return true }
	if mutate && wr.EphemeralContainers() {
		if pinnable, err = workload.AddedEphemeralContainers(req.Object, req.OldObject); err != nil {
			return malformed(err)
		}
	}
	snap := h.Snapshot()
	if snap == nil {
		return undecided("signet has not loaded its policies yet; try again")
	}

	ctx, cancel := context.WithTimeout(ctx, h.timeout())
	defer cancel()
	dreq := check.Request{Snapshot: snap, Target: policy.Target{Namespace: req.Namespace, Kind: wr.Kind.Kind}}
	if h.Namespaces != nil && req.Namespace != "" {
		labels, err := h.Namespaces.Labels(ctx, req.Namespace)
		if err != nil {
			log.Warn("namespace labels unavailable", "err", err)
			return undecided(fmt.Sprintf("could not read the labels of namespace %s: %v", req.Namespace, err))
		}
		dreq.Target.NamespaceLabels = labels
	}
	if h.Credentials != nil && h.Decider.Clients != nil && req.Namespace != "" {
		dreq.Sources, err = h.Credentials.PullSecrets(ctx, req.Namespace, obj.PullSecrets, obj.ServiceAccount)
		if err != nil {
			log.Warn("pull credentials unavailable", "err", err)
			return undecided(fmt.Sprintf("%s %s: reading pull credentials: %v", wr.Kind, req.Name, err))
		}
	}
	dreq.Images = make([]string, len(images))
	for i, im := range images {
		dreq.Images[i] = im.Image
	}
	decisions, err := h.Decider.Decide(ctx, dreq)
	if err != nil {
		log.Warn("pull credentials unusable", "err", err)
		return undecided(fmt.Sprintf("%s %s: %v", wr.Kind, req.Name, err))
	}
	if h.ObserveDecisions != nil {
		h.ObserveDecisions(decisions)
	}
	return h.answer(log, images, decisions, mutate, pinnable)
}

// answer turns the decisions on images into the response: denials name the
// field, the image (with the digest it was decided for) and why; warnings
// likewise; an allowed /mutate request gets a JSON patch pinning tags to
// their verified digests where pinnable says so.
func (h *Handler) answer(log requestLog, images []workload.Image, decisions []check.Decision, mutate bool, pinnable func(workload.Image) bool) *admissionv1.AdmissionResponse {
	resp := &admissionv1.AdmissionResponse{Allowed: true}
	var denials []string
	onlyUndecided := true
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
			onlyUndecided = onlyUndecided && d.Undecided
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
		log.Info("denied", "reasons", denials, "undecided", onlyUndecided)
		msg := strings.Join(denials, "\n")
		r := denied(msg)
		if onlyUndecided {
			r = undecided(msg)
		}
		r.Warnings = resp.Warnings
		return r
	}
	if len(patch) > 0 {
		raw, err := json.Marshal(patch)
		if err != nil {
			return errored(http.StatusInternalServerError, fmt.Sprintf("building the patch: %v", err))
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
