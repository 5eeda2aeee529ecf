package verify

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/transparency-dev/merkle/proof"
)

// shape is what a bundle carries that decides which of sigstore-go's
// checks it goes through (see checksFor).
type shape uint8

const (
	// logged: a transparency log entry (with an inclusion promise or proof).
	logged shape = 1 << iota
	// stamped: an RFC 3161 timestamp.
	stamped
	// promised: a log entry with an inclusion promise (a Rekor v1 SET),
	// which dates the signature with its integrated time.
	promised
	// shapes is the number of shapes.
	shapes = 8
)

func shapeOf(b *bundle.Bundle) shape {
	var s shape
	if b.HasInclusionPromise() || b.HasInclusionProof() {
		s |= logged
	}
	if b.HasInclusionPromise() {
		s |= promised
	}
	if len(b.GetVerificationMaterial().GetTimestampVerificationData().GetRfc3161Timestamps()) > 0 {
		s |= stamped
	}
	return s
}

// checks are the steps of sigstore-go's verification that a bundle goes
// through. Without a time of signing to verify (signedTime, observedTime),
// the signature is checked at the current time.
type checks struct {
	// tlog: a transparency log entry of a log of the trusted material
	// must verify.
	tlog bool
	// signedTime: an RFC 3161 timestamp of a timestamp authority of the
	// trusted material must verify; it dates the signature.
	signedTime bool
	// integratedTime (with signedTime): so does the integrated time of a
	// verified log entry with an inclusion promise.
	integratedTime bool
	// observedTime: the integrated time of a verified log entry (a Rekor
	// v1 SET) or an RFC 3161 timestamp must date the signature; a
	// timestamp that does not verify is ignored when the log's time
	// dates it.
	observedTime bool
	// sct: the certificate must carry a verified signed certificate
	// timestamp.
	sct bool
}

// checksFor is the one place that says which checks authority a requires
// of a bundle of shape s, for image evidence and artifacts alike (Verify,
// VerifyArtifact):
//
//   - keyless: the log entry, a time of signing observed by the log or a
//     timestamp authority, and an SCT unless InsecureIgnoreSCT, whatever
//     the bundle carries;
//   - a key: the log entry unless InsecureIgnoreTlog, and under
//     InsecureIgnoreTlog the entry a bundle carries all the same, as long
//     as there is TrustedMaterial to verify it with (a bundle that carries
//     a log entry that does not verify is denied). An RFC 3161 timestamp
//     the bundle carries must verify and dates the signature, with the
//     integrated time of a Rekor v1 entry; without a timestamp, a log
//     entry's integrated time dates it; with neither (a signature made
//     offline, InsecureIgnoreTlog) a key has no validity window to check
//     and the current time is used;
//   - a key without TrustedMaterial (only under InsecureIgnoreTlog): the
//     signature alone; log entries and timestamps cannot be verified and
//     are not looked at.
func checksFor(a *Authority, s shape) checks {
	if a.Keyless != nil {
		return checks{tlog: true, observedTime: true, sct: !a.InsecureIgnoreSCT}
	}
	if a.TrustedMaterial == nil {
		return checks{}
	}
	c := checks{tlog: s&logged != 0 || !a.InsecureIgnoreTlog}
	switch {
	case s&stamped != 0:
		c.signedTime = true
		c.integratedTime = c.tlog && s&promised != 0
	case c.tlog:
		c.observedTime = true
	}
	return c
}

// options are the sigstore-go verifier options that make the checks.
func (c checks) options() []sgverify.VerifierOption {
	var opts []sgverify.VerifierOption
	if c.tlog {
		opts = append(opts, sgverify.WithTransparencyLog(1))
	}
	switch {
	case c.signedTime:
		opts = append(opts, sgverify.WithSignedTimestamps(1))
		if c.integratedTime {
			opts = append(opts, sgverify.WithIntegratedTimestamps(1))
		}
	case c.observedTime:
		opts = append(opts, sgverify.WithObserverTimestamps(1))
	default:
		opts = append(opts, sgverify.WithCurrentTime())
	}
	if c.sct {
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1))
	}
	return opts
}

// sigstorePolicy is the sigstore-go policy the authority verifies cand
// with: the artifact is the signed payload of a legacy signature, the
// content of an artifact, or else the digest being verified, which a DSSE
// statement's subject (or an artifact's message signature) must carry.
func sigstorePolicy(a *compiledAuthority, cand candidate, digest []byte) sgverify.PolicyBuilder {
	return sgverify.NewPolicy(signedArtifact(cand, digest), identityPolicy(a))
}

func signedArtifact(cand candidate, digest []byte) sgverify.ArtifactPolicyOption {
	switch {
	case cand.payload != nil:
		return sgverify.WithArtifact(bytes.NewReader(cand.payload))
	case cand.artifact != nil && cand.artifact.content != nil:
		return sgverify.WithArtifact(cand.artifact.reader())
	}
	return sgverify.WithArtifactDigest("sha256", digest)
}

func identityPolicy(a *compiledAuthority) sgverify.PolicyOption {
	if a.Keyless != nil || a.Certificate != nil {
		// signet matches the certificate's identity itself (anchored
		// regular expressions, any of several identities).
		return sgverify.WithoutIdentitiesUnsafe()
	}
	return sgverify.WithKey()
}

// rejection says why no verifier of the authority accepted cand, a bundle
// of shape s: for each verifier, the step of the verification that fails
// (see failedStep); one reason per distinct message, joined.
func rejection(a *compiledAuthority, s shape, digest []byte, cand candidate, failed []keyedVerifier, errs []error) *Denial {
	var ds []*Denial
	seen := map[string]bool{}
	for i, kv := range failed {
		d := failedStep(a, kv, s, digest, cand, errs[i])
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

// failedStep finds which step of sigstore-go's verification of cand, a
// bundle of shape s, failed (verifyErr is what kv's Verify returned), by
// running the steps on their own, in the order sigstore-go does: the
// transparency log entry, the time of signing, then the certificate and
// the signature over the artifact. A key authority's signature is checked
// first: the trusted key is also what the log entry is compared with, so
// another key would otherwise be reported as a log entry that does not
// match. So is, for an artifact, the digest a message signature names.
//
// It runs only for a candidate that failed, so passing costs nothing more.
// The reasons say the cause in signet's words where sigstore-go's name
// thresholds or byte values; otherwise they are sigstore-go's.
func failedStep(a *compiledAuthority, kv keyedVerifier, s shape, digest []byte, cand candidate, verifyErr error) *Denial {
	b := cand.bundle
	v := kv.v.of(s)
	vc, err := b.VerificationContent()
	if err != nil {
		return deny(ErrMalformed, "%v", verifyErr)
	}
	keyless := kv.key == nil
	if cand.artifact != nil {
		if d := artifactDenial(cand, kv, vc.Certificate(), digest); d != nil {
			return d
		}
	}
	// unbound checks the signature without the binding of a DSSE
	// statement's subject to the digest (checked below); it never passes
	// a candidate. A message signature is checked over what it signs.
	message := b.GetMessageSignature() != nil
	unbound := sgverify.NewPolicy(sgverify.WithoutArtifactUnsafe(), identityPolicy(a))
	if message {
		unbound = sigstorePolicy(a, cand, digest)
	}

	if !keyless && vc.Certificate() == nil {
		sigOnly, err := kv.sigOnly()
		if err != nil {
			return deny(ErrMalformed, "%v", err)
		}
		if _, err := sigOnly.Verify(b, unbound); err != nil {
			return deny(ErrBadSignature, "signature does not verify with the trusted key (wrong key or tampered payload)")
		}
	}
	logTimes, err := v.VerifyTransparencyLogInclusion(b)
	if err != nil {
		if cand.droppedCert && entryNamesCertificate(b) {
			return deny(ErrTransparencyLog, reasonEntryNamesCertificate)
		}
		return tlogDenial(cand, kv.tm, err, verifyErr)
	}
	signedAt, err := v.VerifyObserverTimestamps(b, logTimes)
	if err != nil {
		return timestampDenial(cand, kv.tm, checksFor(&a.Authority, s), err)
	}
	if !message {
		if _, err := v.Verify(b, unbound); err == nil {
			// All but the artifact verifies: the statement's subject.
			switch {
			case statementNames(cand, digest):
				return deny(ErrMalformed, "%v", verifyErr)
			case cand.artifact != nil:
				return deny(ErrDigestMismatch, "signed statement is for another artifact: no subject has the artifact's digest sha256:%x", digest)
			}
			return deny(ErrDigestMismatch, "signed statement is for another digest (copied from another image?)")
		}
	}
	if !keyless {
		return deny(ErrBadSignature, "%v", verifyErr)
	}
	if vc.Certificate() == nil {
		return deny(ErrUntrustedCertificate, "%v", verifyErr)
	}
	if signatureVerifies(cand, kv.tm, digest) != nil {
		return deny(ErrBadSignature, "signature does not verify with the key of its certificate (the payload or the signature was altered)")
	}
	// The signature verifies with the certificate's key: the certificate
	// is not trusted (chain, validity at the time of signing, SCT).
	if a.Certificate != nil {
		return deny(ErrUntrustedCertificate, "%s", untrustedReason(a.Certificate, vc.Certificate(), signedAt, verifyErr))
	}
	return deny(ErrUntrustedCertificate, "%v", verifyErr)
}

// artifactDenial says why a message signature cannot be for the artifact
// of digest, before any other step: the bundle signs another digest; or
// only the artifact's sha256 digest is known, and the bundle signs a
// digest of another algorithm, or is signed by an Ed25519 key (cert: the
// certificate, for keyless), which signs the content itself. Nil when
// none of these.
func artifactDenial(cand candidate, kv keyedVerifier, cert *x509.Certificate, digest []byte) *Denial {
	msg := cand.bundle.GetMessageSignature()
	if msg == nil {
		return nil
	}
	switch md := msg.GetMessageDigest(); {
	case md.GetAlgorithm() == protocommon.HashAlgorithm_SHA2_256 && !bytes.Equal(md.GetDigest(), digest):
		return deny(ErrDigestMismatch, "signature is for sha256:%x, not the artifact's sha256:%x", md.GetDigest(), digest)
	case md.GetAlgorithm() != protocommon.HashAlgorithm_SHA2_256 && cand.artifact.content == nil:
		return deny(ErrMalformed, "the bundle signs a %s digest, which the artifact's sha256 digest cannot be compared with: verify it against the artifact itself", md.GetAlgorithm())
	}
	var key crypto.PublicKey
	switch {
	case kv.key != nil:
		key = kv.key.Key
	case cert != nil:
		key = cert.PublicKey
	}
	if _, ed := key.(ed25519.PublicKey); ed && cand.artifact.content == nil {
		return deny(ErrMalformed, "a message signature by an Ed25519 key verifies only against the artifact itself, not its digest")
	}
	return nil
}

// signatureVerifies checks the signature alone with the key of the
// certificate (or the trusted key): over what a message signature signs
// (a legacy signature's payload, an artifact or its digest), over the
// envelope of a DSSE statement.
func signatureVerifies(cand candidate, tm root.TrustedMaterial, digest []byte) error {
	sc, err := cand.bundle.SignatureContent()
	if err != nil {
		return err
	}
	vc, err := cand.bundle.VerificationContent()
	if err != nil {
		return err
	}
	switch {
	case cand.payload != nil:
		return sgverify.VerifySignatureWithArtifacts(sc, vc, tm, []io.Reader{bytes.NewReader(cand.payload)})
	case cand.artifact != nil && cand.artifact.content != nil:
		return sgverify.VerifySignatureWithArtifacts(sc, vc, tm, []io.Reader{cand.artifact.reader()})
	case sc.MessageSignatureContent() != nil:
		return sgverify.VerifySignatureWithArtifactDigests(sc, vc, tm, []sgverify.ArtifactDigest{{Algorithm: "sha256", Digest: digest}})
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

// reasonEntryNamesCertificate is why a key authority that requires the
// log denies a signature made with its key that carries a certificate.
const reasonEntryNamesCertificate = "signed with the trusted key, but the signature carries a certificate and its transparency log entry names that certificate, not the key, so a key authority cannot verify the entry: trust the certificate's CA with a certificate authority, or set insecureIgnoreTlog on the key authority"

// entryNamesCertificate reports whether a transparency log entry of b
// names a certificate as the signer.
func entryNamesCertificate(b *bundle.Bundle) bool {
	entries, err := b.TlogEntries()
	if err != nil {
		return false
	}
	for _, e := range entries {
		if _, ok := e.PublicKey().(*x509.Certificate); ok {
			return true
		}
	}
	return false
}

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

// timestampDenial says why no time of signing verified (stepErr: the
// error of the step), under the checks c: the RFC 3161 timestamps that
// did not verify, and why.
func timestampDenial(cand candidate, tm root.TrustedMaterial, c checks, stepErr error) *Denial {
	verified, errs, err := sgverify.VerifySignedTimestamp(cand.bundle, tm)
	if err != nil {
		errs = append(errs, err)
	}
	switch {
	case c.signedTime && (len(verified) == 0 || err != nil):
		// The bundle carries a timestamp, which must verify whatever
		// else dates the signature.
		return deny(ErrTimestamp, "RFC 3161 timestamp of the signature does not verify with a trusted timestamp authority: %s", oneLine(errs))
	case c.signedTime:
		// A timestamp verified: the log entry's integrated time did not.
		return deny(ErrTimestamp, "%v", stepErr)
	}
	if len(errs) == 0 {
		return deny(ErrTimestamp, reasonNoSigningTime)
	}
	return deny(ErrTimestamp, "%s; the timestamp did not verify: %s", reasonNoSigningTime, oneLine(errs))
}

func oneLine(errs []error) string {
	return strings.ReplaceAll(errors.Join(errs...).Error(), "\n", "; ")
}
