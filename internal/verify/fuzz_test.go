package verify

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"testing"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
)

// fuzzPolicy is a key-based policy with a fresh key: nothing the fuzzer
// produces can verify, so every input must be denied, never panic.
func fuzzPolicy(f *testing.F) *Compiled {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	k, err := NewPublicKey(&priv.PublicKey)
	if err != nil {
		f.Fatal(err)
	}
	c, err := Compile(Policy{Name: "fuzz", Authorities: []Authority{
		{Name: "sig", Keys: []PublicKey{k}, InsecureIgnoreTlog: true},
		{Name: "att", Keys: []PublicKey{k}, InsecureIgnoreTlog: true, Attestations: []Attestation{{PredicateType: "https://example.org/p", Conditions: []string{"predicate.ok == true"}}}},
	}})
	if err != nil {
		f.Fatal(err)
	}
	return c
}

const fuzzDigest = "sha256:0000000000000000000000000000000000000000000000000000000000000001"

// FuzzEvidence feeds arbitrary layer content and annotations through the
// conversion of every storage format and the verifier.
func FuzzEvidence(f *testing.F) {
	payload := []byte(`{"critical":{"identity":{"docker-reference":"example.org/app"},"image":{"docker-manifest-digest":"` + fuzzDigest + `"},"type":"cosign container image signature"},"optional":null}`)
	sig := base64.StdEncoding.EncodeToString([]byte("not a signature"))
	f.Add(uint8(1), payload, sig, "", `{"SignedEntryTimestamp":"AA==","Payload":{"body":"e30=","integratedTime":1,"logIndex":1,"logID":"00"}}`, "")
	f.Add(uint8(2), []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"AA=="}]}`), "", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n", "", `{"SignedRFC3161Timestamp":"AA=="}`)
	f.Add(uint8(3), []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`), "", "", "", "")
	f.Add(uint8(3), []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle+json;version=0.1","verificationMaterial":{"x509CertificateChain":{"certificates":[{"rawBytes":"AA=="}]},"tlogEntries":[{"logIndex":"1","logId":{"keyId":"AA=="},"kindVersion":{"kind":"hashedrekord","version":"0.0.1"},"integratedTime":"1","inclusionPromise":{"signedEntryTimestamp":"AA=="},"canonicalizedBody":"e30="}]},"messageSignature":{"messageDigest":{"algorithm":"SHA2_256","digest":"AA=="},"signature":"AA=="}}`), "", "", "", "")
	p := fuzzPolicy(f)
	ref, err := reference.Parse("example.org/app@" + fuzzDigest)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, kind uint8, content []byte, sig, cert, rekorBundle, tsa string) {
		ev := registry.Evidence{
			Kind:     registry.Kind(kind%4 + 1),
			Manifest: "sha256:" + hex.EncodeToString(sha256.New().Sum(nil)),
			Content:  content,
			Annotations: map[string]string{
				annotationSignature:   sig,
				annotationCertificate: cert,
				annotationRekorBundle: rekorBundle,
				annotationRFC3161:     tsa,
			},
		}
		res := p.Verify(t.Context(), Request{Image: ref, Digest: fuzzDigest, Evidence: []registry.Evidence{ev, ev}})
		if res.Verified || res.Err == nil {
			t.Fatalf("fuzzed evidence verified with a key nobody holds: %+v", res)
		}
		_ = res.Err.Error()
	})
}

// FuzzSimpleSigning parses arbitrary signed payloads.
func FuzzSimpleSigning(f *testing.F) {
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":"example.org/app"},"image":{"docker-manifest-digest":"` + fuzzDigest + `"},"type":"cosign container image signature"},"optional":null}`))
	f.Add([]byte(`{"critical":{"type":"atomic container signature","image":{}}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		ss, err := parseSimpleSigning(payload)
		if err == nil && ss.Critical.Image.DockerManifestDigest == "" {
			t.Fatalf("accepted a payload without a digest: %q", payload)
		}
		ref, _ := reference.Parse("example.org/app:v1")
		for _, mode := range []SignedIdentity{MatchRepository, MatchExact, MatchRepoDigestOrExact} {
			_ = checkSignedIdentity(mode, ref, ss.Critical.Identity.DockerReference)
		}
	})
}

// FuzzJSONShape: on valid JSON, checkJSONShape refuses exactly what has
// more items (array elements and object members, duplicates included) or
// deeper nesting than allowed, as counted from encoding/json's tokens.
func FuzzJSONShape(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `[[]]`, `1`, `"a"`, `{"a":[1,2,{"b":null}],"c":"[{,\""}`,
		`[[[[1]]]]`, `{"a":1,"a":2}`, `[1,2,3,4,5,6]`, ` [ 1 , [ ] , { } ] `, `{"a":{"b":{}},"c":[]}`,
	} {
		f.Add([]byte(s))
	}
	const maxDepth, maxItems = 3, 5
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			_ = checkJSONShape(data, maxDepth, maxItems) // must not panic
			return
		}
		type container struct{ object, wantKey bool }
		var stack []container
		depth, items := 0, 0
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			tok, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("valid JSON does not tokenize: %v", err)
			}
			if d, ok := tok.(json.Delim); ok && (d == ']' || d == '}') {
				stack = stack[:len(stack)-1]
				continue
			}
			if n := len(stack); n > 0 {
				top := &stack[n-1]
				switch {
				case top.object && top.wantKey:
					items++ // a member
					top.wantKey = false
					continue
				case top.object:
					top.wantKey = true
				default:
					items++ // an element
				}
			}
			if d, ok := tok.(json.Delim); ok {
				stack = append(stack, container{object: d == '{', wantKey: true})
				depth = max(depth, len(stack))
			}
		}
		want := depth <= maxDepth && items <= maxItems
		if err := checkJSONShape(data, maxDepth, maxItems); (err == nil) != want {
			t.Errorf("%s: depth %d, %d items: checkJSONShape says %v", data, depth, items, err)
		}
	})
}
