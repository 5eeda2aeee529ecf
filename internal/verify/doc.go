// Package verify decides whether an image digest is signed and attested as an
// authority requires, from evidence already fetched (package registry) and
// trust material already loaded (package trust). It is pure: no network, no
// Kubernetes, no clock except the one passed in, no goroutines.
//
// One verification path: every storage format, legacy cosign .sig and .att
// layers as well as Sigstore bundles from OCI referrers, is converted into a
// Sigstore bundle and checked by sigstore-go with the same options: the key or
// the certificate chain, SCTs, the transparency log entry, timestamps. Then the
// payload is bound to the digest being verified (the simple-signing
// docker-manifest-digest, or the in-toto subject) and, for attestations, the
// predicate type and conditions are checked. A bundle for a file or blob
// (Compiled.VerifyArtifact, signet verify-bundle) goes through the same
// steps up to the signer; the binding is then to the artifact, and the
// steps of images alone are not run. Which of sigstore-go's checks a bundle
// goes through depends on the authority and on what the bundle carries (a
// log entry, an RFC 3161 timestamp), in one place for both.
//
// Attestation conditions (CEL) run over statements that a trusted signer
// made, which can be large: a statement is evaluated only within
// MaxStatementBytes, MaxStatementDepth and MaxStatementItems, each
// condition within CELCostLimit, all conditions of one verification within
// CELBudget, and every evaluation stops when the context given to
// Compiled.Verify ends (the decision's deadline). A statement left
// unevaluated by the deadline or the budget makes its authority undecided
// rather than passed or denied.
//
// Outcomes are values (Result): for every authority, the signature that
// passed or why each candidate failed. Errors come in two families, matched
// with errors.Is: ErrDenied (the policy is not met) and ErrUndecided (signet
// could not find out). Beneath them, kinds say which check failed
// (ErrNoSignature, ErrIdentityMismatch, ErrTransparencyLog, ...) or what
// could not be found out (ErrDeadline, ErrBudget, ErrNoTrustRoot); a
// policy's denial matches the kinds of every failure behind it, and each
// candidate's Failure carries its own. A failure of sigstore-go's
// verification is classified by the step that fails (the log entry, the
// time of signing, the signature, the certificate, the statement's
// subject), found by running the steps again for that candidate only,
// never by its wording. Absence is never acceptance: no evidence denies.
package verify
