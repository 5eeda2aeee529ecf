package verify

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/transparency-dev/merkle/proof"
)

// sigstorePolicy is the sigstore-go policy the authority verifies cand
// with: the artifact is the signed payload of a legacy signature, or the
// digest being verified, which a DSSE statement's subject must carry.
func sigstorePolicy(a *compiledAuthority, cand candidate, digest []byte) sgverify.PolicyBuilder {
	artifact := sgverify.WithArtifactDigest("sha256", digest)
	if cand.payload != nil {
		artifact = sgverify.WithArtifact(bytes.NewReader(cand.payload))
	}
	return sgverify.NewPolicy(artifact, identityPolicy(a))
}

func identityPolicy(a *compiledAuthority) sgverify.PolicyOption {
	if a.Keyless != nil {
		// signet matches the certificate's identity itself (anchored
		// regular expressions, any of several identities).
		return sgverify.WithoutIdentitiesUnsafe()
	}
	return sgverify.WithKey()
}

// rejection says why no verifier of the authority accepted cand: for each
// verifier, the step of the verification that fails (see failedStep); one
// reason per distinct message, joined.
func rejection(a *compiledAuthority, digest []byte, cand candidate, failed []keyedVerifier, errs []error) *Denial {
	var ds []*Denial
	seen := map[string]bool{}
	for i, kv := range failed {
		d := failedStep(a, kv, digest, cand, errs[i])
		if !seen[d.Reason] {
			seen[d.Reason] = true
			ds = append(ds, d)
		}
	}
	if len(ds) == 1 {
		return ds[0]
	}
	// With several keys, those that did not sign say so; the kind is the
	// failure of a key that did, when one did.
	k := ErrBadSignature
	reasons := make([]string, len(ds))
	for i, d := range ds {
		reasons[i] = d.Reason
		if errors.Is(k, ErrBadSignature) {
			k = d.Kind
		}
	}
	return &Denial{Kind: k, Reason: strings.Join(reasons, "; "), Causes: ds}
}

// failedStep finds which step of sigstore-go's verification of cand failed
// (verifyErr is what kv's Verify returned), by running the steps on their
// own, in the order sigstore-go does: the transparency log entry, the time
// of signing, then the certificate and the signature over the artifact.
// A key authority's signature is checked first: the trusted key is also
// what the log entry is compared with, so another key would otherwise be
// reported as a log entry that does not match.
//
// It runs only for a candidate that failed, so passing costs nothing more.
// The reasons say the cause in signet's words where sigstore-go's name
// thresholds or byte values; otherwise they are sigstore-go's.
func failedStep(a *compiledAuthority, kv keyedVerifier, digest []byte, cand candidate, verifyErr error) *Denial {
	b := cand.bundle
	vc, err := b.VerificationContent()
	if err != nil {
		return deny(ErrMalformed, "%v", verifyErr)
	}
	keyless := kv.key == nil
	// unbound checks the signature without the binding of a DSSE
	// statement's subject to the digest (checked below); it never passes
	// a candidate.
	unbound := sgverify.NewPolicy(sgverify.WithoutArtifactUnsafe(), identityPolicy(a))
	if cand.payload != nil {
		unbound = sigstorePolicy(a, cand, digest)
	}

	if !keyless && vc.Certificate() == nil {
		if _, err := kv.sigOnly.Verify(b, unbound); err != nil {
			return deny(ErrBadSignature, "signature does not verify with the trusted key (wrong key or tampered payload)")
		}
	}
	logTimes, err := kv.v.VerifyTransparencyLogInclusion(b)
	if err != nil {
		return tlogDenial(cand, kv.tm, err, verifyErr)
	}
	if _, err := kv.v.VerifyObserverTimestamps(b, logTimes); err != nil {
		return timestampDenial(cand, kv.tm)
	}
	if cand.payload == nil {
		if _, err := kv.v.Verify(b, unbound); err == nil {
			// All but the artifact verifies: the statement's subject.
			if !statementNames(cand, digest) {
				return deny(ErrDigestMismatch, "signed statement is for another digest (copied from another image?)")
			}
			return deny(ErrMalformed, "%v", verifyErr)
		}
	}
	if !keyless {
		return deny(ErrBadSignature, "%v", verifyErr)
	}
	if vc.Certificate() == nil {
		return deny(ErrUntrustedCertificate, "%v", verifyErr)
	}
	if signatureVerifies(cand, kv.tm) != nil {
		return deny(ErrBadSignature, "signature does not verify with the key of its certificate (the payload or the signature was altered)")
	}
	// The signature verifies with the certificate's key: the certificate
	// is not trusted (chain, validity at the time of signing, SCT).
	return deny(ErrUntrustedCertificate, "%v", verifyErr)
}

// signatureVerifies checks the signature alone with the key of the
// certificate (or the trusted key): over the payload of a message
// signature, over the envelope of a DSSE statement.
func signatureVerifies(cand candidate, tm root.TrustedMaterial) error {
	sc, err := cand.bundle.SignatureContent()
	if err != nil {
		return err
	}
	vc, err := cand.bundle.VerificationContent()
	if err != nil {
		return err
	}
	if cand.payload != nil {
		return sgverify.VerifySignatureWithArtifacts(sc, vc, tm, []io.Reader{bytes.NewReader(cand.payload)})
	}
	return sgverify.VerifySignature(sc, vc, tm)
}

// statementNames reports whether cand's DSSE statement has a subject with
// the sha256 digest.
func statementNames(cand candidate, digest []byte) bool {
	sc, err := cand.bundle.SignatureContent()
	if err != nil || sc.EnvelopeContent() == nil {
		return false
	}
	st, err := sc.EnvelopeContent().Statement()
	if err != nil {
		return false
	}
	want := hex.EncodeToString(digest)
	for _, s := range st.GetSubject() {
		if s.GetDigest()["sha256"] == want {
			return true
		}
	}
	return false
}

// Reasons for failures of the transparency log step and the time of
// signing, in signet's words.
const (
	reasonInclusionRoot = "transparency log inclusion proof does not lead to the root hash of the signed checkpoint (the proof or checkpoint was altered, or the entry was logged for another signature, key or artifact)"
	reasonNoLogEntry    = "no entry of a transparency log in the trusted root verified: there is none, the log is not in the trusted root, or the entry's SET is signed by another key"
	reasonNoSigningTime = "no verified time of signing: the signature has neither a transparency log entry with an integrated time (a Rekor v1 SET) nor an RFC 3161 timestamp from a trusted timestamp authority (Rekor v2 entries require one)"
)

// tlogDenial says why the transparency log step failed with err
// (verifyErr: the whole verification's error).
func tlogDenial(cand candidate, tm root.TrustedMaterial, err, verifyErr error) *Denial {
	var mismatch proof.RootMismatchError
	switch {
	case errors.As(err, &mismatch):
		return deny(ErrTransparencyLog, reasonInclusionRoot)
	case noLogEntryVerified(cand, tm):
		return deny(ErrTransparencyLog, "%v (%s)", verifyErr, reasonNoLogEntry)
	}
	return deny(ErrTransparencyLog, "%v", verifyErr)
}

// noLogEntryVerified reports whether the log step failed for want of a
// verified entry: with a threshold of none, every entry either verifies or
// is skipped (not from a log of the trust root, or its SET does not
// verify), so no other check failed.
func noLogEntryVerified(cand candidate, tm root.TrustedMaterial) bool {
	_, err := sgverify.VerifyTlogEntry(cand.bundle, tm, 0, false)
	return err == nil
}

// timestampDenial says why no time of signing verified: the RFC 3161
// timestamps that did not verify, and why.
func timestampDenial(cand candidate, tm root.TrustedMaterial) *Denial {
	_, errs, err := sgverify.VerifySignedTimestamp(cand.bundle, tm)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return deny(ErrTimestamp, reasonNoSigningTime)
	}
	return deny(ErrTimestamp, "%s; the timestamp did not verify: %s", reasonNoSigningTime, strings.ReplaceAll(errors.Join(errs...).Error(), "\n", "; "))
}

// Messages of sigstore-go v1.3.0 (and rekor-tiles) that
// ExplainTransparencyError rewrites. signet's own verification does not
// read them (it finds the failing step, see failedStep); only callers
// that hold nothing but sigstore-go's message (signet verify-bundle) do.
// TestSigstoreWording pins them: an upgrade that changes them fails it.
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
// values, into their cause; other messages are returned unchanged. It
// reads sigstore-go v1.3.0's wording: use it only where nothing but the
// message is at hand.
func ExplainTransparencyError(s string) string {
	if _, after, ok := strings.Cut(s, sgNoObserverTime); ok {
		msg := reasonNoSigningTime
		if _, cause, ok := strings.Cut(after, "; error: "); ok && cause != "" && !strings.Contains(cause, "%!w(<nil>)") {
			msg += "; the timestamp did not verify: " + strings.ReplaceAll(cause, "\n", "; ")
		}
		return msg
	}
	if strings.Contains(s, sgInclusionRoot) {
		return reasonInclusionRoot
	}
	if strings.Contains(s, sgNoLogEntry) {
		return s + " (" + reasonNoLogEntry + ")"
	}
	return s
}
