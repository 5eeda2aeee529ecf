package notationtest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/verifier"
	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry/remote"
)

// Trust is the trust material for notation-go's verifier: one trust policy
// for every registry scope with the trust stores "ca:test" and, when
// TSARoots is set, "tsa:test".
type Trust struct {
	// Roots are the signing CAs' root certificates (trust store ca:test).
	Roots []*x509.Certificate
	// TSARoots are the time-stamping authorities' roots (trust store
	// tsa:test). When set, notation-go requires every signature to carry a
	// timestamp countersignature (verifyTimestamp "always"); when unset it
	// checks none and requires the signing certificates to be valid now.
	TSARoots []*x509.Certificate
	// Identities are the trusted identities, "x509.subject: <DN>" (the DN
	// with at least C, ST and O); none trusts any identity ("*").
	Identities []string
	// Level is the verification level: "strict" (default), "permissive",
	// "audit" or "skip".
	Level string
	// UserMetadata must all be in the signed target descriptor's annotations.
	UserMetadata map[string]string
}

// Policy is the Notary Project trust policy document trust stands for.
func (trust Trust) Policy() *trustpolicy.Document {
	stores := []string{"ca:test"}
	if len(trust.TSARoots) > 0 {
		stores = append(stores, "tsa:test")
	}
	identities := trust.Identities
	if len(identities) == 0 {
		identities = []string{"*"}
	}
	level := trust.Level
	if level == "" {
		level = trustpolicy.LevelStrict.Name
	}
	return &trustpolicy.Document{
		Version: "1.0",
		TrustPolicies: []trustpolicy.TrustPolicy{{
			Name:                  "signet-test",
			RegistryScopes:        []string{"*"},
			SignatureVerification: trustpolicy.SignatureVerification{VerificationLevel: level},
			TrustStores:           stores,
			TrustedIdentities:     identities,
		}},
	}
}

// Check names the Notary Project verification step a signature failed at:
// the validation types of the trust policy, and Artifact, UserMetadata and
// Retrieval for the checks notation-go makes outside them.
type Check string

// The checks, in the order notation-go makes them.
const (
	Verified           Check = ""
	Retrieval          Check = "retrieval" // no signature, or the registry failed
	Integrity          Check = Check(trustpolicy.TypeIntegrity)
	Authenticity       Check = Check(trustpolicy.TypeAuthenticity) // chain to a trusted root, trusted identity
	Expiry             Check = Check(trustpolicy.TypeExpiry)
	AuthenticTimestamp Check = Check(trustpolicy.TypeAuthenticTimestamp) // certificate validity now or at the timestamp
	Revocation         Check = Check(trustpolicy.TypeRevocation)
	Artifact           Check = "artifact"     // the signed descriptor is not the image's
	UserMetadata       Check = "userMetadata" // Trust.UserMetadata not in the payload
)

// Outcome is what notation.Verify decided about an image.
type Outcome struct {
	// Err is notation.Verify's error; nil when a signature verified.
	Err error
	// Check is the check the last signature tried failed at (Verified when
	// one verified).
	Check Check
	// Signatures are the outcomes of each signature notation-go tried, in
	// order (on success notation-go stops at the first that verifies).
	Signatures []*notation.VerificationOutcome
	// Target is the verified image's descriptor.
	Target ocispec.Descriptor
}

// Verifier is notation-go's verifier (verifier.New) for given trust, with
// an in-memory trust store; it can verify many images, concurrently.
type Verifier struct {
	v     notation.Verifier
	trust Trust
}

// NewVerifier makes notation-go's verifier for trust. Revocation checking is
// notation-go's default (OCSP, then CRL, from the URLs in the certificates).
func NewVerifier(trust Trust) (*Verifier, error) {
	store := memoryStore{"ca:test": trust.Roots, "tsa:test": trust.TSARoots}
	v, err := verifier.New(trust.Policy(), store, nil)
	if err != nil {
		return nil, err
	}
	return &Verifier{v: v, trust: trust}, nil
}

// Verify runs notation.Verify on ref ("host/repo@sha256:..." in a plain-HTTP
// registry) as notation verify does: it lists the image's signature
// referrers (referrers API, else the tag schema) and verifies each, up to
// 50, until one verifies.
func (v *Verifier) Verify(ctx context.Context, ref string) Outcome {
	repo, err := remote.NewRepository(ref)
	if err != nil {
		return Outcome{Err: err, Check: Retrieval}
	}
	repo.PlainHTTP = true
	rec := &recordingVerifier{v: v.v}
	target, _, err := notation.Verify(ctx, rec, notationregistry.NewRepository(repo), notation.VerifyOptions{
		ArtifactReference:    ref,
		MaxSignatureAttempts: 50,
		UserMetadata:         v.trust.UserMetadata,
	})
	out := Outcome{Err: err, Target: target, Signatures: rec.outcomes}
	if err != nil {
		out.Check = Retrieval
		if n := len(rec.outcomes); n > 0 {
			out.Check = failedCheck(rec.outcomes[n-1])
		}
	}
	return out
}

// VerifyImage verifies ref under trust with a new Verifier.
func VerifyImage(ctx context.Context, ref string, trust Trust) Outcome {
	v, err := NewVerifier(trust)
	if err != nil {
		return Outcome{Err: fmt.Errorf("notation-go's verifier: %w", err), Check: Retrieval}
	}
	return v.Verify(ctx, ref)
}

// failedCheck is the step a failed signature outcome failed at.
func failedCheck(o *notation.VerificationOutcome) Check {
	for _, r := range o.VerificationResults {
		if r.Error != nil && r.Action == trustpolicy.ActionEnforce {
			return Check(r.Type)
		}
	}
	switch {
	case o.Error == nil:
		return Verified
	case strings.HasSuffix(o.Error.Error(), "content descriptor mismatch"): // notation.Verify wraps it
		return Artifact
	case errors.As(o.Error, new(notation.UserMetadataVerificationFailedError)):
		return UserMetadata
	}
	return Check("other: " + o.Error.Error())
}

// recordingVerifier passes notation.Verify's calls to notation-go's verifier
// and keeps each outcome, which notation.Verify returns only on success.
type recordingVerifier struct {
	v        notation.Verifier
	mu       sync.Mutex
	outcomes []*notation.VerificationOutcome
}

func (r *recordingVerifier) Verify(ctx context.Context, desc ocispec.Descriptor, sig []byte, opts notation.VerifierVerifyOptions) (*notation.VerificationOutcome, error) {
	o, err := r.v.Verify(ctx, desc, sig, opts)
	if o != nil {
		r.mu.Lock()
		r.outcomes = append(r.outcomes, o)
		r.mu.Unlock()
	}
	return o, err
}

// SkipVerify keeps notation.Verify's check of the "skip" level.
func (r *recordingVerifier) SkipVerify(ctx context.Context, opts notation.VerifierVerifyOptions) (bool, *trustpolicy.VerificationLevel, error) {
	type skipper interface {
		SkipVerify(context.Context, notation.VerifierVerifyOptions) (bool, *trustpolicy.VerificationLevel, error)
	}
	if s, ok := r.v.(skipper); ok {
		return s.SkipVerify(ctx, opts)
	}
	return false, nil, nil
}

// memoryStore is an X509TrustStore of named stores "type:name".
type memoryStore map[string][]*x509.Certificate

func (m memoryStore) GetCertificates(_ context.Context, storeType truststore.Type, name string) ([]*x509.Certificate, error) {
	certs, ok := m[string(storeType)+":"+name]
	if !ok || len(certs) == 0 {
		return nil, truststore.TrustStoreError{Msg: fmt.Sprintf("the trust store %s:%s has no certificates", storeType, name)}
	}
	return certs, nil
}
