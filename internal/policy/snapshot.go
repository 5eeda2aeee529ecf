package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/verify"
)

// OptInLabel is the namespace label that opts a namespace in when
// Config.NamespaceOptIn is set (value "true").
const OptInLabel = "signet.dev/include"

// Config holds the cluster-wide settings.
type Config struct {
	// Unmatched is what happens to an image no policy selects: ActionDeny
	// (the default, also for ""), ActionWarn (admit with "<image> did not
	// match any image policies") or ActionAllow.
	Unmatched Action
	// ExcludedNamespaces are never enforced (signet's own, kube-system, ...).
	ExcludedNamespaces []string
	// NamespaceOptIn enforces only namespaces labelled signet.dev/include=true;
	// otherwise every namespace not excluded is enforced.
	NamespaceOptIn bool
	// TrustVersion identifies the trust material the policies were compiled
	// with; cached verification results are keyed by it.
	TrustVersion string
}

// Validate checks the settings.
func (c Config) Validate() error {
	if _, err := ParseAction(string(c.Unmatched)); err != nil {
		return fmt.Errorf("unmatched images: %w", err)
	}
	return nil
}

// Snapshot is an immutable set of compiled policies with their index. Build a
// new one on every change; readers never lock.
type Snapshot struct {
	config   Config
	policies []*Policy
	index    *index
	excluded map[string]bool
	hosts    map[string]bool
}

// NewSnapshot indexes compiled policies.
func NewSnapshot(policies []*Policy, cfg Config) (*Snapshot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Unmatched == "" {
		cfg.Unmatched = ActionDeny
	}
	s := &Snapshot{config: cfg, policies: policies, index: newIndex(), excluded: map[string]bool{}}
	for _, ns := range cfg.ExcludedNamespaces {
		s.excluded[ns] = true
	}
	for i, p := range policies {
		for _, pat := range p.patterns {
			s.index.add(pat, i)
		}
	}
	s.hosts = literalHosts(policies, s.index)
	return s, nil
}

// Policies returns every policy, valid or not.
func (s *Snapshot) Policies() []*Policy { return s.policies }

// Config returns the cluster-wide settings.
func (s *Snapshot) Config() Config { return s.config }

// Target is where an image is being admitted.
type Target struct {
	Namespace       string
	NamespaceLabels map[string]string
	// Kind is the admitted object's kind (Pod, Deployment, Provider, ...).
	Kind string
}

// Exempt reports whether images in the target's namespace are not enforced,
// and why.
func (s *Snapshot) Exempt(t Target) (bool, string) {
	if t.Namespace == "" {
		return false, ""
	}
	if s.excluded[t.Namespace] {
		return true, fmt.Sprintf("namespace %s is excluded from image policy enforcement", t.Namespace)
	}
	if s.config.NamespaceOptIn && t.NamespaceLabels[OptInLabel] != "true" {
		return true, fmt.Sprintf("namespace %s has not opted in (label %s=true)", t.Namespace, OptInLabel)
	}
	return false, ""
}

// Match returns the policies that govern ref in the target: cluster
// policies and the ImagePolicies of the target's namespace, whose images,
// namespace selector and kinds all select it. The result is sorted by
// policy ID.
func (s *Snapshot) Match(ref reference.Reference, t Target) []*Policy {
	out, _ := s.match(ref, t)
	return out
}

// match is Match, also returning the number of patterns it matched: only
// those of policies that apply to the target (an ImagePolicy of another
// namespace costs nothing), and none of a policy already selected.
func (s *Snapshot) match(ref reference.Reference, t Target) ([]*Policy, int) {
	host := ref.Registry()
	segs := strings.Split(ref.Repository(), "/")
	seen := map[int]bool{}
	var out []*Policy
	want := func(i int) bool {
		if seen[i] {
			return false
		}
		p := s.policies[i]
		if p.Object.Kind == KindImagePolicy && p.Object.Namespace != t.Namespace {
			return false
		}
		if p.selector != nil && !p.selector.matches(t.NamespaceLabels) {
			return false
		}
		return p.kinds == nil || t.Kind == "" || p.kinds[t.Kind]
	}
	tried := s.index.lookupFor(host, segs, want, func(i int) {
		seen[i] = true
		p := s.policies[i]
		// A policy that cannot be compiled governs all it selects: its
		// exclusions may be what is broken.
		if p.Err == nil && p.excluded(host, segs) {
			return
		}
		out = append(out, p)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Object.ID() < out[j].Object.ID() })
	return out, tried
}

// Outcome is what verifying one image against one policy gave.
type Outcome struct {
	Policy *Policy
	// Result is the verification result; nil when the evidence could not
	// be fetched or the policy is invalid. A Result whose Err is undecided
	// (an attestation's conditions stopped by the deadline or their
	// budget) counts as undecided, as Err does.
	Result *verify.Result
	// Err is why there is no result: the policy is invalid, or signet
	// could not decide (errors.Is(err, verify.ErrUndecided)).
	Err error
}

// Verdict is the combined decision for one image.
type Verdict struct {
	Allowed bool
	// Denials say why, one per failing policy.
	Denials []string
	// Warnings are for the user (warn mode, onError warn, unmatched warn).
	Warnings []string
	// Pin is true when a governing policy asks for the tag to be pinned to
	// the verified digest.
	Pin bool
	// Undecided is true when every denial is a could-not-decide one (a
	// policy whose onError is deny could not be decided): no policy refused
	// the image, and trying again may admit it.
	Undecided bool
}

// Combine applies the combination rules to the outcomes of every matching
// policy for image (as written; hasDigest says whether it named a digest):
// every policy must pass; warn mode and onError turn failures into warnings
// as each policy says. An image no ClusterImagePolicy selects is unmatched
// and follows Config.Unmatched, whatever ImagePolicies select it: an
// ImagePolicy only adds requirements (invariant 10), so a namespace's own
// policy cannot admit what the cluster's unmatched rule refuses.
func (s *Snapshot) Combine(image string, hasDigest bool, outcomes []Outcome) Verdict {
	v := Verdict{Allowed: true}
	undecided := 0 // denials because a policy could not be decided
	clusterMatched := false
	for _, o := range outcomes {
		clusterMatched = clusterMatched || o.Policy.Object.Kind != KindImagePolicy
	}
	if !clusterMatched {
		msg := image + " did not match any image policies"
		if len(outcomes) > 0 {
			msg = image + " did not match any ClusterImagePolicy (an ImagePolicy only adds requirements to the cluster's)"
		}
		switch s.config.Unmatched {
		case ActionAllow:
		case ActionWarn:
			v.Warnings = append(v.Warnings, msg)
		default:
			v.Allowed = false
			v.Denials = append(v.Denials, msg)
		}
	}
	deny := func(p *Policy, msg string) {
		if p.Mode() == ModeWarn {
			v.Warnings = append(v.Warnings, msg+" (policy in warn mode)")
			return
		}
		v.Allowed = false
		v.Denials = append(v.Denials, msg)
	}
	for _, o := range outcomes {
		p := o.Policy
		if o.Err == nil && o.Result != nil && !o.Result.Verified && errors.Is(o.Result.Err, verify.ErrUndecided) {
			// A result that could not be decided (an attestation's
			// conditions stopped by the deadline or their budget) follows
			// onError too.
			o.Err = o.Result.Err
		}
		var invalid *InvalidError
		switch {
		case errors.As(o.Err, &invalid) || p.Err != nil:
			if invalid == nil {
				invalid = p.Err
			}
			deny(p, fmt.Sprintf("%s cannot be enforced: %v", p.Object.ID(), invalid))
		case o.Err != nil:
			msg := fmt.Sprintf("%s: could not decide: %v", p.Object.ID(), o.Err)
			switch {
			case p.Mode() == ModeWarn || p.OnError() == ActionWarn:
				v.Warnings = append(v.Warnings, msg)
			case p.OnError() == ActionAllow:
			default:
				v.Allowed = false
				v.Denials = append(v.Denials, msg)
				undecided++
			}
		case o.Result == nil || !o.Result.Verified:
			reason := "not verified"
			if o.Result != nil && o.Result.Err != nil {
				reason = o.Result.Err.Error()
			}
			deny(p, reason)
		case p.Digest() == DigestRequire && !hasDigest:
			deny(p, fmt.Sprintf("policy %s requires images by digest (name@sha256:...)", p.Object.Name))
		default:
			if p.Digest() == DigestPin {
				v.Pin = true
			}
		}
	}
	if !v.Allowed {
		v.Pin = false
		v.Undecided = undecided == len(v.Denials)
	}
	return v
}
