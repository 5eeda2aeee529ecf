package sigstoretest

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"google.golang.org/protobuf/encoding/protojson"
)

// The annotations cosign writes on the layers of legacy .sig and .att manifests.
const (
	AnnotationSignature   = "dev.cosignproject.cosign/signature"
	AnnotationCertificate = "dev.sigstore.cosign/certificate"
	AnnotationChain       = "dev.sigstore.cosign/chain"
	AnnotationBundle      = "dev.sigstore.cosign/bundle"
	AnnotationRFC3161     = "dev.sigstore.cosign/rfc3161timestamp"
)

// Media types of what this package writes.
const (
	// SimpleSigningMediaType is the layer media type of a legacy signature.
	SimpleSigningMediaType = "application/vnd.dev.cosign.simplesigning.v1+json"
	// DSSEMediaType is the layer media type of a legacy attestation.
	DSSEMediaType = "application/vnd.dsse.envelope.v1+json"
	// BundleMediaType is the media type of a Sigstore bundle v0.3.
	BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// InTotoPayloadType is the DSSE payload type of in-toto statements.
	InTotoPayloadType = "application/vnd.in-toto+json"
	// CosignSignPredicateType is the predicate type of the statement cosign
	// signs when it stores an image signature as a bundle.
	CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"
)

// SimpleSigning is the payload cosign signs for an image in its legacy
// format: the repository and the manifest digest ("sha256:<hex>").
func SimpleSigning(dockerReference, digest string) []byte {
	type identity struct {
		DockerReference string `json:"docker-reference"`
	}
	type image struct {
		DockerManifestDigest string `json:"docker-manifest-digest"`
	}
	type critical struct {
		Identity identity `json:"identity"`
		Image    image    `json:"image"`
		Type     string   `json:"type"`
	}
	raw, err := json.Marshal(struct {
		Critical critical `json:"critical"`
		Optional any      `json:"optional"`
	}{Critical: critical{identity{dockerReference}, image{digest}, "cosign container image signature"}})
	if err != nil {
		panic(err) // static types: cannot fail
	}
	return raw
}

// Statement is an in-toto v1 statement of predicateType about one subject,
// name at digest ("sha256:<hex>"). A nil predicate is written as {}.
func Statement(t testing.TB, predicateType string, predicate any, name, digest string) []byte {
	t.Helper()
	if predicate == nil {
		predicate = map[string]any{}
	}
	alg, hex, _ := strings.Cut(digest, ":")
	raw, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": name, "digest": map[string]string{alg: hex}}},
		"predicateType": predicateType,
		"predicate":     predicate,
	})
	if err != nil {
		t.Fatalf("sigstoretest: encoding a statement: %v", err)
	}
	return raw
}

// SignLegacy signs payload (a simple-signing document) keylessly (or with
// o.Certificate) and returns the annotations cosign writes on the legacy
// .sig layer: the signature, the certificate and its chain, the Rekor
// bundle (a hashedrekord entry with its SET) and, unless o.NoTimestamp,
// the RFC 3161 timestamp.
func (s *Sigstore) SignLegacy(t testing.TB, payload []byte, o SignOptions) map[string]string {
	t.Helper()
	legacyOnly(t, o)
	sg := s.signerFor(t, o)
	sig := sign(t, sg.key, payload)
	ann := s.legacyAnnotations(t, sg, s.hashedRekord(t, payload, sig, certPEM(sg.cert), o), sig, o)
	ann[AnnotationSignature] = base64.StdEncoding.EncodeToString(sig)
	return ann
}

// AttestLegacy signs statement (an in-toto statement) keylessly (or with
// o.Certificate) into a DSSE envelope and returns the envelope, the content of a legacy .att layer, with the
// annotations cosign writes on it: an empty signature annotation, a dsse
// entry in the Rekor bundle, and an RFC 3161 timestamp over the whole
// envelope (cosign timestamps the layer content of attestations, and the
// raw signature of signatures).
func (s *Sigstore) AttestLegacy(t testing.TB, statement []byte, o SignOptions) (envelope []byte, annotations map[string]string) {
	t.Helper()
	legacyOnly(t, o)
	sg := s.signerFor(t, o)
	env, _ := envelopeOf(t, sg.key, statement)
	ann := s.legacyAnnotations(t, sg, s.dsseEntry(t, env, certPEM(sg.cert), o), env, o)
	ann[AnnotationSignature] = "" // cosign writes it empty: the signature is in the envelope
	return env, ann
}

// legacyAnnotations are the annotations of a legacy layer signed by sg
// (a certificate); the RFC 3161 timestamp is over stamped.
func (s *Sigstore) legacyAnnotations(t testing.TB, sg signer, entry logEntry, stamped []byte, o SignOptions) map[string]string {
	t.Helper()
	ann := map[string]string{
		AnnotationCertificate: string(certPEM(sg.cert)),
		AnnotationBundle:      entry.legacyAnnotation(t, s),
	}
	if len(sg.chain) > 0 {
		var chain []byte
		for _, c := range sg.chain {
			chain = append(chain, certPEM(c)...)
		}
		ann[AnnotationChain] = string(chain)
	}
	if !o.NoTimestamp {
		raw, err := json.Marshal(struct {
			SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
		}{s.timestamp(t, stamped, o.signedAt())})
		if err != nil {
			t.Fatal(err)
		}
		ann[AnnotationRFC3161] = string(raw)
	}
	return ann
}

// legacyOnly rejects the options that only bundles have.
func legacyOnly(t testing.TB, o SignOptions) {
	t.Helper()
	if o.RekorV2 || o.BundleVersion != "" || o.Key != nil {
		t.Fatal("sigstoretest: RekorV2, BundleVersion and Key are options of bundles, not of legacy layers")
	}
}

// Bundle signs statement (an in-toto statement) into a Sigstore bundle
// JSON (v0.3 unless o.BundleVersion): a DSSE envelope, the leaf certificate
// (Fulcio's or o.Certificate's; or o.Key's hint), a log entry and unless o.NoTimestamp an RFC 3161
// timestamp over the signature. The log entry is a dsse v0.0.1 entry in the
// Rekor v1 log with its SET and (bundles v0.2 on) an inclusion proof with a
// signed checkpoint, or with o.RekorV2 a hashedrekord v0.0.2 entry over the
// SHA-256 of the envelope's pre-authentication encoding in the v2 log.
func (s *Sigstore) Bundle(t testing.TB, statement []byte, o SignOptions) []byte {
	t.Helper()
	sg := s.signerFor(t, o)
	env, sig := envelopeOf(t, sg.key, statement)
	var tle *protorekor.TransparencyLogEntry
	if o.RekorV2 {
		pae := sha256.Sum256(dsse.PAE(InTotoPayloadType, statement))
		tle = s.rekorV2Entry(t, pae[:], sig, sg, o)
	} else {
		tle = s.dsseEntry(t, env, sg.verifierPEM(t), o).proto(t, s, o.BundleVersion != "0.1")
	}
	pb := s.bundle(t, sg, tle, sig, o)
	pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
		Payload: statement, PayloadType: InTotoPayloadType,
		Signatures: []*protodsse.Signature{{Sig: sig}},
	}}
	return marshalBundle(t, pb)
}

// MessageBundle signs artifact into a Sigstore bundle JSON with a message
// signature (SHA-256) and a hashedrekord entry (v0.0.1 in the v1 log, or
// v0.0.2 in the v2 log with o.RekorV2), as `cosign sign-blob --bundle`
// writes it, for verify-bundle. The other options are as for Bundle.
func (s *Sigstore) MessageBundle(t testing.TB, artifact []byte, o SignOptions) []byte {
	t.Helper()
	sg := s.signerFor(t, o)
	sig := sign(t, sg.key, artifact)
	sum := sha256.Sum256(artifact)
	var tle *protorekor.TransparencyLogEntry
	if o.RekorV2 {
		tle = s.rekorV2Entry(t, sum[:], sig, sg, o)
	} else {
		tle = s.hashedRekord(t, artifact, sig, sg.verifierPEM(t), o).proto(t, s, o.BundleVersion != "0.1")
	}
	pb := s.bundle(t, sg, tle, sig, o)
	pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
		MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
		Signature:     sig,
	}}
	return marshalBundle(t, pb)
}

// bundle is a bundle of o.BundleVersion without its content.
func (s *Sigstore) bundle(t testing.TB, sg signer, tle *protorekor.TransparencyLogEntry, sig []byte, o SignOptions) *protobundle.Bundle {
	t.Helper()
	vm := &protobundle.VerificationMaterial{TlogEntries: []*protorekor.TransparencyLogEntry{tle}}
	mediaType := BundleMediaType
	switch o.BundleVersion {
	case "", "0.3":
	case "0.1", "0.2":
		if o.RekorV2 && o.BundleVersion == "0.1" {
			t.Fatal("sigstoretest: a Rekor v2 entry has no SET, which a bundle v0.1 requires")
		}
		mediaType = "application/vnd.dev.sigstore.bundle+json;version=" + o.BundleVersion
	default:
		t.Fatalf("sigstoretest: bundle version %q: want 0.1, 0.2 or 0.3", o.BundleVersion)
	}
	switch {
	case sg.cert == nil:
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: KeyHint(t, &sg.key.PublicKey)}}
	case mediaType == BundleMediaType:
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: sg.cert.Raw}}
	default:
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{X509CertificateChain: &protocommon.X509CertificateChain{
			Certificates: []*protocommon.X509Certificate{{RawBytes: sg.cert.Raw}},
		}}
	}
	if !o.NoTimestamp {
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: s.timestamp(t, sig, o.signedAt())}},
		}
	}
	return &protobundle.Bundle{MediaType: mediaType, VerificationMaterial: vm}
}

func marshalBundle(t testing.TB, pb *protobundle.Bundle) []byte {
	t.Helper()
	raw, err := protojson.Marshal(pb)
	if err != nil {
		t.Fatalf("sigstoretest: encoding a bundle: %v", err)
	}
	return raw
}

// envelopeOf signs statement into a DSSE envelope (JSON) and returns it with
// the raw signature.
func envelopeOf(t testing.TB, key *ecdsa.PrivateKey, statement []byte) ([]byte, []byte) {
	t.Helper()
	sig := sign(t, key, dsse.PAE(InTotoPayloadType, statement))
	env, err := json.Marshal(dsse.Envelope{
		PayloadType: InTotoPayloadType,
		Payload:     base64.StdEncoding.EncodeToString(statement),
		Signatures:  []dsse.Signature{{Sig: base64.StdEncoding.EncodeToString(sig)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return env, sig
}
