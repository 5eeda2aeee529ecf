package check

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/signet-dev/signet/internal/flight"
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
	// Undecided says that the image is denied only because signet could
	// not decide (a policy's onError is deny), not because a policy refused
	// it: trying again may decide otherwise.
	Undecided bool `json:"undecided,omitempty"`
	// Unmatched is set when no ClusterImagePolicy selects the image: what
	// --unmatched made of it.
	Unmatched *policy.PolicyVerdict `json:"unmatched,omitempty"`
	// PinnedImage is the reference to admit instead, bound to the verified
	// digest, when a policy asks for pinning ("" otherwise).
	PinnedImage string `json:"pinnedImage,omitempty"`
}

// PolicyDecision is one matching policy's outcome.
type PolicyDecision struct {
	Policy string         `json:"policy"`
	Mode   policy.Mode    `json:"mode"`
	Result *verify.Result `json:"result,omitempty"`
	// Error is why there is no result; Invalid says the policy itself is
	// invalid (rather than signet not being able to decide).
	Error   string `json:"error,omitempty"`
	Invalid bool   `json:"invalid,omitempty"`
	// Err is Error as an error, to match kinds (verify.ErrUndecided,
	// registry.ErrRateLimited, ...).
	Err error `json:"-"`
	// Effect is what this policy made of the image (pass, fail, warn,
	// error), and Reason its denial or warning in admission's words.
	Effect policy.Effect `json:"effect"`
	Reason string        `json:"reason,omitempty"`
	// Denies says the image is denied because of this policy; Warns that
	// admission warns because of it.
	Denies bool `json:"denies,omitempty"`
	Warns  bool `json:"warns,omitempty"`
}

// Decider is the one way signet decides images, whoever asks (admission,
// signet verify, signet policy test): Decide. It keeps a cache of verified
// facts (Cache: nil for none) and single-flight: concurrent requests for one
// image share one resolution and one verification. The zero value has no
// cache and no registry credentials of Secrets; it is safe for concurrent
// use.
type Decider struct {
	Registry *registry.Client
	Cache    *Cache
	// Clients makes registry clients for Secret credentials: the admitted
	// object's pull secrets, and policies' source.signaturePullSecrets
	// (nil: policies with signature pull secrets cannot be decided).
	Clients *Clients
	// ResolutionWindow is how long a tag's resolution is shared by the
	// decisions that start after it completed (a burst of admissions of one
	// tag makes one request, not one per late arrival). Each decision still
	// resolves its tag once and is bound to the digest computed from the
	// fetched bytes; the mutating webhook pins that digest. 0 means
	// DefaultResolutionWindow; negative shares only in-flight resolutions.
	ResolutionWindow time.Duration
	group            flight.Group
	resolvedMu       sync.Mutex
	resolved         map[string]resolution
	parsedMu         sync.RWMutex
	parsed           map[string]reference.Reference
}

// Request asks for the decision on a set of images: the images of one
// object (as written in it), or those named on the command line.
type Request struct {
	// Snapshot holds the policies (and their configuration) to decide with.
	Snapshot *policy.Snapshot
	// Target is where the images would run.
	Target policy.Target
	Images []string
	// Sources are the pull credentials of the request, in order of
	// precedence: the object's imagePullSecrets, its service account's,
	// then those marked Fallback (signet's fallback service account's).
	// The pull secrets of the policies matching an image are tried after
	// the sources that are not Fallback and before those that are.
	// Decider.Clients makes the registry clients for them; none at all:
	// the Decider's own Registry client.
	Sources []registry.CredentialSource
}

// maxAttempts bounds the credentials tried for an image's registry: a
// registry refusing one (401, 403) is asked with the next one for it.
const maxAttempts = 8

// ownCredentials names, in reasons, what a registry is asked with after
// every pull secret naming it was refused.
//
//nolint:gosec // G101: a message naming where credentials come from, no credential.
const ownCredentials = "signet's own (cloud providers, Docker config) or none"

// Decide decides every image of req, in req.Images' order: each reference
// is resolved once, its evidence fetched once for every policy that governs
// it in the target, each policy verified, and the outcomes combined into the
// verdict (policy.Snapshot.Combine). Results come from the cache when they
// are there; a decision that needs the registry reads it with the request's
// credentials, at most parallelImages images at a time.
//
// The error is an undecided error (errors.Is(err, verify.ErrUndecided))
// when the request's pull credentials cannot be used; nothing is decided
// then.
func (dc *Decider) Decide(ctx context.Context, req Request) ([]Decision, error) {
	creds := newCredentials(req.Sources, nil)
	if creds.key != "" {
		if _, err := dc.Clients.keychain(creds.data, creds.key); err != nil {
			return nil, verify.AsUndecided(fmt.Errorf("reading pull credentials: %w", creds.explain(err)))
		}
	}
	// Warm decisions (cached results, no registry request) run inline; the
	// rest in parallel.
	decisions := make([]Decision, len(req.Images))
	var pending []int
	for i, image := range req.Images {
		if d, ok := dc.decide(ctx, &creds, req.Snapshot, image, req.Target, cachedOnly); ok {
			decisions[i] = d
			continue
		}
		pending = append(pending, i)
	}
	if len(pending) == 0 {
		return decisions, nil
	}
	decideOne := func(i int) {
		decisions[i], _ = dc.decide(ctx, &creds, req.Snapshot, req.Images[i], req.Target, withRegistry)
	}
	if len(pending) == 1 {
		decideOne(pending[0])
		return decisions, nil
	}
	sem := make(chan struct{}, parallelImages)
	var wg sync.WaitGroup
	for _, i := range pending {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			decideOne(i)
		})
	}
	wg.Wait()
	return decisions, nil
}

// parallelImages bounds how many images of one request are decided at
// once: a pod of 20 images waits for two rounds of registry round trips,
// not three (each image makes a few requests of its own, 4 at most).
const parallelImages = 16

// reach says whether a decision may read the registry.
type reach bool

const (
	// cachedOnly: decide only if the digest is known (given, or resolved
	// within the ResolutionWindow) and every result is cached.
	cachedOnly   reach = false
	withRegistry reach = true
)

// errNotCached: a cachedOnly decision needs the registry.
var errNotCached = errors.New("not cached")

// decide decides one image with the request's credentials and those of
// the policies matching it (so that concurrent requests share work, and
// cached results, only when they use the same ones; see Cache). A registry
// refusing a credential (401, 403) is asked again with the next one for
// it, at most maxAttempts in all. Under cachedOnly it reports false when
// the decision needs the registry.
func (dc *Decider) decide(ctx context.Context, req *credentials, snap *policy.Snapshot, image string, t policy.Target, r reach) (Decision, bool) {
	d := Decision{Image: image, Policies: []PolicyDecision{}}
	ref, err := dc.parse(image)
	if err != nil {
		// An unparsable reference would not run; deny it plainly.
		d.Denials = []string{err.Error()}
		return d, true
	}
	if exempt, why := snap.Exempt(t); exempt {
		d.Allowed, d.Exempt = true, why
		d.Warnings = []string{image + ": " + why}
		return d, true
	}
	matched := snap.Match(ref, t)
	if len(matched) == 0 {
		d.setVerdict(snap.Combine(image, ref.Digest() != "", nil))
		return d, true
	}

	creds := req
	for _, p := range matched {
		if len(p.PullSecrets) > 0 && p.Err == nil {
			c := newCredentials(req.sources, matched)
			creds = &c
			break
		}
	}
	results, digest, fetchErr := dc.verifyWith(ctx, creds, snap, ref, matched, r)
	if errors.Is(fetchErr, errNotCached) {
		return Decision{}, false
	}
	d.Digest = digest
	outcomes := make([]policy.Outcome, len(matched))
	undecided := false // a policy has no result: fetchErr
	for i, p := range matched {
		o := policy.Outcome{Policy: p}
		pd := PolicyDecision{Policy: p.Object.ID(), Mode: p.Mode()}
		switch {
		case p.Err != nil:
			o.Err = p.Err
			pd.Invalid = true
		case results[i] != nil:
			o.Result = results[i]
			pd.Result = results[i]
		default:
			o.Err = fetchErr
			undecided = true
		}
		if o.Err != nil {
			pd.Err, pd.Error = o.Err, o.Err.Error()
		}
		outcomes[i] = o
		d.Policies = append(d.Policies, pd)
	}
	v := snap.Combine(image, ref.Digest() != "", outcomes)
	d.setVerdict(v)
	switch {
	case v.Pin && digest != "" && ref.Digest() == "":
		if _, err := ref.WithDigest(digest); err == nil {
			// Keep the spelling the user wrote: repo:tag becomes repo:tag@sha256:...
			d.PinnedImage = image + "@" + digest
		}
	case v.Pin && fetchErr != nil && !undecided:
		// Static policies admitted the tag; only its pin needed the
		// registry, which did not answer.
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s is admitted by static policies but not pinned to a digest: %v", image, fetchErr))
	}
	return d, true
}

func (d *Decision) setVerdict(v policy.Verdict) {
	d.Allowed, d.Denials, d.Warnings, d.Undecided = v.Allowed, v.Denials, v.Warnings, v.Undecided
	for i, pv := range v.Policies {
		p := &d.Policies[i]
		p.Effect, p.Reason, p.Denies, p.Warns = pv.Effect, pv.Reason, pv.Denies, pv.Warns
	}
	if v.Unmatched.Effect != "" {
		d.Unmatched = &v.Unmatched
	}
}

// verifyWith is verify with the credentials of creds, trying the next
// credential for the image's registry while the registry refuses one.
func (dc *Decider) verifyWith(ctx context.Context, creds *credentials, snap *policy.Snapshot, ref reference.Reference, matched []*policy.Policy, r reach) ([]*verify.Result, string, error) {
	if creds.key == "" {
		results, digest, err := dc.verify(ctx, dc.Registry, "", "", snap, ref, matched, r)
		if refused(err) {
			// No source names a credential for any registry: say so, as
			// below for one without a credential for this one (signet's
			// own, if it has any for the host, were used).
			note := "no pull secret names " + ref.Registry()
			if p := creds.problems(); p != "" {
				note += "; " + p
			}
			err = fmt.Errorf("%w (%s)", err, note)
		}
		return results, digest, err
	}
	host := ref.Registry()
	kc, err := dc.Clients.keychain(creds.data, creds.key)
	if err != nil {
		return make([]*verify.Result, len(matched)), "", verify.AsUndecided(fmt.Errorf("reading pull credentials: %w", creds.explain(err)))
	}
	// Each Secret credential for host in order, then (when a Secret named
	// host) one attempt without them: signet's own credentials for host
	// (cloud providers, Docker config) or none, as the kubelet pulls
	// anonymously when every pull secret fails.
	count := kc.Count(host)
	attempts := min(max(count, 1), maxAttempts)
	own := count > 0 && count < maxAttempts
	if own {
		attempts++
	}
	var (
		results  []*verify.Result
		digest   string
		fetchErr error
	)
	// Warm (cachedOnly), a tag resolved with a later credential is found
	// under that credential's attempt; cached results are kept under the
	// whole set (creds.key) whichever credential found them.
	for a := range attempts {
		rc, err := dc.Clients.attempt(creds.data, creds.key, host, a)
		if err != nil {
			return make([]*verify.Result, len(matched)), "", verify.AsUndecided(fmt.Errorf("reading pull credentials: %w", err))
		}
		key := creds.key
		if a > 0 {
			key = attemptKey(creds.key, host, a)
		}
		results, digest, fetchErr = dc.verify(ctx, rc, key, creds.key, snap, ref, matched, r)
		if !refused(fetchErr) && !errors.Is(fetchErr, errNotCached) {
			return results, digest, fetchErr
		}
	}
	if errors.Is(fetchErr, errNotCached) {
		return results, digest, fetchErr
	}
	alts := kc.Alternatives(host) // by attempt, the credential's index in creds.data
	var notes []string
	if len(alts) > 0 {
		tried := creds.names(alts[:min(len(alts), attempts)])
		if own {
			tried += ", then " + ownCredentials
		}
		notes = append(notes, fmt.Sprintf("credentials tried for %s: %s", host, tried))
	} else {
		notes = append(notes, "no pull secret names "+host)
	}
	if p := creds.problems(); p != "" {
		notes = append(notes, p)
	}
	return results, digest, fmt.Errorf("%w (%s)", fetchErr, strings.Join(notes, "; "))
}

// refused says the registry refused the credential (401, 403).
func refused(err error) bool {
	return errors.Is(err, registry.ErrUnauthorized) || errors.Is(err, registry.ErrForbidden)
}

// verify returns, for each valid matched policy, its result for the image
// (from the cache or fresh), and the digest they are bound to. A nil result
// means signet could not decide; err says why. clientKey names the
// credentials of rc (requests share work only when they use the same
// ones), credsKey the whole set of credentials the decision may use (what
// cached results are kept under: see Cache).
func (dc *Decider) verify(ctx context.Context, rc *registry.Client, clientKey, credsKey string, snap *policy.Snapshot, ref reference.Reference, matched []*policy.Policy, r reach) ([]*verify.Result, string, error) {
	results := make([]*verify.Result, len(matched))
	needsEvidence, pins := false, false
	for i, p := range matched {
		switch {
		case p.Err != nil:
		case p.Verifier.StaticOnly():
			// Static authorities decide alone: their verdict never
			// depends on the registry, whether or not it answers.
			r := p.Verifier.Verify(ctx, verify.Request{Image: ref, Digest: ref.Digest()})
			results[i] = &r
			pins = pins || (r.Verified && p.Digest() == policy.DigestPin)
		default:
			needsEvidence = true
		}
	}
	if !needsEvidence && (!pins || ref.Digest() != "") {
		return results, ref.Digest(), nil
	}
	trustVersion := snap.Config().TrustVersion

	// The digest: given, or resolved once (resolutions of one reference in
	// flight or within the resolution window share a request; verified
	// facts are cached by digest only).
	// Only static policies: the digest is wanted for the pin alone, and a
	// failed resolution leaves the tag unpinned (err says why) without
	// changing their verdict.
	var manifest *registry.Manifest
	digest := ref.Digest()
	if digest == "" {
		m, err := dc.resolveShared(ctx, rc, clientKey+"\x00"+ref.String(), ref, r)
		if err != nil {
			return results, "", err
		}
		manifest, digest = &m, m.Digest
	}
	if !needsEvidence {
		return results, digest, nil
	}

	var missing []int
	subject := &subjects{ref: ref}
	keyOf := func(p *policy.Policy) cacheKey {
		return cacheKey{digest: digest, subject: subject.of(p.Verifier), policy: p.Hash, trust: trustVersion, creds: credsKey}
	}
	for i, p := range matched {
		if p.Err != nil || results[i] != nil {
			continue
		}
		if r, ok := dc.Cache.get(keyOf(p)); ok {
			// The cache keeps facts about the digest; the result names
			// the reference this decision is about.
			r.Image = ref.String()
			results[i] = &r
			continue
		}
		missing = append(missing, i)
	}
	if len(missing) == 0 {
		return results, digest, nil
	}
	if r == cachedOnly {
		return results, digest, errNotCached
	}

	// One fetch and verification for every missing policy, shared by
	// concurrent requests for the same digest and policies.
	// The key holds what the results depend on (see Cache): the whole
	// reference when a policy compares the signed identity exactly, since
	// the shared evaluation is of this request's reference.
	flightSubject := ref.Name()
	for _, i := range missing {
		if matched[i].Verifier.BindsReference() {
			flightSubject = ref.String()
			break
		}
	}
	key := "verify\x00" + clientKey + "\x00" + flightSubject + "@" + digest + "\x00" + trustVersion
	for _, i := range missing {
		key += "\x00" + matched[i].Hash
	}
	v, err := dc.group.Do(ctx, key, func() (any, error) {
		out := make([]verify.Result, len(missing))
		// The shared tier (other replicas' results), only here: a warm
		// (cachedOnly) decision never waits for a round trip to it.
		var todo, at []int // indexes in matched still to verify; their places in out
		keys := make([]cacheKey, len(missing))
		for j, i := range missing {
			keys[j] = keyOf(matched[i])
		}
		shared := dc.Cache.fromShared(ctx, keys)
		for j, i := range missing {
			if shared != nil && shared[j] != nil {
				out[j] = *shared[j]
				continue
			}
			todo, at = append(todo, i), append(at, j)
		}
		if len(todo) == 0 {
			return out, nil
		}
		fresh, err := dc.fetchAndEvaluate(ctx, rc, ref, manifest, digest, matched, todo)
		if err != nil {
			return nil, err
		}
		for n, i := range todo {
			out[at[n]] = fresh[n]
			dc.Cache.store(ctx, keyOf(matched[i]), fresh[n])
		}
		return out, nil
	})
	if err != nil {
		return results, digest, waitUndecided(ctx, err, "verifying "+ref.Name()+"@"+digest)
	}
	for j, i := range missing {
		r := v.([]verify.Result)[j]
		r.Image = ref.String() // shared with requests that may spell it differently
		results[i] = &r
	}
	return results, digest, nil
}

// waitUndecided returns the error of shared work (what, e.g. "resolving
// REF"), except that ending the wait for it because ctx ended (another
// caller started it, and its context lets it run longer) is an undecided
// outcome of kind verify.ErrDeadline.
func waitUndecided(ctx context.Context, err error, what string) error {
	if ctx.Err() == nil || errors.Is(err, verify.ErrUndecided) {
		return err
	}
	return &verify.Undecided{Kind: verify.ErrDeadline, Err: fmt.Errorf("%s: %w", what, err)}
}

// fetchAndEvaluate fetches the evidence of the image (its manifest when
// resolved already, else its digest) once for the policies matched[i], i in
// todo, and verifies each: the results in todo's order.
func (dc *Decider) fetchAndEvaluate(ctx context.Context, rc *registry.Client, ref reference.Reference, manifest *registry.Manifest, digest string, matched []*policy.Policy, todo []int) ([]verify.Result, error) {
	opts := Options{SkipAttestations: true}
	readsHome := false
	for _, i := range todo {
		p := matched[i]
		opts.ExtraSources = append(opts.ExtraSources, p.Sources...)
		if p.Verifier.NeedsAttestations() {
			opts.SkipAttestations = false
		}
		for repo, secrets := range p.SourceSecrets {
			src, _, err := dc.Clients.For(secrets)
			if err != nil {
				return nil, verify.AsUndecided(fmt.Errorf("policy %s: credentials for %s: %w", p.Object.ID(), repo, err))
			}
			if opts.SourceClients == nil {
				opts.SourceClients = map[registry.Repository]*registry.Client{}
			}
			opts.SourceClients[repo] = src
		}
		if p.Platforms() == policy.PlatformsAll {
			opts.AllPlatforms = true
		}
		readsHome = readsHome || p.Verifier.ReadsImageRepository()
	}
	// Evidence in the image's own repository is read only for an
	// authority without a source of its own (signet verify
	// --signature-repository makes one with a source).
	if !readsHome {
		for i, src := range opts.ExtraSources {
			if src != nil && opts.SourceClients[*src] == nil {
				opts.SignatureRepository = src
				opts.ExtraSources = slices.Delete(slices.Clone(opts.ExtraSources), i, i+1)
				break
			}
		}
	}
	m := registry.Manifest{Digest: digest}
	if manifest != nil {
		m = *manifest
	} else if opts.AllPlatforms {
		// Platforms are listed in the index: fetch it (by digest,
		// checked against its bytes).
		fetched, err := resolve(ctx, rc, ref)
		if err != nil {
			return nil, err
		}
		m = fetched
	}
	// Stop fetching once every policy passes with what was found (a
	// legacy .sig found while the referrers are still being read), and
	// keep the results that said so.
	var early []verify.Result
	monotonic := true
	for _, i := range todo {
		monotonic = monotonic && matched[i].Verifier.Monotonic()
	}
	if monotonic {
		opts.Satisfied = func(img *Image) bool {
			out := make([]verify.Result, len(todo))
			for j, i := range todo {
				p := matched[i]
				if out[j] = evaluate(ctx, img, p.Verifier, p.Platforms() == policy.PlatformsAll); !out[j].Verified {
					return false
				}
			}
			early = out
			return true
		}
	}
	img, err := fetchEvidence(ctx, rc, ref, m, opts)
	if err != nil {
		return nil, err
	}
	out := early
	if out == nil {
		out = make([]verify.Result, len(todo))
		for j, i := range todo {
			p := matched[i]
			out[j] = evaluate(ctx, img, p.Verifier, p.Platforms() == policy.PlatformsAll)
		}
	}
	return out, nil
}
