package verify

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
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
		res.Err = denied("policy %s: %q is not a sha256 digest", c.name, req.Digest)
		return res
	}

	var cands []candidate
	var malformed []Failure
	for _, ev := range req.Evidence {
		cand, err := toCandidate(ev)
		if err != nil {
			malformed = append(malformed, Failure{Source: ev.Source(), Reason: err.Error()})
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
			signers[i] = append(signers[i], s.Signer)
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

func (c *Compiled) denial(res Result) error {
	var parts []string
	passed := 0
	for _, ar := range res.Authorities {
		if ar.Passed {
			passed++
			continue
		}
		parts = append(parts, fmt.Sprintf("authority %s: %s", ar.Name, ar.Reason))
	}
	if passed > 0 {
		parts = append(parts, fmt.Sprintf("%d of %d required authorities passed with distinct signers", min(passed, distinctSignersOf(res)), c.threshold))
	}
	return denied("denied by policy %s: %s", c.name, strings.Join(parts, "; "))
}

func distinctSignersOf(res Result) int {
	signers := make([][]string, len(res.Authorities))
	for i, ar := range res.Authorities {
		for _, s := range ar.Signatures {
			signers[i] = append(signers[i], s.Signer)
		}
	}
	return distinctSigners(signers)
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
		} else if ar.Reason == "" {
			ar.Reason = "static authority denies every image"
		}
		return ar, nil
	}
	if len(a.attestations) > 0 {
		return c.verifyAttestations(ctx, a, req, digest, cands, malformed, spent)
	}

	seen := map[string]bool{}
	tried := 0
	ar.Failures = append(ar.Failures, malformed...)
	for _, cand := range cands {
		if !cand.isSignature() || !a.readsFrom(req, cand) {
			continue
		}
		tried++
		sig, err := c.verifyCandidate(a, req, digest, cand)
		if err != nil {
			ar.Failures = append(ar.Failures, Failure{Source: cand.ev.Source(), Reason: err.Error()})
			continue
		}
		if !seen[sig.Signer] {
			seen[sig.Signer] = true
			ar.Signatures = append(ar.Signatures, sig)
		}
	}
	ar.Passed = len(ar.Signatures) > 0
	if !ar.Passed {
		ar.Reason = failureReason("signature", tried, ar.Failures, a)
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

// failureReason summarizes why no candidate passed.
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

// verifyCandidate runs the one verification path: sigstore-go on the bundle
// with the authority's trust, then the identity and the binding to the digest.
func (c *Compiled) verifyCandidate(a *compiledAuthority, req Request, digest []byte, cand candidate) (sig Signature, err error) {
	defer func() {
		// sigstore-go and the protobuf accessors must not take the process
		// down on hostile input; a panic is a failed candidate.
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed evidence: %v", r)
		}
	}()
	// A policy reads its artifact: build one per verifier.
	policy := func() sgverify.PolicyBuilder {
		artifact := sgverify.WithArtifactDigest("sha256", digest)
		if cand.payload != nil {
			artifact = sgverify.WithArtifact(bytes.NewReader(cand.payload))
		}
		identity := sgverify.WithKey()
		if a.Keyless != nil {
			identity = sgverify.WithoutIdentitiesUnsafe()
		}
		return sgverify.NewPolicy(artifact, identity)
	}

	var (
		vr     *sgverify.VerificationResult
		key    *PublicKey
		errs   []string
		reason error
	)
	for _, kv := range a.verifiers {
		vr, reason = kv.v.Verify(cand.bundle, policy())
		if reason == nil {
			key = kv.key
			break
		}
		if msg := cleanSigstoreError(reason.Error()); !slices.Contains(errs, msg) {
			errs = append(errs, msg)
		}
	}
	if vr == nil {
		return sig, errors.New(strings.Join(errs, "; "))
	}

	sig = Signature{
		Source:   cand.ev.Source(),
		Format:   cand.ev.Kind.String(),
		Artifact: cand.ev.Manifest,
	}
	switch {
	case key != nil:
		sig.Signer = "key " + key.Fingerprint
		sig.KeyFingerprint = key.Fingerprint
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
			return sig, fmt.Errorf("certificate identity (issuer %s, subject %s) does not match %s", cs.Issuer, cs.SubjectAlternativeName, a.describe())
		}
		sig.Issuer, sig.Subject = cs.Issuer, cs.SubjectAlternativeName
		sig.Signer = fmt.Sprintf("identity %s %s", cs.Issuer, cs.SubjectAlternativeName)
	default:
		return sig, errors.New("verified, but neither by a trusted key nor a certificate")
	}
	for _, ts := range vr.VerifiedTimestamps {
		sig.Timestamps = append(sig.Timestamps, Timestamp{Kind: ts.Type, URI: ts.URI, Time: ts.Timestamp.UTC()})
	}
	if cand.rfc3161 != nil {
		ts, err := verifyEnvelopeTimestamp(a, cand)
		if err != nil {
			return sig, err
		}
		if ts != nil {
			sig.Timestamps = append(sig.Timestamps, *ts)
		}
	}
	if !a.InsecureIgnoreTlog {
		if entries, err := cand.bundle.TlogEntries(); err == nil && len(entries) > 0 {
			idx := entries[0].LogIndex()
			sig.LogIndex = &idx
		}
	}

	// Bind the payload to the digest being verified.
	var signedRef string
	if cand.payload != nil {
		ss, err := parseSimpleSigning(cand.payload)
		if err != nil {
			return sig, err
		}
		if ss.Critical.Image.DockerManifestDigest != req.Digest {
			return sig, fmt.Errorf("signature is for %s, not %s (copied from another image?)", ss.Critical.Image.DockerManifestDigest, req.Digest)
		}
		signedRef = ss.Critical.Identity.DockerReference
	} else {
		// sigstore-go checked that a subject carries the digest.
		if vr.Statement == nil {
			return sig, errors.New("DSSE envelope holds no in-toto statement")
		}
		sig.PredicateType = vr.Statement.GetPredicateType()
		if cand.isSignature() && sig.PredicateType != CosignSignPredicateType {
			return sig, fmt.Errorf("statement has predicate type %q, not an image signature", sig.PredicateType)
		}
		for _, s := range vr.Statement.GetSubject() {
			if s.GetDigest()["sha256"] == hex.EncodeToString(digest) {
				signedRef = s.GetName()
				break
			}
		}
	}
	if err := checkSignedIdentity(c.signedIdentity, req.Image, signedRef); err != nil {
		return sig, err
	}
	return sig, nil
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
				return nil, fmt.Errorf("RFC 3161 timestamp %s is outside the certificate's validity (%s to %s)",
					ts.Time.UTC().Format(time.RFC3339), cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
			}
		}
		return &Timestamp{Kind: "TimestampAuthority", URI: ts.URI, Time: ts.Time.UTC()}, nil
	}
	return nil, fmt.Errorf("RFC 3161 timestamp of the attestation does not verify with a trusted timestamp authority: %s", strings.Join(errs, "; "))
}

// Messages of sigstore-go v1.3.0 (and rekor-tiles) that cleanSigstoreError rewrites.
const (
	// No RFC 3161 timestamp verified and no log entry with an integrated
	// time (Rekor v2 entries have none); sigstore-go appends the timestamp
	// errors after "; error: ", or "%!w(<nil>)" when there were none.
	sgNoObserverTime = "threshold not met for verified signed & log entry integrated timestamps: 0 < "
	// A Rekor v2 inclusion proof that does not hash to the checkpoint's
	// root, followed by both roots as decimal byte lists.
	sgInclusionRoot = "verifying inclusion: calculated root"
	// No log entry verified: sigstore-go skips entries of logs the trusted
	// root does not hold and entries whose SET does not verify.
	sgNoLogEntry = "not enough verified log entries from transparency log: 0 < "
)

// ExplainTransparencyError rewrites sigstore-go's messages about the
// transparency log and the time of signing, which name thresholds and byte
// values, into their cause; other messages are returned unchanged.
func ExplainTransparencyError(s string) string {
	if _, after, ok := strings.Cut(s, sgNoObserverTime); ok {
		msg := "no verified time of signing: the signature has neither a transparency log entry with an integrated time (a Rekor v1 SET) nor an RFC 3161 timestamp from a trusted timestamp authority (Rekor v2 entries require one)"
		if _, cause, ok := strings.Cut(after, "; error: "); ok && cause != "" && !strings.Contains(cause, "%!w(<nil>)") {
			msg += "; the timestamp did not verify: " + strings.ReplaceAll(cause, "\n", "; ")
		}
		return msg
	}
	if strings.Contains(s, sgInclusionRoot) {
		return "transparency log inclusion proof does not lead to the root hash of the signed checkpoint (the proof or checkpoint was altered, or the entry was logged for another signature, key or artifact)"
	}
	if strings.Contains(s, sgNoLogEntry) {
		return s + " (no entry of a transparency log in the trusted root verified: there is none, the log is not in the trusted root, or the entry's SET is signed by another key)"
	}
	return s
}

// cleanSigstoreError shortens one of sigstore-go's nested messages to its
// cause.
func cleanSigstoreError(s string) string {
	if e := ExplainTransparencyError(s); e != s {
		return e
	}
	s = strings.ReplaceAll(s, "failed to verify signature: ", "")
	if strings.Contains(s, "crypto/rsa: verification error") || strings.Contains(s, "invalid signature when validating ASN.1 encoded signature") || strings.Contains(s, "ed25519: invalid signature") || strings.Contains(s, "could not verify message") || strings.Contains(s, "accepted signatures do not match threshold") {
		return "signature does not verify with the trusted key (wrong key or tampered payload)"
	}
	if strings.Contains(s, "does not match any digest in statement") || strings.Contains(s, "does not match digests in statement") {
		return "signed statement is for another digest (copied from another image?)"
	}
	return s
}
