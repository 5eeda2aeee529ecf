package notationtest

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/notaryproject/notation-core-go/signature"
	"github.com/notaryproject/notation-core-go/signature/cose"
	"github.com/notaryproject/notation-core-go/signature/jws"
	"github.com/notaryproject/notation-go"
	notationregistry "github.com/notaryproject/notation-go/registry"
	"github.com/notaryproject/notation-go/signer"
	"github.com/notaryproject/tspclient-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"

	"github.com/signet-dev/signet/test/pkitest"
)

// Envelope formats: the media types of the signature blob.
const (
	JWS  = jws.MediaTypeEnvelope  // "application/jose+json"
	COSE = cose.MediaTypeEnvelope // "application/cose"
)

// ArtifactType is the artifact type of Notary Project signature manifests.
// notation-go writes it as the manifest's config media type (with the empty
// config, {}) and not as an artifactType field; registries and clients derive
// the referrer's artifactType from it.
const ArtifactType = notationregistry.ArtifactTypeNotation

// UnknownCriticalAttribute is the key of the extended signed attribute
// Options.UnknownCritical adds, marked critical.
const UnknownCriticalAttribute = "io.signet.test.unknownCritical"

// payloadContentType is the Notary Project payload media type.
const payloadContentType = "application/vnd.cncf.notary.payload.v1+json"

// defaultSigningAgent is what notation-go's generic signer puts in the
// unsigned io.cncf.notary.signingAgent attribute.
const defaultSigningAgent = "notation-go/1.3.2"

// Signer is a signing key and its certificate chain: the leaf first, then the
// intermediates, ending with the self-signed root, as notation-go requires.
type Signer struct {
	Key   crypto.Signer
	Chain []*x509.Certificate
}

// Identity is the signer's trusted identity for a Notary Project trust
// policy: "x509.subject: " and the leaf's subject distinguished name.
func (s Signer) Identity() string { return "x509.subject: " + s.Chain[0].Subject.String() }

// NewSigner makes a P-256 key and a code-signing certificate for it, issued
// by ca as leaf describes (pkitest's leaves are Notary-conformant: digital
// signature key usage, code-signing extended key usage). The subject has
// C=US and ST=WA unless leaf says otherwise, so that Identity can be used in
// a trust policy, and CN "signet notation signer" when leaf has none. The
// chain runs from the leaf to ca's root.
func NewSigner(t testing.TB, ca *pkitest.CA, leaf pkitest.Leaf) Signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.CommonName == "" {
		leaf.CommonName = "signet notation signer"
	}
	if leaf.Country == "" {
		leaf.Country = "US"
	}
	if leaf.Province == "" {
		leaf.Province = "WA"
	}
	cert := ca.Issue(t, key.Public(), leaf)
	return Signer{Key: key, Chain: append([]*x509.Certificate{cert}, ca.Chain()...)}
}

// Options says how Sign signs. The zero value makes what
// `notation sign --signature-format jws host/repo@sha256:...` makes.
type Options struct {
	// Format is the envelope media type, JWS or COSE; default JWS.
	Format string
	// Expiry, when set, gives the signature an expiry time this long after
	// its signing time (notation sign --expiry). Whole seconds.
	Expiry time.Duration
	// TSA, when set, has the signature timestamped by this RFC 3161
	// authority (notation sign --timestamp-url), trusting its root.
	TSA *TSA
	// UserMetadata is added to the signed target descriptor's annotations
	// (notation sign --user-metadata).
	UserMetadata map[string]string
	// SigningAgent replaces notation-go's unsigned signing-agent attribute.
	SigningAgent string

	// SigningTime, when set, backdates the signature: it is signed with
	// notation-core-go directly (notation-go always signs "now") with this
	// signing time, and Expiry counts from it, so an expired signature is
	// SigningTime: time.Now().Add(-time.Hour), Expiry: time.Minute. The
	// signing certificate must be valid at SigningTime. When the signer's
	// certificate has already expired and SigningTime is unset, Sign uses a
	// minute before the certificate's NotAfter (notation-go refuses to sign
	// with an expired certificate).
	SigningTime time.Time

	// Negative cases, for signatures a verifier must reject.

	// Tamper changes the envelope's payload after signing: the signed target
	// descriptor gains the annotation io.signet.test.tampered=true while the
	// signature stays the one over the original payload. It fails the
	// Notary Project integrity check.
	Tamper bool
	// AttachTo, when set ("host/repo@sha256:..."), attaches the signature,
	// which is over the image Sign was given, to this other image as its
	// referrer. The signature is valid, but for another digest.
	AttachTo string
	// UnknownCritical adds the extended signed attribute
	// UnknownCriticalAttribute ("io.signet.test.unknownCritical": "1"),
	// listed in the envelope's critical headers, signing with
	// notation-core-go directly (notation-go cannot add attributes).
	UnknownCritical bool
}

// Signature is what Sign pushed.
type Signature struct {
	// MediaType is the envelope's media type, JWS or COSE.
	MediaType string
	// Envelope is the signature envelope, as stored in the registry.
	Envelope []byte
	// Manifest is the signature manifest's digest, "sha256:...".
	Manifest string
	// Subject is the image the signature is attached to, "host/repo@sha256:...".
	Subject string
	// SigningTime is the envelope's signing time.
	SigningTime time.Time
}

// Sign signs the image ref ("host/repo@sha256:..." in a plain-HTTP registry)
// with notation-go as notation sign does, and pushes the signature manifest
// (config media type ArtifactType, one layer: the envelope; annotations:
// the certificate chain's SHA-256 thumbprints and the creation time) as a
// referrer of the image: with the OCI referrers API when the registry
// serves it, else by also updating the referrers tag-schema index
// (sha256-<hex>), which oras-go does. opts can make deliberately bad
// signatures; see Options.
func Sign(t testing.TB, ref string, s Signer, opts Options) Signature {
	t.Helper()
	ctx := context.Background()
	if opts.Format == "" {
		opts.Format = JWS
	}
	repo := Repository(t, ref)
	signerOpts := notation.SignerSignOptions{
		SignatureMediaType: opts.Format,
		ExpiryDuration:     opts.Expiry,
		SigningAgent:       opts.SigningAgent,
	}
	if opts.TSA != nil {
		ts, err := tspclient.NewHTTPTimestamper(nil, opts.TSA.URL)
		if err != nil {
			t.Fatal(err)
		}
		signerOpts.Timestamper = ts
		signerOpts.TSARootCAs = x509.NewCertPool()
		signerOpts.TSARootCAs.AddCert(opts.TSA.Root.Cert)
	}
	gs, err := signer.NewGenericSigner(s.Key, s.Chain)
	if err != nil {
		t.Fatalf("notationtest: %v", err)
	}

	viaCore := opts.UnknownCritical || !opts.SigningTime.IsZero() || time.Now().After(s.Chain[0].NotAfter)
	if !viaCore && !opts.Tamper && opts.AttachTo == "" {
		// What notation sign does, through notation-go's own API.
		rec := &recordingRepository{Repository: repo}
		_, err := notation.Sign(ctx, gs, rec, notation.SignOptions{
			SignerSignOptions: signerOpts,
			ArtifactReference: ref,
			UserMetadata:      opts.UserMetadata,
		})
		if err != nil {
			t.Fatalf("notationtest: notation-go signing %s: %v", ref, err)
		}
		return Signature{MediaType: opts.Format, Envelope: rec.blob, Manifest: rec.manifest.Digest.String(), Subject: ref, SigningTime: signingTime(t, opts.Format, rec.blob)}
	}

	target := resolve(t, repo, ref)
	if len(opts.UserMetadata) > 0 {
		target.Annotations = map[string]string{}
		for k, v := range opts.UserMetadata {
			target.Annotations[k] = v
		}
	}
	var sig []byte
	if viaCore {
		sig = signWithCore(t, target, s, opts, signerOpts)
	} else {
		sig, _, err = gs.Sign(ctx, target, signerOpts)
		if err != nil {
			t.Fatalf("notationtest: notation-go signing %s: %v", ref, err)
		}
	}
	when := signingTime(t, opts.Format, sig)
	if opts.Tamper {
		sig = tamper(t, opts.Format, sig)
	}

	subjectRef := ref
	if opts.AttachTo != "" {
		subjectRef = opts.AttachTo
		repo = Repository(t, subjectRef)
	}
	subject := resolve(t, repo, subjectRef)
	_, manifest, err := repo.PushSignature(ctx, opts.Format, sig, subject, annotations(t, s.Chain, when))
	if err != nil {
		t.Fatalf("notationtest: pushing the signature of %s: %v", subjectRef, err)
	}
	return Signature{MediaType: opts.Format, Envelope: sig, Manifest: manifest.Digest.String(), Subject: subjectRef, SigningTime: when}
}

// Repository is notation-go's view of the repository of ref, a reference in
// a plain-HTTP registry. It pushes referrers with the OCI referrers API when
// the registry serves it (probed with GET /v2/<repo>/referrers/<digest>) and
// with the referrers tag schema otherwise.
func Repository(t testing.TB, ref string) notationregistry.Repository {
	t.Helper()
	r, err := remote.NewRepository(ref)
	if err != nil {
		t.Fatalf("notationtest: %v", err)
	}
	r.PlainHTTP = true
	if err := r.SetReferrersCapability(servesReferrers(t, r.Reference)); err != nil {
		t.Fatal(err)
	}
	return notationregistry.NewRepository(r)
}

// servesReferrers reports whether the registry answers the OCI referrers API
// for ref's repository with an image index. oras-go, left to find out on
// its own, takes a missing OCI-Subject response header as "no referrers
// API", which go-containerregistry's registry never sends.
func servesReferrers(t testing.TB, ref registry.Reference) bool {
	t.Helper()
	d := ref.Reference
	if !strings.HasPrefix(d, "sha256:") {
		d = "sha256:" + strings.Repeat("0", 64)
	}
	resp, err := http.Get("http://" + ref.Registry + "/v2/" + ref.Repository + "/referrers/" + d)
	if err != nil {
		t.Fatalf("notationtest: probing the referrers API of %s: %v", ref.Registry, err)
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK && strings.HasPrefix(resp.Header.Get("Content-Type"), ocispec.MediaTypeImageIndex)
}

func resolve(t testing.TB, repo notationregistry.Repository, ref string) ocispec.Descriptor {
	t.Helper()
	r, err := registry.ParseReference(ref)
	if err != nil {
		t.Fatalf("notationtest: %v", err)
	}
	desc, err := repo.Resolve(context.Background(), r.Reference)
	if err != nil {
		t.Fatalf("notationtest: resolving %s: %v", ref, err)
	}
	// The target descriptor as notation-go signs it (envelope.SanitizeTargetArtifact).
	return ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
}

// signWithCore builds the envelope with notation-core-go as notation-go's
// generic signer does, but with the signing time and extended attributes
// opts asks for.
func signWithCore(t testing.TB, target ocispec.Descriptor, s Signer, opts Options, so notation.SignerSignOptions) []byte {
	t.Helper()
	payload, err := json.Marshal(struct {
		TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
	}{target})
	if err != nil {
		t.Fatal(err)
	}
	local, err := signature.NewLocalSigner(s.Chain, s.Key)
	if err != nil {
		t.Fatalf("notationtest: %v", err)
	}
	when := opts.SigningTime
	if when.IsZero() {
		when = time.Now()
		if leaf := s.Chain[0]; when.After(leaf.NotAfter) {
			when = leaf.NotAfter.Add(-time.Minute)
		}
	}
	agent := so.SigningAgent
	if agent == "" {
		agent = defaultSigningAgent
	}
	req := &signature.SignRequest{
		Payload:                signature.Payload{ContentType: payloadContentType, Content: payload},
		Signer:                 local,
		SigningTime:            when,
		SigningScheme:          signature.SigningSchemeX509,
		SigningAgent:           agent,
		Timestamper:            so.Timestamper,
		TSARootCAs:             so.TSARootCAs,
		TSARevocationValidator: so.TSARevocationValidator,
	}
	if opts.Expiry != 0 {
		req.Expiry = when.Add(opts.Expiry)
	}
	if opts.UnknownCritical {
		req.ExtendedSignedAttributes = []signature.Attribute{{Key: UnknownCriticalAttribute, Critical: true, Value: "1"}}
	}
	env, err := signature.NewEnvelope(opts.Format)
	if err != nil {
		t.Fatalf("notationtest: %v", err)
	}
	sig, err := env.Sign(req.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("notationtest: notation-core-go signing: %v", err)
	}
	return sig
}

// signingTime reads the signing time back from an envelope.
func signingTime(t testing.TB, mediaType string, sig []byte) time.Time {
	t.Helper()
	env, err := signature.ParseEnvelope(mediaType, sig)
	if err != nil {
		t.Fatalf("notationtest: parsing the envelope: %v", err)
	}
	content, err := env.Content()
	if err != nil {
		t.Fatalf("notationtest: reading the envelope: %v", err)
	}
	return content.SignerInfo.SignedAttributes.SigningTime
}

// annotations are the signature manifest's annotations as notation-go writes
// them.
func annotations(t testing.TB, chain []*x509.Certificate, when time.Time) map[string]string {
	t.Helper()
	var thumbprints []string
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		thumbprints = append(thumbprints, hex.EncodeToString(sum[:]))
	}
	raw, err := json.Marshal(thumbprints)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"io.cncf.notary.x509chain.thumbprint#S256": string(raw),
		ocispec.AnnotationCreated:                  when.Format(time.RFC3339),
	}
}

// tamper rewrites the envelope's payload, keeping everything else.
func tamper(t testing.TB, mediaType string, sig []byte) []byte {
	t.Helper()
	edit := func(payload []byte) []byte {
		var p struct {
			TargetArtifact ocispec.Descriptor `json:"targetArtifact"`
		}
		if err := json.Unmarshal(payload, &p); err != nil {
			t.Fatalf("notationtest: the payload: %v", err)
		}
		if p.TargetArtifact.Annotations == nil {
			p.TargetArtifact.Annotations = map[string]string{}
		}
		p.TargetArtifact.Annotations["io.signet.test.tampered"] = "true"
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	switch mediaType {
	case JWS:
		// JWS JSON serialization: {"payload": base64url, "protected", "header", "signature"}.
		var env map[string]json.RawMessage
		if err := json.Unmarshal(sig, &env); err != nil {
			t.Fatalf("notationtest: the JWS envelope: %v", err)
		}
		var b64 string
		if err := json.Unmarshal(env["payload"], &b64); err != nil {
			t.Fatalf("notationtest: the JWS payload: %v", err)
		}
		payload, err := base64.RawURLEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("notationtest: the JWS payload: %v", err)
		}
		env["payload"], _ = json.Marshal(base64.RawURLEncoding.EncodeToString(edit(payload)))
		out, err := json.Marshal(env)
		if err != nil {
			t.Fatal(err)
		}
		return out
	case COSE:
		// COSE_Sign1, tag 18: [protected, unprotected, payload, signature].
		var tag cbor.RawTag
		if err := cbor.Unmarshal(sig, &tag); err != nil {
			t.Fatalf("notationtest: the COSE envelope: %v", err)
		}
		var parts []cbor.RawMessage
		if err := cbor.Unmarshal(tag.Content, &parts); err != nil || len(parts) != 4 {
			t.Fatalf("notationtest: the COSE_Sign1 message: %v (%d parts)", err, len(parts))
		}
		var payload []byte
		if err := cbor.Unmarshal(parts[2], &payload); err != nil {
			t.Fatalf("notationtest: the COSE payload: %v", err)
		}
		var err error
		if parts[2], err = cbor.Marshal(edit(payload)); err != nil {
			t.Fatal(err)
		}
		if tag.Content, err = cbor.Marshal(parts); err != nil {
			t.Fatal(err)
		}
		out, err := cbor.Marshal(tag)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	t.Fatalf("notationtest: unknown envelope media type %q", mediaType)
	return nil
}

// recordingRepository remembers the signature notation.Sign pushes.
type recordingRepository struct {
	notationregistry.Repository
	blob     []byte
	manifest ocispec.Descriptor
}

func (r *recordingRepository) PushSignature(ctx context.Context, mediaType string, blob []byte, subject ocispec.Descriptor, annotations map[string]string) (ocispec.Descriptor, ocispec.Descriptor, error) {
	blobDesc, manifest, err := r.Repository.PushSignature(ctx, mediaType, blob, subject, annotations)
	if err == nil {
		r.blob, r.manifest = blob, manifest
	}
	return blobDesc, manifest, err
}
