package verify

import (
	"errors"
	"fmt"
)

var (
	// ErrDenied: the image does not meet the requirement (no signature, wrong
	// key or identity, payload for another digest, missing attestation, ...).
	ErrDenied = errors.New("denied")
	// ErrUndecided: signet could not find out (registry unreachable, no trust
	// root, limits exceeded, ...). What that means is the policy's choice.
	ErrUndecided = errors.New("could not decide")
)

// Kinds of denial: which check failed. A *Denial of a kind matches both
// the kind and ErrDenied with errors.Is, and so does every error wrapping
// it; a kind matches its family too (errors.Is(ErrNoSignature, ErrDenied)).
var (
	// ErrNoSignature: no signature was found for the authority, or none that
	// could be read (the denial's causes then say why each was unusable).
	ErrNoSignature error = newKind("NoSignature", "no signature found", ErrDenied)
	// ErrNoAttestation: no statement of an attestation's predicate type was
	// found for the authority.
	ErrNoAttestation error = newKind("NoAttestation", "no attestation found", ErrDenied)
	// ErrMalformed: evidence that is not a usable signature or statement (a
	// malformed bundle, annotation or payload, a message-signature bundle,
	// a statement that is not JSON), or a digest to verify that is not a
	// sha256 digest; for an artifact known only by its digest, a message
	// signature by an Ed25519 key (which signs the content itself).
	ErrMalformed error = newKind("MalformedEvidence", "malformed evidence", ErrDenied)
	// ErrBadSignature: the signature does not verify with the trusted key
	// (another key signed, or the payload was altered), or, keyless, with
	// the key of its certificate (the payload or signature was altered).
	ErrBadSignature error = newKind("BadSignature", "signature does not verify", ErrDenied)
	// ErrUntrustedCertificate: a keyless signature's certificate does not
	// chain to a trusted Fulcio CA at the time of signing, or has no
	// verified signed certificate timestamp, or there is no certificate.
	ErrUntrustedCertificate error = newKind("UntrustedCertificate", "certificate not trusted", ErrDenied)
	// ErrIdentityMismatch: a keyless signature's certificate names an
	// issuer and subject that none of the authority's identities accepts.
	ErrIdentityMismatch error = newKind("IdentityMismatch", "certificate identity does not match", ErrDenied)
	// ErrDigestMismatch: the signed payload or statement is for another
	// digest (a signature copied from another image), or a bundle given
	// to VerifyArtifact is for another artifact.
	ErrDigestMismatch error = newKind("DigestMismatch", "signed for another digest", ErrDenied)
	// ErrSignedIdentity: the reference the signer wrote does not name the
	// image as the policy's signedIdentity requires.
	ErrSignedIdentity error = newKind("SignedIdentityMismatch", "signed identity does not match", ErrDenied)
	// ErrConditionFailed: a verified statement does not meet an
	// attestation's conditions (a condition is false or fails, exceeds its
	// cost limit, or the statement exceeds the limits of evaluation).
	ErrConditionFailed error = newKind("ConditionFailed", "attestation conditions not met", ErrDenied)
	// ErrTransparencyLog: the transparency log entry does not verify: there
	// is none from a log of the trust root, its SET, inclusion proof or
	// checkpoint does not verify, it was logged for another signature, key
	// or artifact, or integrated while the certificate was not valid.
	ErrTransparencyLog error = newKind("TransparencyLog", "transparency log entry does not verify", ErrDenied)
	// ErrTimestamp: no verified time of signing (no log entry with an
	// integrated time and no RFC 3161 timestamp from a trusted authority),
	// or an RFC 3161 timestamp that does not verify or falls outside the
	// certificate's validity.
	ErrTimestamp error = newKind("Timestamp", "no verified time of signing", ErrDenied)
	// ErrStatic: a static authority denies every image.
	ErrStatic error = newKind("StaticDenial", "static authority denies", ErrDenied)
	// ErrThreshold: fewer authorities passed with distinct signers than the
	// policy's threshold (each authority that failed is a cause of its own).
	ErrThreshold error = newKind("Threshold", "threshold not met", ErrDenied)
)

// Kinds of could-not-decide outcomes. Registry failures are package
// registry's kinds (registry.ErrUnreachable, registry.ErrUnauthorized, ...),
// which the errors of package check wrap.
var (
	// ErrNoTrustRoot: an authority has no trust material to verify with.
	// verify.Compile's error matches it; package policy makes such a
	// policy invalid, which denies what it selects.
	ErrNoTrustRoot error = newKind("NoTrustRoot", "no trust root", ErrUndecided)
	// ErrBudget: the verification's conditions spent CELBudget before a
	// statement could be evaluated.
	ErrBudget error = newKind("ConditionBudget", "condition budget spent", ErrUndecided)
	// ErrDeadline: the decision's context ended (its deadline, or a
	// cancellation) before a statement's conditions were evaluated; the
	// error wraps the context's error too.
	ErrDeadline error = newKind("Deadline", "decision deadline reached", ErrUndecided)
)

// kinds lists every kind, in the order Codes reports them.
var kinds = []error{
	ErrNoSignature, ErrNoAttestation, ErrMalformed, ErrBadSignature, ErrUntrustedCertificate,
	ErrIdentityMismatch, ErrDigestMismatch, ErrSignedIdentity, ErrConditionFailed,
	ErrTransparencyLog, ErrTimestamp, ErrStatic, ErrThreshold,
	ErrNoTrustRoot, ErrBudget, ErrDeadline,
}

// kind is a class of outcomes under ErrDenied or ErrUndecided.
type kind struct {
	code   string // machine-readable, stable: the JSON "code"
	text   string
	family error
}

func newKind(code, text string, family error) *kind {
	return &kind{code: code, text: text, family: family}
}

func (k *kind) Error() string { return k.text }
func (k *kind) Unwrap() error { return k.family }

// Codes names the kinds err matches (errors.Is), in a fixed order: the
// machine-readable "code" of results printed as JSON, e.g.
// ["NoSignature", "MalformedEvidence"].
func Codes(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, e := range kinds {
		var k *kind
		if errors.Is(err, e) && errors.As(e, &k) {
			out = append(out, k.code)
		}
	}
	return out
}

// code is the code of err's own kind: the Kind of a *Denial or *Undecided
// it is or wraps, or else the first of Codes(err).
func code(err error) string {
	var d *Denial
	var u *Undecided
	var own error
	switch {
	case errors.As(err, &d) && d.Kind != nil:
		own = d.Kind
	case errors.As(err, &u) && u.Kind != nil:
		own = u.Kind
	}
	var k *kind
	if errors.As(own, &k) {
		return k.code
	}
	if codes := Codes(err); len(codes) > 0 {
		return codes[0]
	}
	return ""
}

// Denial is an ErrDenied with its reason. errors.Is matches ErrDenied, the
// denial's Kind and the kinds of its Causes: a policy denied because one
// signature names another identity and another is for another digest
// matches ErrIdentityMismatch and ErrDigestMismatch.
type Denial struct {
	// Kind is which check failed, one of the kinds under ErrDenied; nil
	// for a denial that only sums up its Causes.
	Kind error
	// Reason says why, for users.
	Reason string
	// Causes are the denials this one sums up: a policy's are its failed
	// authorities', an authority's are its candidates'.
	Causes []*Denial
}

func (e *Denial) Error() string { return e.Reason }
func (e *Denial) Is(target error) bool {
	if target == ErrDenied || (e.Kind != nil && target == e.Kind) {
		return true
	}
	for _, c := range e.Causes {
		if c.Is(target) {
			return true
		}
	}
	return false
}

// deny is a Denial of kind k.
func deny(k error, format string, args ...any) *Denial {
	return &Denial{Kind: k, Reason: fmt.Sprintf(format, args...)}
}

// Undecided wraps the cause of a could-not-decide outcome.
type Undecided struct {
	// Kind is what could not be found out (ErrBudget, ErrDeadline,
	// ErrNoTrustRoot, or a kind of another package such as
	// registry.ErrRateLimited); nil when Err says it or nothing does.
	Kind error
	Err  error
}

func (e *Undecided) Error() string { return e.Err.Error() }
func (e *Undecided) Unwrap() error { return e.Err }
func (e *Undecided) Is(target error) bool {
	return target == ErrUndecided || (e.Kind != nil && target == e.Kind)
}

// AsUndecided marks err as an ErrUndecided outcome.
func AsUndecided(err error) error {
	if err == nil || errors.Is(err, ErrUndecided) {
		return err
	}
	return &Undecided{Err: err}
}

// denials are the Denials among errs (undecided causes are no part of a
// denial).
func denials(errs ...error) []*Denial {
	var out []*Denial
	for _, err := range errs {
		var d *Denial
		if errors.As(err, &d) && !errors.Is(err, ErrUndecided) {
			out = append(out, d)
		}
	}
	return out
}
