package verify

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/notaryproject/notation-go"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/signet-dev/signet/internal/registry"
)

// Policy is what one image must satisfy: Threshold of its Authorities must
// pass, each with a distinct signer.
type Policy struct {
	// Name names the policy in results and messages.
	Name string
	// Authorities are the ways an image can satisfy the policy.
	Authorities []Authority
	// Threshold is how many authorities must pass, counting distinct signers
	// (keys or certificate identities); 0 means 1.
	Threshold int
	// SignedIdentity, when not SignedIdentityOff, also requires the identity
	// the signer wrote into the payload (the simple-signing docker-reference)
	// to name the image being verified.
	SignedIdentity SignedIdentity
}

// SignedIdentity is how the signed docker-reference must relate to the image
// being verified; the meanings are containers-policy.json's.
type SignedIdentity int

const (
	// SignedIdentityOff does not look at the signed reference.
	SignedIdentityOff SignedIdentity = iota
	// MatchRepository requires the signed reference's repository to be the
	// image's repository (any tag).
	MatchRepository
	// MatchExact requires the signed reference to be the image reference as
	// written, tag or digest included.
	MatchExact
	// MatchRepoDigestOrExact is MatchRepository for an image referenced by
	// digest and MatchExact for one referenced by tag
	// (containers-policy.json's default).
	MatchRepoDigestOrExact
)

// Authority is one way to satisfy a policy: a set of trusted keys, trusted
// keyless identities, or a static pass/fail; optionally with attestations the
// same signers must have made.
type Authority struct {
	// Name names the authority in results and messages.
	Name string
	// Keys are trusted public keys: a signature by any one of them passes.
	Keys []PublicKey
	// Keyless trusts certificates issued by a Fulcio CA of TrustedMaterial to
	// one of the identities.
	Keyless *Keyless
	// Certificate trusts certificates of an enterprise PKI (no Fulcio)
	// issued to one of its identities; TrustedMaterial, when set, gives
	// the transparency logs and timestamp authorities that date them.
	Certificate *Certificate
	// Notation trusts Notary Project signatures (OCI referrers of artifact
	// type application/vnd.cncf.notary.signature), verified by notation-go.
	Notation *Notation
	// Static passes or fails without looking at signatures.
	Static *Static
	// Attestations, when set, are required instead of a plain signature:
	// each must be met by a verified in-toto statement signed by this
	// authority (the policy-controller meaning).
	Attestations []Attestation
	// TrustedMaterial verifies certificate chains, SCTs, transparency log
	// entries and timestamps. Required for keyless, and for keys unless
	// InsecureIgnoreTlog is set. With a key, an RFC 3161 timestamp a
	// bundle carries must verify with it.
	TrustedMaterial root.TrustedMaterial
	// InsecureIgnoreTlog accepts key-based signatures that were never
	// written to a transparency log. Not allowed for keyless. A log entry
	// a bundle does carry is still verified when TrustedMaterial is set
	// (and the bundle denied when it does not verify); without
	// TrustedMaterial only the signature is checked, and log entries and
	// timestamps are not looked at.
	InsecureIgnoreTlog bool
	// InsecureIgnoreSCT accepts Fulcio certificates without an embedded
	// signed certificate timestamp.
	InsecureIgnoreSCT bool
	// SignatureRepository, when set, is the only repository this
	// authority's evidence is taken from; otherwise only the image's own
	// (see Request.ImageRepository).
	SignatureRepository *registry.Repository
}

// Keyless lists the certificate identities an authority accepts.
type Keyless struct {
	// Identities: a certificate matching any one of them passes.
	Identities []Identity
}

// Static is an authority that decides without signatures.
type Static struct {
	Pass    bool
	Message string
}

// Attestation is a required in-toto statement.
type Attestation struct {
	// Name names the attestation in messages.
	Name string
	// PredicateType is required and compared exactly.
	PredicateType string
	// Conditions are CEL expressions over the statement (predicateType,
	// subject, predicate); all must be true.
	Conditions []string
	// All requires every statement of the predicate type to meet the
	// conditions; otherwise any one statement suffices.
	All bool
}

// Compiled is a checked, ready-to-run policy. It is immutable and safe for
// concurrent use.
type Compiled struct {
	name           string
	threshold      int
	signedIdentity SignedIdentity
	authorities    []*compiledAuthority
}

// Name is the policy's name.
func (c *Compiled) Name() string { return c.name }

type compiledAuthority struct {
	Authority
	// verifiers: one per key (the key is the only trusted key of its
	// verifier, so a passing verifier names its key), or one for keyless.
	verifiers    []keyedVerifier
	identities   []identityMatcher
	certIDs      []certMatcher
	notary       notation.Verifier
	attestations []compiledAttestation
}

type keyedVerifier struct {
	key *PublicKey // nil for keyless
	// v verifies a bundle of each shape with the checks the authority
	// requires of it (checksFor).
	v *shapeVerifiers
	// tm is the trusted material v verifies with (the key, and the
	// authority's trust root when it has one).
	tm root.TrustedMaterial
	// keyMaterial trusts the key alone (nil for keyless): sigOnly verifies
	// with it.
	keyMaterial root.TrustedMaterial
}

// sigOnly verifies with the key alone, without a log or timestamps: it
// says whether the key signed a candidate that v rejects. It is made when
// a candidate failed, so a policy holds no verifier for it.
func (kv keyedVerifier) sigOnly() (*sgverify.Verifier, error) {
	return sgverify.NewVerifier(kv.keyMaterial, sgverify.WithCurrentTime())
}

// shapeVerifiers holds the verifier of each bundle shape, made the first
// time a bundle of that shape is verified: an authority meets one or two
// shapes, and 10,000 policies then hold a verifier or two each rather than
// one per shape. Compile has checked that each can be made.
type shapeVerifiers struct {
	tm     root.TrustedMaterial
	checks [shapes]checks
	v      [shapes]atomic.Pointer[sgverify.Verifier]
}

// of returns the verifier of shape s.
func (sv *shapeVerifiers) of(s shape) *sgverify.Verifier {
	if v := sv.v[s].Load(); v != nil {
		return v
	}
	v, err := sgverify.NewVerifier(sv.tm, sv.checks[s].options()...)
	if err != nil {
		// Compile made one with the same material and options.
		panic(fmt.Sprintf("verify: a verifier Compile checked does not build: %v", err))
	}
	sv.v[s].CompareAndSwap(nil, v)
	return sv.v[s].Load()
}

// Compile checks a policy and prepares its verifiers. Errors name the field.
func Compile(p Policy) (*Compiled, error) {
	c := &Compiled{name: p.Name, threshold: p.Threshold, signedIdentity: p.SignedIdentity}
	if c.threshold == 0 {
		c.threshold = 1
	}
	var errs []error
	if len(p.Authorities) == 0 {
		errs = append(errs, errors.New("authorities: at least one authority is required"))
	}
	if c.threshold < 0 || (len(p.Authorities) > 0 && c.threshold > len(p.Authorities)) {
		errs = append(errs, fmt.Errorf("threshold: %d, but the policy has %d authorities", p.Threshold, len(p.Authorities)))
	}
	names := map[string]bool{}
	for i, a := range p.Authorities {
		field := fmt.Sprintf("authorities[%d]", i)
		if a.Name == "" {
			a.Name = fmt.Sprintf("authority-%d", i)
		}
		if names[a.Name] {
			errs = append(errs, fmt.Errorf("%s.name: %q is used twice", field, a.Name))
		}
		names[a.Name] = true
		ca, err := compileAuthority(a)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		c.authorities = append(c.authorities, ca)
	}
	if err := errors.Join(errs...); err != nil {
		if p.Name != "" {
			return nil, fmt.Errorf("policy %s: %w", p.Name, err)
		}
		return nil, err
	}
	return c, nil
}

func compileAuthority(a Authority) (*compiledAuthority, error) {
	ca := &compiledAuthority{Authority: a}
	kinds := 0
	for _, set := range []bool{len(a.Keys) > 0, a.Keyless != nil, a.Certificate != nil, a.Notation != nil, a.Static != nil} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return nil, errors.New("exactly one of key, keyless, certificate, notation or static is required")
	}
	if a.Notation != nil {
		if a.InsecureIgnoreTlog || a.InsecureIgnoreSCT {
			return nil, errors.New("insecureIgnoreTlog, insecureIgnoreSCT: Notary signatures use no transparency log")
		}
		if len(a.Attestations) > 0 {
			return nil, errors.New("attestations: a notation authority verifies image signatures; Notary attestations are not supported")
		}
		if a.SignatureRepository != nil {
			return nil, errors.New("source: Notary signatures are read from the image's own repository")
		}
		v, err := newNotationVerifier(a.Name, a.Notation)
		if err != nil {
			return nil, err
		}
		ca.notary = v
		return ca, nil
	}
	if a.Static != nil {
		if len(a.Attestations) > 0 {
			return nil, errors.New("attestations: a static authority checks no signatures")
		}
		return ca, nil
	}
	var err error
	switch {
	case len(a.Keys) > 0:
		if !a.InsecureIgnoreTlog && a.TrustedMaterial == nil {
			return nil, &Undecided{Kind: ErrNoTrustRoot, Err: errors.New("key: a trust root is needed to verify transparency log entries (or set insecureIgnoreTlog for signatures made without a log)")}
		}
		for i := range a.Keys {
			k := &a.Keys[i]
			if k.Key == nil {
				return nil, fmt.Errorf("key[%d]: empty key", i)
			}
			kv, err := keyVerifier(k, a)
			if err != nil {
				return nil, fmt.Errorf("key[%d]: %w", i, err)
			}
			ca.verifiers = append(ca.verifiers, kv)
		}
	case a.Keyless != nil:
		if a.InsecureIgnoreTlog {
			return nil, errors.New("insecureIgnoreTlog: only key-based signatures may be accepted without a transparency log")
		}
		if a.TrustedMaterial == nil {
			return nil, &Undecided{Kind: ErrNoTrustRoot, Err: errors.New("keyless: no trust root")}
		}
		if len(a.Keyless.Identities) == 0 {
			return nil, errors.New("keyless.identities: at least one identity is required")
		}
		for i, id := range a.Keyless.Identities {
			m, err := compileIdentity(id)
			if err != nil {
				return nil, fmt.Errorf("keyless.identities[%d]: %w", i, err)
			}
			ca.identities = append(ca.identities, m)
		}
		kv := keyedVerifier{tm: a.TrustedMaterial}
		if err := kv.build(&a); err != nil {
			return nil, fmt.Errorf("keyless: %w", err)
		}
		ca.verifiers = []keyedVerifier{kv}
	case a.Certificate != nil:
		if !a.InsecureIgnoreTlog && a.TrustedMaterial == nil {
			return nil, &Undecided{Kind: ErrNoTrustRoot, Err: errors.New("certificate: a trust root is needed to verify transparency log entries (or set insecureIgnoreTlog for signatures made without a log)")}
		}
		if len(a.Certificate.Roots) == 0 {
			return nil, errors.New("certificate.roots: at least one CA certificate is required")
		}
		if len(a.Certificate.Identities) == 0 {
			return nil, errors.New("certificate.identities: at least one identity is required")
		}
		for i, id := range a.Certificate.Identities {
			m, err := compileCertIdentity(id)
			if err != nil {
				return nil, fmt.Errorf("certificate.identities[%d]: %w", i, err)
			}
			ca.certIDs = append(ca.certIDs, m)
		}
		kv := keyedVerifier{tm: newPKIMaterial(a.Certificate, a.TrustedMaterial)}
		if err := kv.build(&a); err != nil {
			return nil, fmt.Errorf("certificate: %w", err)
		}
		ca.verifiers = []keyedVerifier{kv}
	}
	for i, at := range a.Attestations {
		cat, cerr := compileAttestation(at)
		if cerr != nil {
			return nil, fmt.Errorf("attestations[%d]: %w", i, cerr)
		}
		ca.attestations = append(ca.attestations, cat)
	}
	return ca, err
}

// keyVerifier builds the sigstore-go verifiers that trust exactly one key
// (and the authority's trust root for log entries and timestamps).
func keyVerifier(k *PublicKey, a Authority) (keyedVerifier, error) {
	sv, err := signature.LoadDefaultVerifier(k.Key)
	if err != nil {
		return keyedVerifier{}, err
	}
	keyMaterial := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
		return root.NewExpiringKey(sv, timeZero, timeZero), nil
	})
	kv := keyedVerifier{key: k, tm: keyMaterial, keyMaterial: keyMaterial}
	if _, err := kv.sigOnly(); err != nil {
		return kv, err
	}
	if a.TrustedMaterial != nil {
		kv.tm = root.TrustedMaterialCollection{keyMaterial, a.TrustedMaterial}
	}
	return kv, kv.build(&a)
}

// build prepares kv's verifier of each shape, with kv.tm, and checks that
// each distinct set of checks makes one (they are made on first use).
func (kv *keyedVerifier) build(a *Authority) error {
	kv.v = &shapeVerifiers{tm: kv.tm}
	checked := map[checks]bool{}
	for s := range shape(shapes) {
		c := checksFor(a, s)
		kv.v.checks[s] = c
		if !checked[c] {
			if _, err := sgverify.NewVerifier(kv.tm, c.options()...); err != nil {
				return err
			}
			checked[c] = true
		}
	}
	return nil
}

// describe says what the authority trusts, for messages.
func (a *compiledAuthority) describe() string {
	switch {
	case len(a.Keys) == 1:
		return "key " + shortFingerprint(a.Keys[0].Fingerprint)
	case len(a.Keys) > 1:
		fps := make([]string, len(a.Keys))
		for i, k := range a.Keys {
			fps[i] = shortFingerprint(k.Fingerprint)
		}
		return "keys " + strings.Join(fps, ", ")
	case a.Keyless != nil:
		ids := make([]string, len(a.Keyless.Identities))
		for i, id := range a.Keyless.Identities {
			ids[i] = id.String()
		}
		return "identities [" + strings.Join(ids, "; ") + "]"
	case a.Certificate != nil:
		return describeCertificate(a.Certificate)
	case a.Notation != nil:
		return "Notary signers " + strings.Join(a.Notation.TrustedIdentities, "; ")
	}
	return "static"
}

func shortFingerprint(fp string) string {
	if len(fp) > len("sha256:")+16 {
		return fp[:len("sha256:")+16]
	}
	return fp
}
