package verify

import (
	"encoding/json"
	"time"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
)

// Request is one image digest and the evidence fetched for it.
type Request struct {
	// Image is the reference being verified, as written by the user (used by
	// the signed-identity check and in messages).
	Image reference.Reference
	// Digest is the digest every signature must be bound to ("sha256:<hex>").
	Digest string
	// Evidence is every candidate signature and attestation found for Digest.
	Evidence []registry.Evidence
	// ImageRepository is the image's own repository. When set, each
	// authority considers only evidence from its SignatureRepository, or
	// from this repository when it has none.
	ImageRepository *registry.Repository
}

// Result is the outcome of verifying one digest against one policy.
type Result struct {
	Policy   string `json:"policy"`
	Image    string `json:"image"`
	Digest   string `json:"digest"`
	Verified bool   `json:"verified"`
	// Threshold is how many authorities had to pass with distinct signers.
	Threshold   int               `json:"threshold"`
	Authorities []AuthorityResult `json:"authorities"`
	// Err is nil when Verified; else a Denial (errors.Is(err, ErrDenied)),
	// or an Undecided (errors.Is(err, ErrUndecided)) when an authority
	// could not be decided (see AuthorityResult.Undecided) and could have
	// made up the threshold.
	Err error `json:"-"`
}

// AuthorityResult says whether one authority passed and why.
type AuthorityResult struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	// Reason is why the authority failed, or a static authority's message.
	Reason string `json:"reason,omitempty"`
	// Undecided says that the authority could not be decided: the
	// decision's deadline, or the budget of the verification's
	// conditions (CELBudget), ended the evaluation of an attestation's
	// conditions before a statement met them. Reason says which.
	Undecided bool `json:"undecided,omitempty"`
	// Signatures are the verified signatures (or attestations), one per
	// distinct signer.
	Signatures []Signature `json:"signatures,omitempty"`
	// Failures say why each candidate that was tried failed.
	Failures []Failure `json:"failures,omitempty"`
	// Err is why the authority failed, nil when it passed: a *Denial
	// (errors.Is(err, ErrDenied) and its kinds, e.g. ErrNoSignature), or an
	// *Undecided when Undecided is set.
	Err error `json:"-"`
}

// Signature describes a verified signature or attestation.
type Signature struct {
	// Source is where it was found: format, repository, manifest, layer.
	Source string `json:"source"`
	// Format is "legacy signature", "legacy attestation", "sigstore bundle"
	// or "notary signature".
	Format string `json:"format"`
	// Artifact is the digest of the manifest holding it; for
	// Compiled.VerifyArtifact, the artifact's digest.
	Artifact string `json:"artifact"`
	// Signer is the key fingerprint or the certificate identity.
	Signer         string `json:"signer"`
	KeyFingerprint string `json:"keyFingerprint,omitempty"`
	Issuer         string `json:"issuer,omitempty"`
	Subject        string `json:"subject,omitempty"`
	PredicateType  string `json:"predicateType,omitempty"`
	// LogIndex is the transparency log index, when verified against a log.
	LogIndex *int64 `json:"logIndex,omitempty"`
	// Timestamps are the verified times of signing (log or TSA).
	Timestamps []Timestamp `json:"timestamps,omitempty"`
	// Notes are checks that failed without failing the signature (a
	// Notary verification level that only logs them).
	Notes []string `json:"notes,omitempty"`
}

// Timestamp is one verified time of signing.
type Timestamp struct {
	Kind string    `json:"kind"`
	URI  string    `json:"uri,omitempty"`
	Time time.Time `json:"time"`
}

// Failure is why one candidate did not satisfy an authority.
type Failure struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
	// Err is the failure as an error: a *Denial of one kind (e.g.
	// errors.Is(err, ErrIdentityMismatch)), or an *Undecided when the
	// candidate's conditions could not be evaluated. Reason is its text.
	Err error `json:"-"`
}

// failure is the Failure of the candidate at source.
func failure(source string, err error) Failure {
	return Failure{Source: source, Reason: err.Error(), Err: err}
}

// MarshalJSON adds the error text and the codes of its kinds (see Codes).
func (r Result) MarshalJSON() ([]byte, error) {
	type plain Result
	var reason string
	if r.Err != nil {
		reason = r.Err.Error()
	}
	return json.Marshal(struct {
		plain
		Reason string   `json:"reason,omitempty"`
		Codes  []string `json:"codes,omitempty"`
	}{plain(r), reason, Codes(r.Err)})
}

// MarshalJSON adds the codes of the kinds of Err (see Codes).
func (a AuthorityResult) MarshalJSON() ([]byte, error) {
	type plain AuthorityResult
	return json.Marshal(struct {
		plain
		Codes []string `json:"codes,omitempty"`
	}{plain(a), Codes(a.Err)})
}

// MarshalJSON adds the code of the kind of Err (see Codes).
func (f Failure) MarshalJSON() ([]byte, error) {
	type plain Failure
	return json.Marshal(struct {
		plain
		Code string `json:"code,omitempty"`
	}{plain(f), code(f.Err)})
}
