package policy

import (
	"errors"
	"fmt"

	"github.com/signet-dev/signet/internal/verify"
)

// The verdict: how the results of the policies that govern one image make
// one decision. This is the only place where an image is allowed or denied;
// check.Decider.Decide gathers the outcomes and calls Combine, and the
// callers (admission, signet verify, signet policy test) only present it.

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
	// Policies says what each outcome made of the image, in the order of
	// the outcomes: the audit reports it per policy.
	Policies []PolicyVerdict
	// Unmatched is what --unmatched made of an image no ClusterImagePolicy
	// selects (EffectSkip when it allows it); its Effect is "" when one
	// does.
	Unmatched PolicyVerdict
}

// Effect is what one policy's outcome made of an image: the result the
// audit reports for it (the values are PolicyReport results).
type Effect string

const (
	// EffectPass: the policy passed.
	EffectPass Effect = "pass"
	// EffectFail: the policy refused the image and denies it.
	EffectFail Effect = "fail"
	// EffectWarn: the policy refused the image, and only warns (warn mode).
	EffectWarn Effect = "warn"
	// EffectError: signet could not decide; Denies and Warns say what the
	// policy's onError (or warn mode) made of that.
	EffectError Effect = "error"
	// EffectSkip: no policy governs the image and --unmatched allows it.
	EffectSkip Effect = "skip"
)

// PolicyVerdict is one policy's part in a Verdict.
type PolicyVerdict struct {
	Effect Effect `json:"effect"`
	// Reason is the denial or warning it gave, as admission words it
	// ("" when it passed).
	Reason string `json:"reason,omitempty"`
	// Denies says the image is denied because of it; Warns that it gave a
	// warning.
	Denies bool `json:"denies,omitempty"`
	Warns  bool `json:"warns,omitempty"`
}

// unmatchedReason says why an image no ClusterImagePolicy selects is
// unmatched, and what --unmatched made of it: Tanzu's "<image> did not
// match any image policies", then which setting admitted or denied it.
// When no ClusterImagePolicy exists at all it says so: every image is
// unmatched then, and --unmatched decides them all (under warn, "image
// policy enforcement was not applied", as Tanzu says without a policy).
// imagePolicies says whether ImagePolicies of the namespace selected it.
func (s *Snapshot) unmatchedReason(image string, imagePolicies bool) string {
	var msg string
	switch {
	case s.clusterPolicies == 0 && imagePolicies:
		msg = image + " did not match any ClusterImagePolicy: none exists (an ImagePolicy only adds requirements to the cluster's)"
	case s.clusterPolicies == 0:
		msg = image + " did not match any image policies: no ClusterImagePolicy exists"
		if s.config.Unmatched != ActionDeny {
			msg += ", so image policy enforcement was not applied"
		}
	case imagePolicies:
		msg = image + " did not match any ClusterImagePolicy (an ImagePolicy only adds requirements to the cluster's)"
	default:
		msg = image + " did not match any image policies"
	}
	switch s.config.Unmatched {
	case ActionAllow:
		return msg + "; admitted because signet runs with --unmatched=allow"
	case ActionWarn:
		return msg + "; admitted because signet runs with --unmatched=warn"
	default:
		return msg + "; unmatched images are denied (--unmatched=deny, the default)"
	}
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
		msg := s.unmatchedReason(image, len(outcomes) > 0)
		switch s.config.Unmatched {
		case ActionAllow:
			v.Unmatched = PolicyVerdict{Effect: EffectSkip, Reason: msg}
		case ActionWarn:
			v.Unmatched = PolicyVerdict{Effect: EffectWarn, Reason: msg, Warns: true}
			v.Warnings = append(v.Warnings, msg)
		default:
			v.Unmatched = PolicyVerdict{Effect: EffectFail, Reason: msg, Denies: true}
			v.Allowed = false
			v.Denials = append(v.Denials, msg)
		}
	}
	if len(outcomes) > 0 {
		v.Policies = make([]PolicyVerdict, len(outcomes))
	}
	deny := func(pv *PolicyVerdict, p *Policy, msg string) {
		if p.Mode() == ModeWarn {
			msg += " (policy in warn mode)"
			*pv = PolicyVerdict{Effect: EffectWarn, Reason: msg, Warns: true}
			v.Warnings = append(v.Warnings, msg)
			return
		}
		*pv = PolicyVerdict{Effect: EffectFail, Reason: msg, Denies: true}
		v.Allowed = false
		v.Denials = append(v.Denials, msg)
	}
	for i, o := range outcomes {
		pv := &v.Policies[i]
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
			deny(pv, p, fmt.Sprintf("%s cannot be enforced: %v", p.Object.ID(), invalid))
		case o.Err != nil:
			msg := fmt.Sprintf("%s: could not decide: %v", p.Object.ID(), o.Err)
			*pv = PolicyVerdict{Effect: EffectError, Reason: msg}
			switch {
			case p.Mode() == ModeWarn || p.OnError() == ActionWarn:
				pv.Warns = true
				v.Warnings = append(v.Warnings, msg)
			case p.OnError() == ActionAllow:
			default:
				pv.Denies = true
				v.Allowed = false
				v.Denials = append(v.Denials, msg)
				undecided++
			}
		case o.Result == nil || !o.Result.Verified:
			reason := "not verified"
			if o.Result != nil && o.Result.Err != nil {
				reason = o.Result.Err.Error()
			}
			deny(pv, p, reason)
		case p.Digest() == DigestRequire && !hasDigest:
			deny(pv, p, fmt.Sprintf("policy %s requires images by digest (name@sha256:...)", p.Object.Name))
		default:
			pv.Effect = EffectPass
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
