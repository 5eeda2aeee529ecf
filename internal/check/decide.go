package check

import (
	"context"

	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
)

// Decision is the decision for one image in one target, as admission and
// `signet policy test` report it.
type Decision struct {
	Image string `json:"image"`
	// Digest is the digest every result is bound to ("" if unresolved).
	Digest string `json:"digest,omitempty"`
	// Exempt says why the image was not checked (excluded namespace).
	Exempt string `json:"exempt,omitempty"`
	// Policies are the matching policies with their results.
	Policies []PolicyDecision `json:"policies"`
	Allowed  bool             `json:"allowed"`
	Denials  []string         `json:"denials,omitempty"`
	Warnings []string         `json:"warnings,omitempty"`
	// PinnedImage is the reference to admit instead, bound to the verified
	// digest, when a policy asks for pinning ("" otherwise).
	PinnedImage string `json:"pinnedImage,omitempty"`
}

// PolicyDecision is one matching policy's outcome.
type PolicyDecision struct {
	Policy string         `json:"policy"`
	Mode   string         `json:"mode"`
	Result *verify.Result `json:"result,omitempty"`
	// Error is why there is no result; Invalid says the policy itself is
	// invalid (rather than signet not being able to decide).
	Error   string `json:"error,omitempty"`
	Invalid bool   `json:"invalid,omitempty"`
}

// Decide checks one image (as written in the object) against every policy
// of the snapshot that governs it in the target: the reference is resolved
// once, the evidence fetched once for every policy, each policy verified,
// and the outcomes combined.
func Decide(ctx context.Context, rc *registry.Client, snap *policy.Snapshot, image string, t policy.Target) Decision {
	d := Decision{Image: image, Policies: []PolicyDecision{}}
	ref, err := reference.Parse(image)
	if err != nil {
		// An unparsable reference would not run; deny it plainly.
		d.Denials = []string{err.Error()}
		return d
	}
	if exempt, why := snap.Exempt(t); exempt {
		d.Allowed, d.Exempt = true, why
		d.Warnings = []string{image + ": " + why}
		return d
	}
	matched := snap.Match(ref, t)
	if len(matched) == 0 {
		v := snap.Combine(image, ref.Digest() != "", nil)
		d.Allowed, d.Denials, d.Warnings = v.Allowed, v.Denials, v.Warnings
		return d
	}

	opts := Options{}
	for _, p := range matched {
		opts.ExtraSources = append(opts.ExtraSources, p.Sources...)
		if p.Platforms() == "all" {
			opts.AllPlatforms = true
		}
	}
	var fetchErr error
	var img *Image
	needFetch := false
	for _, p := range matched {
		if p.Err == nil {
			needFetch = true
		}
	}
	if needFetch {
		img, fetchErr = Fetch(ctx, rc, ref, opts)
		if img != nil {
			d.Digest = img.Digest
		}
	}

	outcomes := make([]policy.Outcome, len(matched))
	for i, p := range matched {
		o := policy.Outcome{Policy: p}
		pd := PolicyDecision{Policy: p.Object.ID(), Mode: p.Mode()}
		switch {
		case p.Err != nil:
			o.Err = p.Err
			pd.Invalid = true
		case fetchErr != nil:
			o.Err = fetchErr
		default:
			res := evaluate(img, p.Verifier, p.Platforms() == "all")
			o.Result = &res
			pd.Result = &res
		}
		if o.Err != nil {
			pd.Error = o.Err.Error()
		}
		outcomes[i] = o
		d.Policies = append(d.Policies, pd)
	}
	v := snap.Combine(image, ref.Digest() != "", outcomes)
	d.Allowed, d.Denials, d.Warnings = v.Allowed, v.Denials, v.Warnings
	if v.Pin && img != nil && ref.Digest() == "" {
		if _, err := ref.WithDigest(img.Digest); err == nil {
			// Keep the spelling the user wrote: repo:tag becomes repo:tag@sha256:...
			d.PinnedImage = image + "@" + img.Digest
		}
	}
	return d
}
