package policyjson

import (
	"bytes"
	"encoding/json"
	"sort"
	"strings"
)

// File is a containers-policy.json document, the subset signet writes.
type File struct {
	Default    []Requirement                       `json:"default"`
	Transports map[string]map[string][]Requirement `json:"transports,omitempty"`
}

// Requirement is one policy requirement: insecureAcceptAnything, reject or
// sigstoreSigned.
type Requirement struct {
	Type string `json:"type"`
	// KeyData is the PEM public key the signature must verify with; every
	// runtime reads it.
	KeyData []byte `json:"keyData,omitempty"`
	// KeyDatas are PEM public keys, a signature by any one passes; only
	// with more than one key, for runtimes that read it (containers-image
	// v5.33).
	KeyDatas [][]byte `json:"keyDatas,omitempty"`
	// Fulcio trusts certificates of these CAs for one email and issuer.
	Fulcio *Fulcio `json:"fulcio,omitempty"`
	// PKI trusts certificates of an enterprise PKI for one email and/or
	// hostname (containers-image v5.35).
	PKI *PKI `json:"pki,omitempty"`
	// RekorPublicKeyData(s) require a Rekor SET by (one of) these keys;
	// the list only with more than one key (containers-image v5.33).
	RekorPublicKeyData  []byte   `json:"rekorPublicKeyData,omitempty"`
	RekorPublicKeyDatas [][]byte `json:"rekorPublicKeyDatas,omitempty"`
	// SignedIdentity says how the signed docker-reference must relate to
	// the image reference.
	SignedIdentity *SignedIdentity `json:"signedIdentity,omitempty"`
}

// Fulcio is the fulcio block of a sigstoreSigned requirement.
type Fulcio struct {
	CAData       []byte `json:"caData"`
	OIDCIssuer   string `json:"oidcIssuer"`
	SubjectEmail string `json:"subjectEmail"`
}

// PKI is the pki block of a sigstoreSigned requirement: PEM certificates
// (base64 in the JSON, as every []byte field), and the identity, whose
// fields given must all match.
type PKI struct {
	CARootsData         []byte `json:"caRootsData"`
	CAIntermediatesData []byte `json:"caIntermediatesData,omitempty"`
	SubjectEmail        string `json:"subjectEmail,omitempty"`
	SubjectHostname     string `json:"subjectHostname,omitempty"`
}

// SignedIdentity is a policy reference match (matchRepository, matchExact).
type SignedIdentity struct {
	Type string `json:"type"`
}

// Requirement types.
const (
	TypeAccept         = "insecureAcceptAnything"
	TypeReject         = "reject"
	TypeSigstoreSigned = "sigstoreSigned"
)

// TransportDocker is the transport CRI-O pulls through.
const TransportDocker = "docker"

var (
	accept = Requirement{Type: TypeAccept}
	reject = Requirement{Type: TypeReject}
)

// MarshalIndent renders the file as indented JSON with a final newline;
// the output is stable for equal files (scopes sorted), so a writer can
// compare bytes to skip unchanged files.
func (f *File) MarshalIndent() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil { // encoding/json sorts map keys
		return nil, err
	}
	return buf.Bytes(), nil
}

// Registries is the registries.d content that makes the runtime read
// sigstore attachments for the scopes with signature requirements.
type Registries struct {
	// Scopes are the docker namespaces ("" is every image:
	// default-docker), sorted.
	Scopes []string
}

// YAML renders a registries.d file.
func (r Registries) YAML() []byte {
	if len(r.Scopes) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString("# Written by signet: read cosign signatures (sha256-<digest>.sig tags) for the\n# scopes whose policy.json requirements verify signatures.\n")
	scopes := append([]string(nil), r.Scopes...)
	sort.Strings(scopes)
	var named []string
	for _, s := range scopes {
		if s == "" {
			b.WriteString("default-docker:\n  use-sigstore-attachments: true\n")
			continue
		}
		named = append(named, s)
	}
	if len(named) > 0 {
		b.WriteString("docker:\n")
		for _, s := range named {
			q, _ := json.Marshal(s) // a JSON string is a YAML double-quoted string
			b.WriteString("  " + string(q) + ":\n    use-sigstore-attachments: true\n")
		}
	}
	return []byte(b.String())
}
