package verify

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
)

var timeZero time.Time

// StaticOnly reports whether every authority is static: such a policy needs
// no evidence and no digest.
func (c *Compiled) StaticOnly() bool {
	for _, a := range c.authorities {
		if a.Static == nil {
			return false
		}
	}
	return true
}

// BindsReference reports whether a result depends on the image reference as
// written (its tag as well as its repository and digest): the signed
// identity is compared exactly (matchExact, matchRepoDigestOrExact).
// Otherwise a result depends on the repository and the digest only.
func (c *Compiled) BindsReference() bool {
	return c.signedIdentity == MatchExact || c.signedIdentity == MatchRepoDigestOrExact
}

// NeedsAttestations reports whether an authority checks attestations: a
// policy without any needs no legacy .att evidence.
func (c *Compiled) NeedsAttestations() bool {
	for _, a := range c.authorities {
		if len(a.attestations) > 0 {
			return true
		}
	}
	return false
}

// Monotonic says whether more evidence can only help: a request that
// passes keeps passing when more signatures or attestations are added. It
// is false when an attestation requires every statement to meet its
// conditions (one more violating statement turns a pass into a denial).
// Fetchers may stop looking once a monotonic policy passes.
func (c *Compiled) Monotonic() bool {
	for _, a := range c.authorities {
		for _, at := range a.attestations {
			if at.All {
				return false
			}
		}
	}
	return true
}

// Verify decides whether req meets the policy. It never panics on hostile
// evidence and never returns Verified without a verified signature (or a
// static pass) from Threshold authorities with distinct signers.
//
// Verify does no I/O; ctx bounds the evaluation of attestation conditions,
// whose work depends on the signed statements: when ctx ends first, the
// authorities concerned are undecided, and so is the result unless the
// other authorities decide it.
func (c *Compiled) Verify(ctx context.Context, req Request) Result {
	res := Result{Policy: c.name, Image: req.Image.String(), Digest: req.Digest, Threshold: c.threshold}
	digestHex, ok := strings.CutPrefix(req.Digest, "sha256:")
	raw, err := hex.DecodeString(digestHex)
	if (!ok || err != nil || len(raw) != 32) && !(req.Digest == "" && c.StaticOnly()) {
		res.Err = deny(ErrMalformed, "policy %s: %q is not a sha256 digest", c.name, req.Digest)
		return res
	}

	var cands []candidate
	var malformed []Failure
	for _, ev := range req.Evidence {
		cand, err := toCandidate(ev)
		if err != nil {
			malformed = append(malformed, failure(ev.Source(), deny(ErrMalformed, "%v", err)))
			continue
		}
		cands = append(cands, cand)
	}

	signers := make([][]string, len(c.authorities))
	var spent uint64 // by conditions, against CELBudget
	undecided := 0
	var cause error // why the first undecided authority is
	for i, a := range c.authorities {
		ar, err := c.verifyAuthority(ctx, a, req, raw, cands, malformed, &spent)
		for _, s := range ar.Signatures {
			signers[i] = append(signers[i], signerID(s))
		}
		if err != nil {
			undecided++
			if cause == nil {
				cause = fmt.Errorf("authority %s: %w", ar.Name, err)
			}
		}
		res.Authorities = append(res.Authorities, ar)
	}

	passed := distinctSigners(signers)
	switch {
	case passed >= c.threshold:
		res.Verified = true
	case passed+undecided >= c.threshold:
		// The undecided authorities could make up the threshold.
		res.Err = AsUndecided(fmt.Errorf("policy %s: %w", c.name, cause))
	default:
		res.Err = c.denial(res)
	}
	return res
}

// denial sums up why res is denied: each failed authority is a cause, and
// the threshold is when some passed (ErrThreshold).
func (c *Compiled) denial(res Result) error {
	d := &Denial{}
	var parts []string
	passed := 0
	for _, ar := range res.Authorities {
		if ar.Passed {
			passed++
			continue
		}
		parts = append(parts, fmt.Sprintf("authority %s: %s", ar.Name, ar.Reason))
		d.Causes = append(d.Causes, denials(ar.Err)...)
	}
	if passed > 0 {
		d.Kind = ErrThreshold
		parts = append(parts, fmt.Sprintf("%d of %d required authorities passed with distinct signers", min(passed, distinctSignersOf(res)), c.threshold))
	}
	d.Reason = fmt.Sprintf("denied by policy %s: %s", c.name, strings.Join(parts, "; "))
	return d
}

func distinctSignersOf(res Result) int {
	signers := make([][]string, len(res.Authorities))
	for i, ar := range res.Authorities {
		for _, s := range ar.Signatures {
			signers[i] = append(signers[i], signerID(s))
		}
	}
	return distinctSigners(signers)
}

// signerID is who made s, for threshold: its key when known (a key signs
// as itself whether an authority trusts the key or a certificate for it,
// so one signature never counts twice), else its signer (a keyless
// identity).
func signerID(s Signature) string {
	if s.KeyFingerprint != "" {
		return "key " + s.KeyFingerprint
	}
	return s.Signer
}

// distinctSigners is the largest number of authorities that can each be
// given a different signer among those that verified for it (a bipartite
// matching): two authorities satisfied only by one key count once.
func distinctSigners(signers [][]string) int {
	owner := map[string]int{} // signer -> authority index
	var try func(a int, seen map[string]bool) bool
	try = func(a int, seen map[string]bool) bool {
		for _, s := range signers[a] {
			if seen[s] {
				continue
			}
			seen[s] = true
			if o, taken := owner[s]; !taken || try(o, seen) {
				owner[s] = a
				return true
			}
		}
		return false
	}
	n := 0
	for a := range signers {
		if try(a, map[string]bool{}) {
			n++
		}
	}
	return n
}

// verifyAuthority checks the candidates against one authority. malformed
// lists evidence that could not be read at all: it is reported with the
// authority's failures, so a denial says what was found and why it was
// unusable rather than "no signature found".
//
// The error is nil unless the authority is undecided (an Undecided saying
// why); the result then says so too. Conditions add their cost to spent.
func (c *Compiled) verifyAuthority(ctx context.Context, a *compiledAuthority, req Request, digest []byte, cands []candidate, malformed []Failure, spent *uint64) (AuthorityResult, error) {
	ar := AuthorityResult{Name: a.Name}
	if a.Static != nil {
		ar.Passed = a.Static.Pass
		ar.Reason = a.Static.Message
		if ar.Passed {
			ar.Signatures = []Signature{{Source: "static", Format: "static", Signer: "static:" + a.Name}}
			return ar, nil
		}
		if ar.Reason == "" {
			ar.Reason = "static authority denies every image"
		}
		ar.Err = deny(ErrStatic, "%s", ar.Reason)
		return ar, nil
	}
	if len(a.attestations) > 0 {
		return c.verifyAttestations(ctx, a, req, digest, cands, malformed, spent)
	}

	seen := map[string]bool{}
	tried := 0
	ar.Failures = append(ar.Failures, malformed...)
	for _, cand := range cands {
		if !cand.isSignature() || !a.readsFrom(req, cand) || isNotary(cand.ev) != (a.Notation != nil) {
			continue
		}
		tried++
		var sig Signature
		var err error
		if a.Notation != nil {
			sig, err = c.verifyNotation(ctx, a, req, cand)
		} else {
			sig, err = c.verifyCandidate(a, req, digest, cand)
		}
		if err != nil {
			ar.Failures = append(ar.Failures, failure(cand.ev.Source(), err))
			continue
		}
		if !seen[sig.Signer] {
			seen[sig.Signer] = true
			ar.Signatures = append(ar.Signatures, sig)
		}
	}
	ar.Passed = len(ar.Signatures) > 0
	if !ar.Passed {
		d := failureDenial("signature", ErrNoSignature, tried, ar.Failures, a)
		ar.Reason, ar.Err = d.Reason, d
	}
	return ar, nil
}

// readsFrom reports whether the authority takes evidence from where cand
// was found.
func (a *compiledAuthority) readsFrom(req Request, cand candidate) bool {
	if req.ImageRepository == nil {
		return true
	}
	want := req.ImageRepository
	if a.SignatureRepository != nil {
		want = a.SignatureRepository
	}
	return cand.ev.Repository == *want
}

// failureDenial sums up why no candidate passed: none (of kind none, e.g.
// ErrNoSignature) was found, or none usable, or each candidate tried
// failed. The failures are its causes.
func failureDenial(what string, none error, tried int, failures []Failure, a *compiledAuthority) *Denial {
	d := &Denial{Reason: failureReason(what, tried, failures, a)}
	if tried == 0 {
		d.Kind = none
	}
	for _, f := range failures {
		d.Causes = append(d.Causes, denials(f.Err)...)
	}
	return d
}

// failureReason says why no candidate passed.
func failureReason(what string, tried int, failures []Failure, a *compiledAuthority) string {
	if tried == 0 {
		if len(failures) > 0 {
			return fmt.Sprintf("no usable %s found (%s: %s)", what, failures[0].Source, failures[0].Reason)
		}
		return fmt.Sprintf("no %s found", what)
	}
	reasons := map[string]bool{}
	var uniq []string
	for _, f := range failures {
		if !reasons[f.Reason] {
			reasons[f.Reason] = true
			uniq = append(uniq, f.Reason)
		}
	}
	if len(uniq) > 3 {
		uniq = append(uniq[:3], "…")
	}
	s := "s"
	if tried == 1 {
		s = ""
	}
	return fmt.Sprintf("%d %s%s checked, none verified by %s: %s", tried, what, s, a.describe(), strings.Join(uniq, "; "))
}

// verifyCandidate runs the one verification path on image evidence: the
// steps every bundle goes through (verifyBundle), then those of images
// alone: the RFC 3161 timestamp of a legacy attestation, the binding of
// the payload to the digest, the predicate type of a signature statement,
// the signed identity. The error is a *Denial of the kind that says which
// check failed.
func (c *Compiled) verifyCandidate(a *compiledAuthority, req Request, digest []byte, cand candidate) (sig Signature, err error) {
	defer func() {
		// sigstore-go and the protobuf accessors must not take the process
		// down on hostile input; a panic is a failed candidate.
		if r := recover(); r != nil {
			err = deny(ErrMalformed, "malformed evidence: %v", r)
		}
	}()
	sig, vr, err := verifyBundle(a, cand, digest)
	if err != nil {
		return sig, err
	}
	sig.Source = cand.ev.Source()
	sig.Format = cand.ev.Kind.String()
	sig.Artifact = cand.ev.Manifest
	if cand.rfc3161 != nil {
		ts, err := verifyEnvelopeTimestamp(a, cand)
		if err != nil {
			return sig, err
		}
		if ts != nil {
			sig.Timestamps = append(sig.Timestamps, *ts)
		}
	}

	// Bind the payload to the digest being verified.
	var signedRef string
	if cand.payload != nil {
		ss, err := parseSimpleSigning(cand.payload)
		if err != nil {
			return sig, deny(ErrMalformed, "%v", err)
		}
		if ss.Critical.Image.DockerManifestDigest != req.Digest {
			return sig, deny(ErrDigestMismatch, "signature is for %s, not %s (copied from another image?)", ss.Critical.Image.DockerManifestDigest, req.Digest)
		}
		signedRef = ss.Critical.Identity.DockerReference
	} else {
		// sigstore-go checked that a subject carries the digest.
		if vr.Statement == nil {
			return sig, deny(ErrMalformed, "DSSE envelope holds no in-toto statement")
		}
		if cand.isSignature() && sig.PredicateType != CosignSignPredicateType {
			return sig, deny(ErrMalformed, "statement has predicate type %q, not an image signature", sig.PredicateType)
		}
		for _, s := range vr.Statement.GetSubject() {
			if s.GetDigest()["sha256"] == hex.EncodeToString(digest) {
				signedRef = s.GetName()
				break
			}
		}
	}
	if err := checkSignedIdentity(c.signedIdentity, req.Image, signedRef); err != nil {
		return sig, deny(ErrSignedIdentity, "%v", err)
	}
	return sig, nil
}

// verifyBundle runs the steps every candidate goes through, image evidence
// and artifacts alike: sigstore-go on the bundle with the authority's
// trust and the checks it requires of what the bundle carries (checksFor),
// over what the signature must be for (sigstorePolicy), each failure
// classified by its step (rejection); then the signer: one of the trusted
// keys, or a certificate whose identity the authority accepts. The
// Signature names the signer, the verified times, the log index and the
// predicate type of a DSSE statement; the error is a *Denial of the kind
// that says which check failed.
func verifyBundle(a *compiledAuthority, cand candidate, digest []byte) (sig Signature, vr *sgverify.VerificationResult, err error) {
	if len(a.Keys) > 0 {
		// A key decides, as cosign verify --key: the certificate a
		// signature may carry is neither trusted nor required.
		if cand, err = keyView(cand, a.InsecureIgnoreTlog); err != nil {
			return sig, nil, deny(ErrMalformed, "%v", err)
		}
	}
	s := shapeOf(cand.bundle)
	var (
		key    *PublicKey
		failed []keyedVerifier
		errs   []error
	)
	for _, kv := range a.verifiers {
		// A policy reads its artifact: build one per verifier.
		res, err := kv.v.of(s).Verify(cand.bundle, sigstorePolicy(a, cand, digest))
		if err == nil {
			vr, key = res, kv.key
			break
		}
		failed, errs = append(failed, kv), append(errs, err)
	}
	if vr == nil {
		return sig, nil, rejection(a, s, digest, cand, failed, errs)
	}

	switch {
	case key != nil:
		sig.Signer = "key " + key.Fingerprint
		sig.KeyFingerprint = key.Fingerprint
	case a.Certificate != nil:
		// sigstore-go verified the chain to a root of the authority; the
		// identity is the leaf's.
		vc, err := cand.bundle.VerificationContent()
		leaf := (*x509.Certificate)(nil)
		if err == nil {
			leaf = vc.Certificate()
		}
		if leaf == nil {
			return sig, nil, deny(ErrUntrustedCertificate, "signature carries no certificate: %s needs one", a.describe())
		}
		if !slices.ContainsFunc(a.certIDs, func(m certMatcher) bool { return m.matches(leaf) }) {
			return sig, nil, deny(ErrIdentityMismatch, "certificate (subject %s, %s) does not match %s", leaf.Subject, certSANs(leaf), a.describe())
		}
		sig.Subject = leaf.Subject.String()
		sig.Issuer = leaf.Issuer.String()
		sig.Signer = fmt.Sprintf("certificate %s issued by %s", sig.Subject, sig.Issuer)
		if k, err := NewPublicKey(leaf.PublicKey); err == nil {
			sig.KeyFingerprint = k.Fingerprint
		}
	case vr.Signature != nil && vr.Signature.Certificate != nil:
		cs := vr.Signature.Certificate
		matched := false
		for _, m := range a.identities {
			if m.matches(*cs) {
				matched = true
				break
			}
		}
		if !matched {
			return sig, nil, deny(ErrIdentityMismatch, "certificate identity (issuer %s, subject %s) does not match %s", cs.Issuer, cs.SubjectAlternativeName, a.describe())
		}
		sig.Issuer, sig.Subject = cs.Issuer, cs.SubjectAlternativeName
		sig.Signer = fmt.Sprintf("identity %s %s", cs.Issuer, cs.SubjectAlternativeName)
	default:
		return sig, nil, deny(ErrBadSignature, "verified, but neither by a trusted key nor a certificate")
	}
	for _, ts := range vr.VerifiedTimestamps {
		sig.Timestamps = append(sig.Timestamps, Timestamp{Kind: ts.Type, URI: ts.URI, Time: ts.Timestamp.UTC()})
	}
	if checksFor(&a.Authority, s).tlog {
		if entries, err := cand.bundle.TlogEntries(); err == nil && len(entries) > 0 {
			idx := entries[0].LogIndex()
			sig.LogIndex = &idx
		}
	}
	if vr.Statement != nil {
		sig.PredicateType = vr.Statement.GetPredicateType()
	}
	return sig, vr, nil
}

// verifyEnvelopeTimestamp verifies the RFC 3161 timestamp cosign puts on a
// legacy attestation, over the whole envelope, with the authority's
// timestamp authorities, and checks that the signing certificate was valid
// at the stamped time. Without trusted timestamp authorities the stamp is
// not evidence of anything and is ignored, as sigstore-go ignores a bundle's
// unverifiable timestamps when none are required.
func verifyEnvelopeTimestamp(a *compiledAuthority, cand candidate) (*Timestamp, error) {
	if a.TrustedMaterial == nil {
		return nil, nil
	}
	tsas := a.TrustedMaterial.TimestampingAuthorities()
	if len(tsas) == 0 {
		return nil, nil
	}
	var errs []string
	for _, tsa := range tsas {
		ts, err := tsa.Verify(cand.rfc3161, cand.ev.Content)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if vc, err := cand.bundle.VerificationContent(); err == nil {
			if cert := vc.Certificate(); cert != nil && (ts.Time.Before(cert.NotBefore) || ts.Time.After(cert.NotAfter)) {
				return nil, deny(ErrTimestamp, "RFC 3161 timestamp %s is outside the certificate's validity (%s to %s)",
					ts.Time.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		return &Timestamp{Kind: "TimestampAuthority", URI: ts.URI, Time: ts.Time.UTC()}, nil
	}
	return nil, deny(ErrTimestamp, "RFC 3161 timestamp of the attestation does not verify with a trusted timestamp authority: %s", strings.Join(errs, "; "))
}
