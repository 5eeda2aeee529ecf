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
