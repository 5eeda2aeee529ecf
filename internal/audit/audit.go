// Package audit decides what already runs, the way admission decides what
// is about to: an object's images (as the runtime runs them) go through
// check.Decider.Decide, and each policy's part of the verdict becomes one
// result per (object, image, policy), in the words admission uses. It
// knows no Kubernetes client: package controller/audit feeds it objects
// from informers and writes what it returns as PolicyReports, and signet
// policy impact compares two snapshots with it.
//
//   - audit.go: subjects, results, Auditor.Evaluate;
//   - report.go: results → report parts, bounded in size and results;
//   - impact.go: what changes between two snapshots.
package audit

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/internal/workload"
)

// Object names an audited object.
type Object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Subject is an object to audit: its images as they run (see RunningImages)
// and what decides them like an admission of the object would.
type Subject struct {
	Object Object
	// Kind is the object's kind, as admission's policy.Target has it.
	Kind   workload.Kind
	Images []workload.Image
	// PullSecrets and ServiceAccount are the object's pull credentials.
	PullSecrets    []string
	ServiceAccount string
}

// Policy names in results that no policy object has.
const (
	// PolicyUnmatched: no ClusterImagePolicy selects the image; the
	// result is what --unmatched makes of it.
	PolicyUnmatched = "(unmatched)"
	// PolicyReference: the image reference cannot be parsed.
	PolicyReference = "(reference)"
	// PolicyCredentials: the object's pull credentials could not be read.
	PolicyCredentials = "(pull credentials)" //nolint:gosec // a name in reports, not a credential
)

// Result is one policy's result for one image of one object.
type Result struct {
	Object Object `json:"object"`
	// Path is the image's field path, Image as written in it, Digest what
	// was decided ("" when it could not be resolved).
	Path   string `json:"path"`
	Image  string `json:"image"`
	Digest string `json:"digest,omitempty"`
	// Policy is the policy's ID (Kind name, or Kind namespace/name), or
	// one of PolicyUnmatched, PolicyReference, PolicyCredentials.
	Policy string `json:"policy"`
	// Authorities name the authorities that passed (a pass) or failed.
	Authorities []string      `json:"authorities,omitempty"`
	Effect      policy.Effect `json:"result"`
	// Reason is the denial or warning admission gives for it.
	Reason string `json:"reason,omitempty"`
	// Admission is what admission does to the object because of this
	// result: "denied", "warned" or "allowed".
	Admission string `json:"admission"`
	// RateLimited says a registry answered 429 (the audit retries later).
	RateLimited bool `json:"-"`
}

// Namespaces reads what admission reads of the cluster for an object:
// namespace labels and pull credentials (package controller implements it).
type Namespaces interface {
	Labels(ctx context.Context, namespace string) (map[string]string, error)
	PullSecrets(ctx context.Context, namespace string, names []string, serviceAccount string) ([]registry.CredentialSource, error)
}

// Auditor evaluates subjects.
type Auditor struct {
	Decider *check.Decider
	// Namespaces, when set, supplies namespace labels and pull secrets.
	Namespaces Namespaces
	// Timeout bounds the decision of one subject (DefaultTimeout when 0).
	Timeout time.Duration
}

// DefaultTimeout bounds one subject's decision: longer than an admission's,
// since nobody waits on it, and bounded, since a stalled registry must not
// stall the scan.
const DefaultTimeout = time.Minute

// Evaluate decides s's images with the policies of snap and returns one
// result per (image, governing policy), in the order of s.Images. An object
// in a namespace the policies exempt has no results.
func (a *Auditor) Evaluate(ctx context.Context, snap *policy.Snapshot, s Subject) []Result {
	if len(s.Images) == 0 {
		return nil
	}
	timeout := a.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := check.Request{Snapshot: snap, Target: policy.Target{Namespace: s.Object.Namespace, Kind: s.Kind.Kind}}
	credentialsFailed := func(err error) []Result {
		out := make([]Result, len(s.Images))
		for i, im := range s.Images {
			out[i] = Result{Object: s.Object, Path: im.Path, Image: im.Image, Policy: PolicyCredentials, Effect: policy.EffectError,
				Reason: "could not decide: " + err.Error(), Admission: "denied"}
		}
		return out
	}
	if a.Namespaces != nil && s.Object.Namespace != "" {
		labels, err := a.Namespaces.Labels(ctx, s.Object.Namespace)
		if err != nil {
			return credentialsFailed(fmt.Errorf("reading the labels of namespace %s: %w", s.Object.Namespace, err))
		}
		req.Target.NamespaceLabels = labels
		if exempt, _ := snap.Exempt(req.Target); exempt {
			return nil
		}
		if a.Decider.Clients != nil {
			if req.Sources, err = a.Namespaces.PullSecrets(ctx, s.Object.Namespace, s.PullSecrets, s.ServiceAccount); err != nil {
				return credentialsFailed(fmt.Errorf("reading pull credentials: %w", err))
			}
		}
	}
	req.Images = make([]string, len(s.Images))
	for i, im := range s.Images {
		req.Images[i] = im.Image
	}
	decisions, err := a.Decider.Decide(ctx, req)
	if err != nil {
		return credentialsFailed(err)
	}
	var out []Result
	for i, d := range decisions {
		out = append(out, resultsOf(s.Object, s.Images[i], d)...)
	}
	return out
}

// resultsOf turns the decision on one image into its results.
func resultsOf(obj Object, im workload.Image, d check.Decision) []Result {
	if d.Exempt != "" {
		return nil
	}
	base := Result{Object: obj, Path: im.Path, Image: im.Image, Digest: d.Digest}
	var out []Result
	if d.Unmatched != nil {
		r := base
		r.Policy, r.Effect, r.Reason, r.Admission = PolicyUnmatched, d.Unmatched.Effect, d.Unmatched.Reason, admissionOf(d.Unmatched.Denies, d.Unmatched.Warns)
		out = append(out, r)
	}
	for _, pd := range d.Policies {
		r := base
		r.Policy, r.Effect, r.Reason = pd.Policy, pd.Effect, pd.Reason
		r.Admission = admissionOf(pd.Denies, pd.Warns)
		if pd.Result != nil {
			for _, a := range pd.Result.Authorities {
				if a.Passed == pd.Result.Verified {
					r.Authorities = append(r.Authorities, a.Name)
				}
			}
		}
		r.RateLimited = rateLimited(pd)
		out = append(out, r)
	}
	if len(out) == 0 && !d.Allowed {
		// The reference does not parse: admission denies it plainly.
		r := base
		r.Policy, r.Effect, r.Reason, r.Admission = PolicyReference, policy.EffectFail, strings.Join(d.Denials, "; "), "denied"
		out = append(out, r)
	}
	return out
}

func admissionOf(denies, warns bool) string {
	switch {
	case denies:
		return "denied"
	case warns:
		return "warned"
	}
	return "allowed"
}

func rateLimited(pd check.PolicyDecision) bool {
	if errors.Is(pd.Err, registry.ErrRateLimited) {
		return true
	}
	if pd.Result == nil {
		return false
	}
	for _, a := range pd.Result.Authorities {
		if a.Undecided && errors.Is(a.Err, registry.ErrRateLimited) {
			return true
		}
	}
	return errors.Is(pd.Result.Err, registry.ErrRateLimited) && errors.Is(pd.Result.Err, verify.ErrUndecided)
}

// Failed reports whether results deny their object (a fail, or an error
// whose onError denies): the object's verdict, for Events.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Admission == "denied" {
			return true
		}
	}
	return false
}
