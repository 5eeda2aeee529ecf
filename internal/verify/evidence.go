package verify

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/registry"
)

// Annotations of cosign's legacy signature and attestation layers.
const (
	annotationSignature   = "dev.cosignproject.cosign/signature"
	annotationCertificate = "dev.sigstore.cosign/certificate"
	annotationChain       = "dev.sigstore.cosign/chain"
	annotationRekorBundle = "dev.sigstore.cosign/bundle"
	annotationRFC3161     = "dev.sigstore.cosign/rfc3161timestamp"
)

// CosignSignPredicateType is the predicate type of the in-toto statement cosign
// signs when it stores an image signature as a Sigstore bundle.
const CosignSignPredicateType = "https://sigstore.dev/cosign/sign/v1"

// candidate is one piece of evidence in the single form every check uses.
type candidate struct {
	ev     registry.Evidence
	bundle *bundle.Bundle
	// payload is the signed simple-signing payload of a legacy signature; nil
	// for DSSE envelopes, whose statement binds the digest itself.
	payload []byte
	// predicateType is read from the envelope before verification, only to route
	// the candidate to signature or attestation checks; checks use the verified
	// statement.
	predicateType string
	// rfc3161 is the RFC 3161 timestamp of a legacy attestation. cosign
	// stamps the whole envelope there (a legacy attestation has no separate
	// signature to stamp), which a bundle cannot express, so it is verified
	// beside the bundle over ev.Content.
	rfc3161 []byte
	// artifact is what a bundle given to VerifyArtifact is for; nil for
	// image evidence.
	artifact *Artifact
	// droppedCert: bundle is the key view of a bundle that carries a
	// certificate (keyView).
	droppedCert bool
}

func (c candidate) isSignature() bool {
	return c.payload != nil || c.predicateType == CosignSignPredicateType || isNotary(c.ev)
}

// toCandidate converts evidence in any storage format into a Sigstore bundle.
func toCandidate(ev registry.Evidence) (candidate, error) {
	switch ev.Kind {
	case registry.NotarySignature:
		// Verified by notation-go from ev itself (verifyNotation).
		return candidate{ev: ev}, nil
	case registry.SigstoreBundle:
		b, err := parseImageBundle(ev.Content)
		if err != nil {
			return candidate{}, fmt.Errorf("malformed bundle: %w", err)
		}
		c := candidate{ev: ev, bundle: b}
		env := b.GetDsseEnvelope()
		if env == nil {
			return candidate{}, fmt.Errorf("bundle holds a message signature, which cannot bind an image digest; image signatures must be DSSE in-toto statements")
		}
		c.predicateType = peekPredicateType(env.GetPayload())
		return c, nil
	case registry.LegacySignature:
		sig, err := base64.StdEncoding.DecodeString(ev.Annotations[annotationSignature])
		if err != nil || len(sig) == 0 {
			return candidate{}, fmt.Errorf("signature annotation missing or not base64")
		}
		sum := sha256.Sum256(ev.Content)
		pb, err := legacyBundle(ev.Annotations, true)
		if err != nil {
			return candidate{}, err
		}
		pb.Content = &protobundle.Bundle_MessageSignature{MessageSignature: &protocommon.MessageSignature{
			MessageDigest: &protocommon.HashOutput{Algorithm: protocommon.HashAlgorithm_SHA2_256, Digest: sum[:]},
			Signature:     sig,
		}}
		b, err := bundle.NewBundle(pb)
		if err != nil {
			return candidate{}, fmt.Errorf("legacy signature: %w", err)
		}
		return candidate{ev: ev, bundle: b, payload: ev.Content}, nil
	case registry.LegacyAttestation:
		var env struct {
			PayloadType string `json:"payloadType"`
			Payload     []byte `json:"payload"`
			Signatures  []struct {
				KeyID string `json:"keyid"`
				Sig   []byte `json:"sig"`
			} `json:"signatures"`
		}
		if err := json.Unmarshal(ev.Content, &env); err != nil {
			return candidate{}, fmt.Errorf("malformed DSSE envelope: %w", err)
		}
		if len(env.Signatures) == 0 {
			return candidate{}, fmt.Errorf("DSSE envelope has no signature")
		}
		pb, err := legacyBundle(ev.Annotations, false)
		if err != nil {
			return candidate{}, err
		}
		ts, err := legacyTimestamp(ev.Annotations)
		if err != nil {
			return candidate{}, err
		}
		penv := &protodsse.Envelope{Payload: env.Payload, PayloadType: env.PayloadType}
		for _, s := range env.Signatures {
			penv.Signatures = append(penv.Signatures, &protodsse.Signature{Sig: s.Sig, Keyid: s.KeyID})
		}
		pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: penv}
		b, err := bundle.NewBundle(pb)
		if err != nil {
			return candidate{}, fmt.Errorf("legacy attestation: %w", err)
		}
		return candidate{ev: ev, bundle: b, predicateType: peekPredicateType(env.Payload), rfc3161: ts}, nil
	}
	return candidate{}, fmt.Errorf("unknown evidence kind %d", ev.Kind)
}

// legacyBundle builds the verification material of a v0.1 bundle from the
// annotations of a legacy layer: the certificate (or a key hint), the Rekor
// entry with its signed entry timestamp, and, when withTimestamp is set,
// the RFC 3161 timestamp over the signature.
func legacyBundle(ann map[string]string, withTimestamp bool) (*protobundle.Bundle, error) {
	mediaType, _ := bundle.MediaTypeString("0.1")
	pb := &protobundle.Bundle{MediaType: mediaType, VerificationMaterial: &protobundle.VerificationMaterial{}}
	vm := pb.VerificationMaterial
	if certPEM := ann[annotationCertificate]; certPEM != "" {
		block, _ := pem.Decode([]byte(certPEM))
		if block == nil || block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("certificate annotation is not a PEM certificate")
		}
		vm.Content = &protobundle.VerificationMaterial_X509CertificateChain{
			X509CertificateChain: &protocommon.X509CertificateChain{Certificates: []*protocommon.X509Certificate{{RawBytes: block.Bytes}}},
		}
	} else {
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: ""}}
	}
	if raw := ann[annotationRekorBundle]; raw != "" {
		entry, err := legacyRekorEntry([]byte(raw))
		if err != nil {
			return nil, err
		}
		vm.TlogEntries = []*protorekor.TransparencyLogEntry{entry}
	}
	if !withTimestamp {
		return pb, nil
	}
	ts, err := legacyTimestamp(ann)
	if err != nil {
		return nil, err
	}
	if ts != nil {
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts}},
		}
	}
	return pb, nil
}

// legacyTimestamp reads cosign's RFC 3161 timestamp annotation: nil when
// there is none.
func legacyTimestamp(ann map[string]string) ([]byte, error) {
	raw := ann[annotationRFC3161]
	if raw == "" {
		return nil, nil
	}
	var ts struct {
		SignedRFC3161Timestamp []byte `json:"SignedRFC3161Timestamp"`
	}
	if err := json.Unmarshal([]byte(raw), &ts); err != nil || len(ts.SignedRFC3161Timestamp) == 0 {
		return nil, fmt.Errorf("malformed RFC 3161 timestamp annotation")
	}
	return ts.SignedRFC3161Timestamp, nil
}

// legacyRekorEntry converts cosign's Rekor bundle annotation (the entry body
// and its signed entry timestamp) into a transparency log entry.
func legacyRekorEntry(raw []byte) (*protorekor.TransparencyLogEntry, error) {
	var rb struct {
		SignedEntryTimestamp []byte `json:"SignedEntryTimestamp"`
		Payload              struct {
			Body           []byte `json:"body"`
			IntegratedTime int64  `json:"integratedTime"`
			LogIndex       int64  `json:"logIndex"`
			LogID          string `json:"logID"`
		} `json:"Payload"`
	}
	if err := json.Unmarshal(raw, &rb); err != nil {
		return nil, fmt.Errorf("malformed Rekor bundle annotation: %w", err)
	}
	logID, err := hex.DecodeString(rb.Payload.LogID)
	if err != nil || len(rb.Payload.Body) == 0 || len(rb.SignedEntryTimestamp) == 0 {
		return nil, fmt.Errorf("malformed Rekor bundle annotation: missing body, log ID or signed entry timestamp")
	}
	var kv struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(rb.Payload.Body, &kv); err != nil || kv.Kind == "" {
		return nil, fmt.Errorf("malformed Rekor entry body")
	}
	return &protorekor.TransparencyLogEntry{
		LogIndex:          rb.Payload.LogIndex,
		LogId:             &protocommon.LogId{KeyId: logID},
		KindVersion:       &protorekor.KindVersion{Kind: kv.Kind, Version: kv.APIVersion},
		IntegratedTime:    rb.Payload.IntegratedTime,
		InclusionPromise:  &protorekor.InclusionPromise{SignedEntryTimestamp: rb.SignedEntryTimestamp},
		CanonicalizedBody: rb.Payload.Body,
	}, nil
}

// peekPredicateType reads the predicate type of an unverified in-toto
// statement, for routing only.
func peekPredicateType(payload []byte) string {
	var s struct {
		PredicateType string `json:"predicateType"`
	}
	if json.Unmarshal(payload, &s) != nil {
		return ""
	}
	return strings.TrimSpace(s.PredicateType)
}

// parseImageBundle parses a bundle attached to an image. cosign sign
// --certificate-chain (cosign 2.5 to 3) writes a v0.3 bundle whose
// verification material is the whole chain, which the bundle specification
// allows only before v0.3 and sigstore-go refuses; the leaf is kept and the
// rest dropped, as sigstore-go drops a chain's intermediates from older
// bundles: trust in a chain comes from the policy, never from the
// signature.
func parseImageBundle(data []byte) (*bundle.Bundle, error) {
	pb := new(protobundle.Bundle)
	if err := protojson.Unmarshal(data, pb); err != nil {
		return nil, err
	}
	if chain := pb.GetVerificationMaterial().GetX509CertificateChain(); chain != nil && len(chain.GetCertificates()) > 0 &&
		(pb.GetMediaType() == "application/vnd.dev.sigstore.bundle.v0.3+json" || pb.GetMediaType() == "application/vnd.dev.sigstore.bundle+json;version=0.3") {
		pb.VerificationMaterial.Content = &protobundle.VerificationMaterial_Certificate{Certificate: chain.GetCertificates()[0]}
	}
	return bundle.NewBundle(pb)
}

// carriesCertificate reports whether b's verification material is a
// certificate or a certificate chain rather than a key hint.
func carriesCertificate(b *bundle.Bundle) bool {
	vm := b.GetVerificationMaterial()
	return vm.GetCertificate() != nil || vm.GetX509CertificateChain() != nil
}

// keyView is cand as a key authority verifies it: when its bundle carries
// a certificate (cosign sign --key --certificate, in either storage
// format), a bundle whose verification material is the key hint instead,
// with the same content, log entries and timestamps, so sigstore-go checks
// the signature with the trusted key and never the certificate, which is
// neither trusted nor required (as cosign verify --key). cand is returned
// as it is, without a copy, when it carries no certificate.
//
// A certificate-carrying signature's log entry names the certificate, not
// the key, so it cannot be compared with the key: with the log required
// the signature is denied (tlogDenial says so); under insecureIgnoreTlog
// (ignoreTlog) its log entries are dropped with the certificate rather
// than checked against a key they do not name.
func keyView(cand candidate, ignoreTlog bool) (candidate, error) {
	if !carriesCertificate(cand.bundle) {
		return cand, nil
	}
	orig := cand.bundle.Bundle
	vm := orig.GetVerificationMaterial()
	pb := &protobundle.Bundle{
		MediaType: orig.GetMediaType(),
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{}},
			TlogEntries:               vm.GetTlogEntries(),
			TimestampVerificationData: vm.GetTimestampVerificationData(),
		},
		Content: orig.Content,
	}
	if ignoreTlog {
		pb.VerificationMaterial.TlogEntries = nil
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return cand, fmt.Errorf("bundle without its certificate: %w", err)
	}
	cand.bundle = b
	cand.droppedCert = true
	return cand, nil
}
