package policy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
)

// fuzzKey is a fixed ECDSA P-256 public key, so the seed corpus is stable.
const fuzzKey = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEudcSqe0CozOTn+GbdWRVxnNXqFX8
0HX7qh7jo/mx2CbtcVpbyBtzKFzob3DLXf2h/py1cXIgrZZ95UZcvvpx2g==
-----END PUBLIC KEY-----
`

// fuzzSeeds are specs in the shape of compile_test's, valid then malformed;
// KEY stands for fuzzKey as a JSON string.
var fuzzSeeds = []string{
	`{"images":[{"glob":"registry.example.org/**"}],"authorities":[{"name":"ci","key":{"data":KEY}}]}`,
	`{"images":[{"prefix":"registry.example.org/team"}],"signedIdentity":"matchRepoDigestOrExact","authorities":[{"keyless":{"identities":[{"issuer":"https://token.actions.githubusercontent.com","subjectRegExp":"https://github.com/acme/.+"}]}}]}`,
	`{"images":[{"glob":"nginx"}],"authorities":[{"insecureIgnoreTlog":true,"key":{"data":KEY},"attestations":[{"predicateType":"https://slsa.dev/provenance/v1","match":"all","conditions":["predicate.builder.id == 'https://github.com/actions/runner'"]}]}]}`,
	`{"images":[{"glob":"*.example.org/app"},{"glob":"registry.example.org/**/app"},{"prefix":"docker.io/bitnami"}],"excludeImages":[{"glob":"registry.example.org/team/*"}],"mode":"warn","onError":"allow","digest":"require","platforms":"all","authorities":[{"static":{"action":"pass"}}]}`,
	`{"images":[{"glob":"registry.example.org/**"}],"threshold":2,"match":{"namespaceSelector":{"matchLabels":{"env":"prod"},"matchExpressions":[{"key":"tier","operator":"In","values":["web"]}]},"kinds":["Pod","Deployment"]},"authorities":[{"static":{"action":"fail","message":"no"}},{"name":"ci","insecureIgnoreTlog":true,"key":{"data":KEY},"source":{"oci":"sigs.example.org/acme/sigs","signaturePullSecrets":[{"name":"reader"}]}}]}`,
	`{"images":[{"glob":"registry.example.org/**"}],"authorities":[{"key":{"secretRef":{"name":"keys","namespace":"signet","key":"cosign.pub"}}},{"keyless":{"trustRootRef":"airgap","identities":[{"issuerRegExp":"https://.+","subject":"me@example.org"}]}}]}`,
	`{"images":[{"glob":"registry.example.org/**"}],"authorities":[{"keyless":{"identities":[{"issuer":"x","subjectRegExp":"(unclosed"}]}}]}`,
	`{"images":[{"glob":"registry.example.org/**"}],"authorities":[{"key":{"data":KEY},"attestations":[{"predicateType":"p","conditions":["predicate.builder.id =="]}]}]}`,
	`{"images":[{"glob":"registry.example.org/app:v1"}],"authorities":[]}`,
	`{"images":[{"glob":"registry.example.org/**"}],"authorities":[{"key":{"data":KEY,"secretRef":{"name":"keys"}}}],"match":{"namespaceSelector":{"matchExpressions":[{"key":"env","operator":"Among"}]}}}`,
}

// FuzzCompile: a malformed policy is rejected with the field and the
// reason; nothing panics; compiling is deterministic; whatever compiles
// can be matched against images.
func FuzzCompile(f *testing.F) {
	key, err := json.Marshal(fuzzKey)
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range fuzzSeeds {
		f.Add([]byte(strings.ReplaceAll(s, "KEY", string(key))))
	}
	var refs []reference.Reference
	for _, s := range []string{"registry.example.org/team/app:v1", "nginx", "a.example.org/app", "localhost:5000/x/y/z@sha256:" + strings.Repeat("0", 64)} {
		ref, err := reference.Parse(s)
		if err != nil {
			f.Fatal(err)
		}
		refs = append(refs, ref)
	}
	target := Target{Namespace: "team-a", NamespaceLabels: map[string]string{"env": "prod", "tier": "web"}, Kind: "Pod"}

	f.Fuzz(func(t *testing.T, data []byte) {
		var spec v1alpha1.ImagePolicySpec
		if json.Unmarshal(data, &spec) != nil {
			return
		}
		// fakeResolver{} has the default trust root and nothing else: every
		// Secret and named TrustRoot is "not found".
		for _, tc := range []struct {
			o Object
			r Resolver
		}{
			{Object{Kind: KindClusterImagePolicy, Name: "p", Spec: spec}, nil},
			{Object{Kind: KindClusterImagePolicy, Name: "p", Spec: spec}, fakeResolver{}},
			{Object{Kind: KindImagePolicy, Namespace: "team-a", Name: "p", Spec: spec}, fakeResolver{}},
		} {
			p := CompileObject(t.Context(), tc.o, tc.r)
			if again := CompileObject(t.Context(), tc.o, tc.r); again.Hash != p.Hash || (again.Err == nil) != (p.Err == nil) {
				t.Fatalf("%s compiled twice: hash %s then %s, errors %v then %v", tc.o.ID(), p.Hash, again.Hash, p.Err, again.Err)
			}
			if p.Err == nil {
				if p.Verifier == nil {
					t.Fatalf("%s: valid policy without a verifier", tc.o.ID())
				}
				if _, err := p.Authorities(t.Context(), tc.r); err != nil {
					t.Fatalf("%s: valid, but its authorities do not compile again: %v", tc.o.ID(), err)
				}
			} else {
				if p.Verifier != nil {
					t.Fatalf("%s: invalid policy with a verifier", tc.o.ID())
				}
				if len(p.Err.Errors) == 0 || !strings.HasPrefix(p.Err.Error(), tc.o.ID()+" is invalid: ") {
					t.Fatalf("error %q does not name the policy and its problems", p.Err)
				}
				for _, fe := range p.Err.Errors {
					if !strings.HasPrefix(fe.Path, "spec.") || fe.Reason == "" {
						t.Fatalf("error %q does not name a spec field and a reason", fe)
					}
				}
			}
			snap, err := NewSnapshot([]*Policy{p}, Config{})
			if err != nil {
				t.Fatal(err)
			}
			for _, ref := range refs {
				snap.Match(ref, target)
			}
			p.Patterns()
		}
	})
}
