package verify

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"github.com/notaryproject/notation-core-go/revocation"
	"github.com/notaryproject/notation-core-go/revocation/purpose"
	"github.com/notaryproject/notation-core-go/signature"
	_ "github.com/notaryproject/notation-core-go/signature/cose" // registers the COSE envelope
	_ "github.com/notaryproject/notation-core-go/signature/jws"  // registers the JWS envelope
	"github.com/notaryproject/notation-go"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/signet-dev/signet/internal/registry"
)

// Notation trusts Notary Project signatures (notation sign), verified by
// the Notary Project's own library (notation-go) as its trust policy
// specifies, with a trust policy of one statement made from these fields.
type Notation struct {
	// CAs are the trust store of type "ca": a signing certificate must
	// chain to one.
	CAs []*x509.Certificate
	// SigningAuthorities are the trust store of type "signingAuthority"
	// (signing services such as AWS Signer).
	SigningAuthorities []*x509.Certificate
	// TSAs are the trust store of type "tsa": the roots of timestamp
	// authorities whose RFC 3161 countersignatures date signatures.
	TSAs []*x509.Certificate
	// TrustedIdentities are "x509.subject: <distinguished name>" entries, or
	// "*" alone: any identity the trust store certifies.
	TrustedIdentities []string
	// Level is the verification level: strict (default), permissive or
	// audit.
	Level string
	// Revocation overrides the level's revocation action: enforce, log or
	// skip; "" keeps the level's.
	Revocation string
}

// Verification levels and actions, as the Notary Project trust policy
// spells them.
var (
	NotationLevels  = []string{"strict", "permissive", "audit"}
	NotationActions = []string{"enforce", "log", "skip"}
)

// notationStore is the name of the trust stores made from a Notation.
const notationStore = "signet"

// notationTrustStore serves a Notation's certificates as notation-go's
// trust store.
type notationTrustStore struct{ n *Notation }

func (s notationTrustStore) GetCertificates(_ context.Context, t truststore.Type, name string) ([]*x509.Certificate, error) {
	if name != notationStore {
		return nil, fmt.Errorf("no trust store %s:%s", t, name)
	}
	switch t {
	case truststore.TypeCA:
		return s.n.CAs, nil
	case truststore.TypeSigningAuthority:
		return s.n.SigningAuthorities, nil
	case truststore.TypeTSA:
		return s.n.TSAs, nil
	}
	return nil, fmt.Errorf("no trust store of type %s", t)
}

// newNotationVerifier builds notation-go's verifier for n. Revocation is
// checked online, with the decision's deadline, for certificates that name
// an OCSP responder or a CRL; certificates that name none are not
// revocable.
func newNotationVerifier(name string, n *Notation) (notation.Verifier, error) {
	if len(n.CAs) == 0 && len(n.SigningAuthorities) == 0 {
		return nil, errors.New("notation: at least one CA or signing authority certificate is required")
	}
	if len(n.TrustedIdentities) == 0 {
		return nil, errors.New("notation.trustedIdentities: at least one identity is required (\"*\" trusts every identity the trust store certifies)")
	}
	level := n.Level
	if level == "" {
		level = "strict"
	}
	var stores []string
	if len(n.CAs) > 0 {
		stores = append(stores, string(truststore.TypeCA)+":"+notationStore)
	}
	if len(n.SigningAuthorities) > 0 {
		stores = append(stores, string(truststore.TypeSigningAuthority)+":"+notationStore)
	}
	if len(n.TSAs) > 0 {
		stores = append(stores, string(truststore.TypeTSA)+":"+notationStore)
	}
	sv := trustpolicy.SignatureVerification{VerificationLevel: level}
	if level == "audit" {
		// audit does not enforce authenticity: revocation would follow
		// the OCSP and CRL URLs of certificates nobody trusted, letting
		// whoever can push a signature make signet fetch URLs of their
		// choosing. It is not checked.
		if n.Revocation != "" && n.Revocation != "skip" {
			return nil, errors.New("notation.revocation: the audit level does not check authenticity, so signet checks no revocation under it (the URLs would come from untrusted certificates): leave revocation out or set skip")
		}
	}
	revocationAction := n.Revocation
	if level == "audit" {
		revocationAction = "skip"
	}
	if revocationAction != "" {
		sv.Override = map[trustpolicy.ValidationType]trustpolicy.ValidationAction{trustpolicy.TypeRevocation: trustpolicy.ValidationAction(revocationAction)}
	}
	doc := &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
		Name: policyName(name), RegistryScopes: []string{"*"}, SignatureVerification: sv,
		TrustStores: stores, TrustedIdentities: n.TrustedIdentities,
	}}}
	codeSigning, err := revocation.NewWithOptions(revocation.Options{CertChainPurpose: purpose.CodeSigning})
	if err != nil {
		return nil, err
	}
	timestamping, err := revocation.NewWithOptions(revocation.Options{CertChainPurpose: purpose.Timestamping})
	if err != nil {
		return nil, err
	}
	v, err := verifier.NewWithOptions(doc, notationTrustStore{n}, nil, verifier.VerifierOptions{
		RevocationCodeSigningValidator: codeSigning, RevocationTimestampingValidator: timestamping,
	})
	if err != nil {
		return nil, fmt.Errorf("notation: %w", err)
	}
	return v, nil
}

// policyName makes an authority name a trust policy statement name.
func policyName(name string) string {
	if name == "" {
		return "signet"
	}
	return name
}

// notationTarget is what a Notary signature's payload says it signs.
type notationTarget struct {
	TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
}

// coseSign1 is the COSE_Sign1 structure (RFC 9052) a COSE envelope holds.
type coseSign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// peekNotationTarget reads, unverified, the descriptor an envelope's
// payload names, without parsing its certificates: only to compare its
// digest with the one being verified and to give notation-go the
// descriptor to check the payload against once it has verified it.
func peekNotationTarget(mediaType string, envelope []byte) (notationTarget, error) {
	var payload []byte
	switch mediaType {
	case registry.MediaTypeNotaryJWS:
		var jws struct {
			Payload string `json:"payload"`
		}
		if err := json.Unmarshal(envelope, &jws); err != nil {
			return notationTarget{}, fmt.Errorf("JWS envelope: %w", err)
		}
		p, err := base64.RawURLEncoding.DecodeString(jws.Payload)
		if err != nil {
			return notationTarget{}, fmt.Errorf("JWS payload: %w", err)
		}
		payload = p
	case registry.MediaTypeNotaryCOSE:
		var tag cbor.RawTag
		if err := cbor.Unmarshal(envelope, &tag); err != nil {
			return notationTarget{}, fmt.Errorf("COSE envelope: %w", err)
		}
		if tag.Number != 18 {
			return notationTarget{}, fmt.Errorf("COSE envelope: CBOR tag %d, not COSE_Sign1 (18)", tag.Number)
		}
		var msg coseSign1
		if err := cbor.Unmarshal(tag.Content, &msg); err != nil {
			return notationTarget{}, fmt.Errorf("COSE envelope: %w", err)
		}
		payload = msg.Payload
	default:
		return notationTarget{}, fmt.Errorf("envelope media type %q is neither JWS nor COSE", mediaType)
	}
	var target notationTarget
	if err := json.Unmarshal(payload, &target); err != nil {
		return notationTarget{}, fmt.Errorf("payload: %w", err)
	}
	return target, nil
}

// verifyNotation verifies a Notary signature cand for the image of
// req.Digest: the digest its payload names is compared first (the
// signature is for another image otherwise), then notation-go verifies the
// envelope against the descriptor it signs (integrity, authenticity and
// trusted identity, expiry, timestamp, revocation, as the level enforces
// them). Checks the level only logs appear as the signature's notes.
func (c *Compiled) verifyNotation(ctx context.Context, a *compiledAuthority, req Request, cand candidate) (Signature, error) {
	sig := Signature{Source: cand.ev.Source(), Format: cand.ev.Kind.String(), Artifact: cand.ev.Manifest}
	target, err := peekNotationTarget(cand.ev.MediaType, cand.ev.Content)
	if err != nil {
		return sig, deny(ErrMalformed, "notary signature: %v", err)
	}
	if got := target.TargetArtifact.Digest.String(); got != req.Digest {
		return sig, deny(ErrDigestMismatch, "notary signature is for %s, not %s (copied from another image?)", got, req.Digest)
	}
	// The trust policy's one statement has the scope "*": the reference
	// only has to parse.
	ref := req.Image.Name() + "@" + req.Digest
	if req.ImageRepository != nil {
		ref = req.ImageRepository.String() + "@" + req.Digest
	}
	outcome, err := a.notary.Verify(ctx, target.TargetArtifact, cand.ev.Content, notation.VerifierVerifyOptions{
		ArtifactReference: ref, SignatureMediaType: cand.ev.MediaType,
	})
	if err != nil {
		return sig, notationDenial(outcome, err)
	}
	// The signature specification: a verifier must refuse a signature with
	// a critical attribute it does not understand. signet understands no
	// extended attribute (verification plugins, the only ones notation-go
	// handles, do not run here); notation-go lets them pass.
	for _, attr := range outcome.EnvelopeContent.SignerInfo.SignedAttributes.ExtendedAttributes {
		if attr.Critical {
			return sig, deny(ErrBadSignature, "notary signature has the critical attribute %v, which signet does not understand (verification plugins do not run in signet)", attr.Key)
		}
	}
	if ec := outcome.EnvelopeContent; ec != nil && len(ec.SignerInfo.CertificateChain) > 0 {
		leaf := ec.SignerInfo.CertificateChain[0]
		sig.Subject, sig.Issuer = leaf.Subject.String(), leaf.Issuer.String()
		sig.Signer = fmt.Sprintf("notary certificate %s issued by %s", sig.Subject, sig.Issuer)
		if k, err := NewPublicKey(leaf.PublicKey); err == nil {
			sig.KeyFingerprint = k.Fingerprint
		}
	}
	for _, r := range outcome.VerificationResults {
		if r.Error != nil && r.Action == trustpolicy.ActionLog {
			sig.Notes = append(sig.Notes, fmt.Sprintf("%s (logged by the %s level, not enforced): %v", r.Type, outcome.VerificationLevel.Name, r.Error))
		}
	}
	return sig, nil
}

// notationDenial classifies notation-go's failure by the check that
// failed, in its words.
func notationDenial(outcome *notation.VerificationOutcome, err error) *Denial {
	if outcome != nil {
		for _, r := range outcome.VerificationResults {
			if r.Error == nil || r.Action != trustpolicy.ActionEnforce {
				continue
			}
			switch r.Type {
			case trustpolicy.TypeIntegrity:
				return deny(ErrBadSignature, "notary signature integrity: %v", r.Error)
			case trustpolicy.TypeAuthenticity:
				if strings.Contains(r.Error.Error(), "trusted identit") {
					return deny(ErrIdentityMismatch, "notary signature authenticity: %v", r.Error)
				}
				return deny(ErrUntrustedCertificate, "notary signature authenticity: %v", r.Error)
			case trustpolicy.TypeExpiry:
				return deny(ErrUntrustedCertificate, "notary signature expiry: %v", r.Error)
			case trustpolicy.TypeAuthenticTimestamp:
				return deny(ErrTimestamp, "notary signature timestamp: %v", r.Error)
			case trustpolicy.TypeRevocation:
				return deny(ErrUntrustedCertificate, "notary signature revocation: %v", r.Error)
			}
		}
	}
	var unsupported *signature.UnsupportedSignatureFormatError
	if errors.As(err, &unsupported) {
		return deny(ErrMalformed, "notary signature: %v", err)
	}
	return deny(ErrBadSignature, "notary signature: %v", err)
}

// isNotary reports whether ev is a Notary signature.
func isNotary(ev registry.Evidence) bool { return ev.Kind == registry.NotarySignature }

// ParseTrustStoreCertificates parses the PEM certificates of a Notary trust
// store of type ca or signingAuthority: CA certificates, or self-signed
// signing certificates trusted as they are (as notation-go loads a trust
// store).
func ParseTrustStoreCertificates(data []byte) ([]*x509.Certificate, error) {
	return parseCertificates(data, func(cert *x509.Certificate) error {
		selfSigned := bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil
		if !(cert.IsCA && cert.BasicConstraintsValid) && !selfSigned {
			return errors.New("is neither a CA certificate nor self-signed")
		}
		return nil
	})
}

// CheckNotationIdentity reports whether id is a trusted identity the Notary
// Project trust policy accepts ("*", or "x509.subject: " and a
// distinguished name), in notation-go's words.
func CheckNotationIdentity(id string) error {
	doc := &trustpolicy.Document{Version: "1.0", TrustPolicies: []trustpolicy.TrustPolicy{{
		Name: "check", RegistryScopes: []string{"*"}, SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: "strict"},
		TrustStores: []string{"ca:" + notationStore}, TrustedIdentities: []string{id},
	}}}
	return doc.Validate()
}
