package policyjson

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/root"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

type resolver struct {
	secrets map[string]map[string][]byte
	tm      root.TrustedMaterial
	// private is the TrustRoot "private".
	private root.TrustedMaterial
}

func (r resolver) SecretKeys(_ context.Context, ns, name string) (map[string][]byte, error) {
	if v, ok := r.secrets[ns+"/"+name]; ok {
		return v, nil
	}
	return nil, errors.New("no Secret " + ns + "/" + name)
}

func (r resolver) TrustedMaterial(_ context.Context, name string) (root.TrustedMaterial, error) {
	if name == "private" && r.private != nil {
		return r.private, nil
	}
	if name != "" {
		return nil, errors.New("no TrustRoot " + name)
	}
	return r.tm, nil
}

func newKey(t *testing.T) string {
	t.Helper()
	return string(sigstoretest.PublicKeyPEM(t, sigstoretest.NewKey(t)))
}

// compile turns "Kind ns/name: spec YAML" documents into compiled policies.
func compile(t *testing.T, r policy.Resolver, docs ...string) []*policy.Policy {
	t.Helper()
	var out []*policy.Policy
	for _, d := range docs {
		head, body, _ := strings.Cut(d, "\n")
		kind, id, _ := strings.Cut(head, " ")
		ns, name, ok := strings.Cut(id, "/")
		if !ok {
			ns, name = "", id
		}
		var spec v1alpha1.ImagePolicySpec
		if err := yaml.UnmarshalStrict([]byte(body), &spec); err != nil {
			t.Fatalf("%s: %v", head, err)
		}
		out = append(out, policy.CompileObject(t.Context(), policy.Object{Kind: kind, Name: name, Namespace: ns, Spec: spec}, r))
	}
	return out
}

// summary renders a file as scope → requirement summaries.
func summary(f *File) map[string][]string {
	if f == nil {
		return nil
	}
	out := map[string][]string{"default": summarize(f.Default)}
	for scope, reqs := range f.Transports[TransportDocker] {
		out["docker:"+scope] = summarize(reqs)
	}
	return out
}

func summarize(reqs []Requirement) []string {
	var out []string
	for _, r := range reqs {
		s := r.Type
		switch {
		case r.Fulcio != nil:
			s = fmt.Sprintf("fulcio %s %s", r.Fulcio.OIDCIssuer, r.Fulcio.SubjectEmail)
		case r.PKI != nil:
			s = strings.TrimSpace(fmt.Sprintf("pki %s %s", r.PKI.SubjectEmail, r.PKI.SubjectHostname))
		case r.KeyData != nil:
			s = "key"
		case r.KeyDatas != nil:
			s = fmt.Sprintf("keys %d", len(r.KeyDatas))
		}
		if r.RekorPublicKeyData != nil || r.RekorPublicKeyDatas != nil {
			s += " +rekor"
		}
		if r.SignedIdentity != nil {
			s += " " + r.SignedIdentity.Type
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestExport(t *testing.T) {
	s := sigstoretest.New(t)
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	r := resolver{tm: s.TrustedRoot(), private: sigstoretest.New(t).TrustedRoot(), secrets: map[string]map[string][]byte{
		"signet-system/ci-key": {"cosign.pub": []byte(k2)},
		"team-a/ci-key":        {"cosign.pub": []byte(k2)},
	}}
	indent := func(k string) string { return strings.ReplaceAll(strings.TrimSpace(k), "\n", "\n        ") }
	keyAuth := func(k string) string {
		return fmt.Sprintf("  - insecureIgnoreTlog: true\n    key:\n      data: |\n        %s\n", indent(k))
	}
	tlogKeyAuth := func(k string) string {
		return fmt.Sprintf("  - key:\n      data: |\n        %s\n", indent(k))
	}
	const gh = "https://github.com/login/oauth"

	for _, tc := range []struct {
		name       string
		namespace  string
		labels     map[string]string
		unmatched  policy.Action
		lossy      bool
		runtime    string // --min-runtime; the default when empty
		docs       []string
		want       map[string][]string
		wantIssues []string // "field: substring"; a refused export has File nil
		refused    bool
		wantRegs   []string
	}{{
		// Seed 003: quay.io/crio/signed must carry a key signature naming
		// the repository; everything else is rejected.
		name:      "seed 003 key policy",
		namespace: "payments",
		docs:      []string{"ClusterImagePolicy signed\nimages: [{prefix: quay.io/crio/signed}]\nsignedIdentity: matchRepository\nauthorities:\n" + keyAuth(k1)},
		want: map[string][]string{
			"default":                    {"reject"},
			"docker:quay.io/crio/signed": {"key matchRepository"},
		},
		wantRegs: []string{"quay.io/crio/signed"},
	}, {
		// signet denies what no ClusterImagePolicy selects, whatever an
		// ImagePolicy says; so does the file.
		name:      "an ImagePolicy alone does not lift the unmatched rule",
		namespace: "payments",
		docs:      []string{"ImagePolicy payments/signed\nimages: [{prefix: quay.io/crio/signed}]\nsignedIdentity: matchRepository\nauthorities:\n" + keyAuth(k1)},
		want: map[string][]string{
			"default":                    {"reject"},
			"docker:quay.io/crio/signed": {"reject"},
		},
	}, {
		name:      "under unmatched allow, an ImagePolicy alone is enforced",
		namespace: "payments",
		unmatched: "allow",
		docs:      []string{"ImagePolicy payments/signed\nimages: [{prefix: quay.io/crio/signed}]\nsignedIdentity: matchRepository\nauthorities:\n" + keyAuth(k1)},
		want: map[string][]string{
			"default":                    {"insecureAcceptAnything"},
			"docker:quay.io/crio/signed": {"key matchRepository"},
		},
		wantRegs: []string{"quay.io/crio/signed"},
	}, {
		name:      "an ImagePolicy of another namespace does not apply",
		namespace: "other",
		docs:      []string{"ImagePolicy payments/signed\nimages: [{prefix: quay.io/crio/signed}]\nauthorities:\n" + keyAuth(k1)},
		want:      map[string][]string{"default": {"reject"}},
	}, {
		// Most specific wins in policy.json, every match in signet: the
		// inner scope carries both policies.
		name:      "nested scopes carry every containing policy",
		namespace: "team-a",
		docs: []string{
			"ClusterImagePolicy org\nimages: [{glob: \"reg.example.org/**\"}]\nauthorities:\n" + keyAuth(k1),
			"ImagePolicy team-a/app\nimages: [{glob: \"reg.example.org/team-a/**\"}]\nauthorities:\n  - key:\n      secretRef: {name: ci-key}\n    insecureIgnoreTlog: true\n",
		},
		want: map[string][]string{
			"default":                       {"reject"},
			"docker:reg.example.org":        {"key matchRepository"},
			"docker:reg.example.org/team-a": {"key matchRepository", "key matchRepository"},
		},
		wantRegs: []string{"reg.example.org", "reg.example.org/team-a"},
	}, {
		// containers-policy.json's most specific scope, from signet's
		// excludeImages: the excluded scope carries the other policies
		// only, and a scope excluded from every policy is unmatched.
		name:      "excludeImages: the excluded scope carries only the other policies",
		namespace: "default",
		docs: []string{
			"ClusterImagePolicy org\nimages: [{glob: \"reg.example.org/**\"}]\nexcludeImages: [{prefix: reg.example.org/vendor}, {glob: \"reg.example.org/tools/**\"}]\nauthorities:\n" + keyAuth(k1),
			"ClusterImagePolicy vendor\nimages: [{prefix: reg.example.org/vendor}]\nauthorities:\n" + keyAuth(k3),
		},
		want: map[string][]string{
			"default":                       {"reject"},
			"docker:reg.example.org":        {"key matchRepository"},
			"docker:reg.example.org/vendor": {"key matchRepository"},
			"docker:reg.example.org/tools":  {"reject"},
		},
		wantRegs: []string{"reg.example.org", "reg.example.org/vendor"},
	}, {
		name:       "excludeImages with unmatched allow: the excluded scope accepts",
		namespace:  "default",
		unmatched:  "allow",
		docs:       []string{"ClusterImagePolicy org\nimages: [{glob: \"**\"}]\nexcludeImages: [{glob: \"*.example.org/**\"}]\nauthorities:\n" + keyAuth(k1)},
		wantIssues: []string{"spec.excludeImages[0].glob: policy.json cannot exclude exactly"},
		refused:    true,
	}, {
		name:       "excludeImages that policy.json cannot scope exactly: refused even lossy",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy org\nimages: [{glob: \"reg.example.org/**\"}]\nexcludeImages: [{glob: \"reg.example.org/*/debug\"}]\nauthorities:\n" + keyAuth(k1)},
		wantIssues: []string{"spec.excludeImages[0].glob: policy.json cannot exclude exactly"},
		refused:    true,
	}, {
		name:      "excludeImages of a policy that does not compile: it governs all it selects",
		namespace: "default",
		docs:      []string{"ClusterImagePolicy broken\nimages: [{glob: \"reg.example.org/**\"}]\nexcludeImages: [{prefix: reg.example.org/vendor}]\nauthorities: [{key: {secretRef: {name: missing}}}]\n"},
		want:      map[string][]string{"default": {"reject"}, "docker:reg.example.org": {"reject"}},
	}, {
		// A tag pattern: the exact scope repo:tag, and repo for the images
		// given by digest alone (which the runtime checks against repo),
		// stricter than signet only where repo is governed anyway.
		name:      "tag pattern inside a governed repository: repo:tag exact, repo widened (lossy)",
		namespace: "default",
		lossy:     true,
		docs: []string{
			"ClusterImagePolicy org\nimages: [{glob: \"reg.example.org/**\"}]\nauthorities:\n" + keyAuth(k1),
			"ClusterImagePolicy release\nimages: [{glob: reg.example.org/app, tag: v1}]\nauthorities:\n" + keyAuth(k3),
		},
		want: map[string][]string{
			"default":                       {"reject"},
			"docker:reg.example.org":        {"key matchRepository"},
			"docker:reg.example.org/app":    {"key matchRepository", "key matchRepository"},
			"docker:reg.example.org/app:v1": {"key matchRepository", "key matchRepository"},
		},
		wantIssues: []string{`spec.images[0].tag: "v1" selects the images of reg.example.org/app given by digest alone`},
		wantRegs:   []string{"reg.example.org", "reg.example.org/app"},
	}, {
		name:       "tag pattern alone under unmatched deny: refused naming the tag, even lossy",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy release\nimages: [{glob: reg.example.org/app, tag: v1}]\nauthorities:\n" + keyAuth(k3)},
		wantIssues: []string{`spec.images[0].tag: "v1" selects the images of reg.example.org/app given by digest alone`},
		refused:    true,
	}, {
		name:       "tag glob: the nearest scope is the repository, every tag",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy release\nimages: [{glob: reg.example.org/app, tag: \"v1.*\"}]\nauthorities:\n" + keyAuth(k3)},
		wantIssues: []string{`spec.images[0].tag: "v1.*": policy.json names one tag of one repository (repo:tag); the nearest scope is reg.example.org/app, every tag`},
		refused:    true,
	}, {
		name:      "key.trustRootRef: the named TrustRoot's Rekor key",
		namespace: "default",
		docs:      []string{"ClusterImagePolicy private\nimages: [{prefix: reg.example.org/app}]\nsignedIdentity: matchRepository\nauthorities:\n" + fmt.Sprintf("  - key:\n      trustRootRef: private\n      data: |\n        %s\n", indent(k1))},
		want:      map[string][]string{"default": {"reject"}, "docker:reg.example.org/app": {"key +rekor matchRepository"}},
		wantRegs:  []string{"reg.example.org/app"},
	}, {
		name:      "key.trustRootRef naming a TrustRoot the resolver lacks: the scope rejects",
		namespace: "default",
		docs:      []string{"ClusterImagePolicy private\nimages: [{prefix: reg.example.org/app}]\nauthorities:\n" + fmt.Sprintf("  - key:\n      trustRootRef: absent\n      data: |\n        %s\n", indent(k1))},
		want:      map[string][]string{"default": {"reject"}, "docker:reg.example.org/app": {"reject"}},
	}, {
		name:      "namespace selector that does not select the namespace",
		namespace: "dev",
		labels:    map[string]string{"env": "dev"},
		docs:      []string{"ClusterImagePolicy prod\nimages: [{glob: \"**\"}]\nmatch: {namespaceSelector: {matchLabels: {env: prod}}}\nauthorities:\n" + keyAuth(k1)},
		want:      map[string][]string{"default": {"reject"}},
	}, {
		name:      "** with a selecting namespace selector is the transport scope; unmatched allow",
		namespace: "prod",
		labels:    map[string]string{"env": "prod"},
		unmatched: "allow",
		docs:      []string{"ClusterImagePolicy prod\nimages: [{glob: \"**\"}]\nmatch: {namespaceSelector: {matchLabels: {env: prod}}}\nauthorities:\n" + keyAuth(k1)},
		want:      map[string][]string{"default": {"insecureAcceptAnything"}, "docker:": {"key matchRepository"}},
		wantRegs:  []string{""},
	}, {
		name:      "kinds without Pod do not govern pulls",
		namespace: "crossplane-system",
		docs:      []string{"ClusterImagePolicy packages\nimages: [{glob: \"xpkg.upbound.io/**\"}]\nmatch: {kinds: [Provider]}\nauthorities:\n" + keyAuth(k1)},
		want:      map[string][]string{"default": {"reject"}},
	}, {
		name:      "keys of two authorities, any one, CRI-O 1.32: one requirement listing both; tlog keeps the Rekor key",
		namespace: "default",
		runtime:   "crio-1.32",
		docs:      []string{"ClusterImagePolicy keys\nimages: [{prefix: reg.example.org/app}]\nauthorities:\n" + tlogKeyAuth(k1) + tlogKeyAuth(k3)},
		want:      map[string][]string{"default": {"reject"}, "docker:reg.example.org/app": {"keys 2 +rekor matchRepository"}},
		wantRegs:  []string{"reg.example.org/app"},
	}, {
		name:       "keys of two authorities, any one, the default CRI-O 1.28: keyDatas refused",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy keys\nimages: [{prefix: reg.example.org/app}]\nauthorities:\n" + tlogKeyAuth(k1) + tlogKeyAuth(k3)},
		wantIssues: []string{"spec.authorities: keyDatas (a signature by any one of 2 keys) is read by containers-image v5.33 (CRI-O 1.32) and newer; CRI-O 1.28 (containers-image v5.27)"},
		refused:    true,
	}, {
		name:       "keys of two authorities, any one, containers-image 5.26 with --allow-lossy: both required",
		namespace:  "default",
		runtime:    "containers-image-5.26.1",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy keys\nimages: [{prefix: reg.example.org/app}]\nauthorities:\n" + keyAuth(k1) + keyAuth(k3)},
		want:       map[string][]string{"default": {"reject"}, "docker:reg.example.org/app": {"key matchRepository", "key matchRepository"}},
		wantIssues: []string{"spec.authorities: keyDatas (a signature by any one of 2 keys) is read by containers-image v5.33 (CRI-O 1.32) and newer; containers-image v5.26, the oldest"},
		wantRegs:   []string{"reg.example.org/app"},
	}, {
		name:      "threshold 2 of 2 distinct keys: both required",
		namespace: "default",
		docs:      []string{"ClusterImagePolicy two\nimages: [{prefix: reg.example.org/app}]\nthreshold: 2\nsignedIdentity: matchExact\nauthorities:\n" + keyAuth(k1) + keyAuth(k3)},
		want:      map[string][]string{"default": {"reject"}, "docker:reg.example.org/app": {"key matchExact", "key matchExact"}},
		wantRegs:  []string{"reg.example.org/app"},
	}, {
		name:       "threshold 2 of 3: refused",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy two\nimages: [{prefix: reg.example.org/app}]\nthreshold: 2\nauthorities:\n" + keyAuth(k1) + keyAuth(k2) + keyAuth(k3)},
		wantIssues: []string{"spec.threshold: 2 of 3 authorities"},
		refused:    true,
	}, {
		name:       "threshold 2 of 3 with --allow-lossy: all three required",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy two\nimages: [{prefix: reg.example.org/app}]\nthreshold: 2\nauthorities:\n" + keyAuth(k1) + keyAuth(k2) + keyAuth(k3)},
		want:       map[string][]string{"default": {"reject"}, "docker:reg.example.org/app": {"key matchRepository", "key matchRepository", "key matchRepository"}},
		wantIssues: []string{"spec.threshold: 2 of 3 authorities"},
		wantRegs:   []string{"reg.example.org/app"},
	}, {
		name:       "two authorities with the same key, both required: refused even lossy",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy same\nimages: [{prefix: reg.example.org/app}]\nthreshold: 2\nauthorities:\n" + keyAuth(k1) + keyAuth(k1)},
		wantIssues: []string{"spec.authorities[1]: shares a signer with spec.authorities[0]"},
		refused:    true,
	}, {
		name:      "keyless email identity: fulcio with the trusted root's CA and Rekor key",
		namespace: "default",
		docs:      []string{"ClusterImagePolicy keyless\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n  - keyless:\n      identities: [{issuer: " + gh + ", subject: release@acme.example}]\n"},
		want:      map[string][]string{"default": {"reject"}, "docker:ghcr.io/acme": {"fulcio " + gh + " release@acme.example +rekor matchRepository"}},
		wantRegs:  []string{"ghcr.io/acme"},
	}, {
		name:       "keyless subjectRegExp: refused naming the field",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy keyless\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n  - keyless:\n      identities: [{issuer: " + gh + ", subjectRegExp: \".*@acme.example\"}]\n"},
		wantIssues: []string{"spec.authorities[0].keyless.identities[0].subjectRegExp: policy.json's fulcio compares subjectEmail exactly"},
		refused:    true,
	}, {
		name:       "keyless URI subject with --allow-lossy: the identity is not accepted, so the scope rejects",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy keyless\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n  - keyless:\n      identities: [{issuer: https://token.actions.githubusercontent.com, subject: \"https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main\"}]\n"},
		want:       map[string][]string{"default": {"reject"}, "docker:ghcr.io/acme": {"reject"}},
		wantIssues: []string{"spec.authorities[0].keyless.identities[0].subject: \"https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main\": policy.json's fulcio matches email subjects only"},
	}, {
		name:       "two identities, any one: refused",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy keyless\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n  - keyless:\n      identities: [{issuer: " + gh + ", subject: a@acme.example}, {issuer: " + gh + ", subject: b@acme.example}]\n"},
		wantIssues: []string{"spec.authorities: policy.json cannot express a choice between 2 ways of signing"},
		refused:    true,
	}, {
		name:       "key or keyless with --allow-lossy: both required",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy either\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n" + keyAuth(k1) + "  - keyless:\n      identities: [{issuer: " + gh + ", subject: a@acme.example}]\n"},
		want:       map[string][]string{"default": {"reject"}, "docker:ghcr.io/acme": {"fulcio " + gh + " a@acme.example +rekor matchRepository", "key matchRepository"}},
		wantIssues: []string{"spec.authorities: policy.json cannot express a choice between 2 ways of signing"},
		wantRegs:   []string{"ghcr.io/acme"},
	}, {
		name:      "attestations with CEL conditions: refused naming both",
		namespace: "default",
		docs: []string{"ClusterImagePolicy slsa\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n" + keyAuth(k1) +
			"    attestations: [{predicateType: \"https://slsa.dev/provenance/v1\", conditions: [\"predicate.buildType != ''\"]}]\n"},
		wantIssues: []string{"spec.authorities[0].attestations: policy.json cannot check attestations (in-toto statements), nor CEL conditions (spec.authorities[0].attestations[0].conditions)"},
		refused:    true,
	}, {
		name:      "attestations with --allow-lossy: reject",
		namespace: "default",
		lossy:     true,
		docs: []string{"ClusterImagePolicy slsa\nimages: [{glob: \"ghcr.io/acme/**\"}]\nauthorities:\n" + keyAuth(k1) +
			"    attestations: [{predicateType: \"https://slsa.dev/provenance/v1\"}]\n"},
		want:       map[string][]string{"default": {"reject"}, "docker:ghcr.io/acme": {"reject"}},
		wantIssues: []string{"spec.authorities[0].attestations: policy.json cannot check attestations"},
	}, {
		name:      "static pass and fail, warn mode, invalid policy",
		namespace: "default",
		unmatched: "warn",
		docs: []string{
			"ClusterImagePolicy pass\nimages: [{prefix: quay.io/static}]\nauthorities: [{static: {action: pass}}]\n",
			"ClusterImagePolicy fail\nimages: [{prefix: evil.example}]\nauthorities: [{static: {action: fail}}]\n",
			"ClusterImagePolicy warn\nimages: [{prefix: quay.io}]\nmode: warn\nauthorities:\n" + keyAuth(k1),
			"ClusterImagePolicy broken\nimages: [{prefix: gcr.io}]\nauthorities: [{key: {secretRef: {name: missing}}}]\n",
		},
		want: map[string][]string{
			"default":               {"insecureAcceptAnything"},
			"docker:quay.io/static": {"insecureAcceptAnything"},
			"docker:evil.example":   {"reject"},
			"docker:quay.io":        {"insecureAcceptAnything"},
			"docker:gcr.io":         {"reject"},
		},
	}, {
		name:       "digest: require is refused",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy digests\nimages: [{prefix: reg.example.org}]\ndigest: require\nauthorities:\n" + keyAuth(k1)},
		wantIssues: []string{"spec.digest: policy.json cannot require references by digest"},
		refused:    true,
	}, {
		name:       "a glob naming one repository would also govern the ones below it: refused even lossy when those are unmatched",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy one\nimages: [{glob: reg.example.org/payments/api}]\nauthorities:\n" + keyAuth(k1)},
		wantIssues: []string{"spec.images[0].glob: \"reg.example.org/payments/api\": a glob without ** selects one repository"},
		refused:    true,
	}, {
		name:      "a path wildcard inside a registry that a prefix already governs: widened with --allow-lossy",
		namespace: "default",
		lossy:     true,
		docs: []string{
			"ClusterImagePolicy all\nimages: [{prefix: reg.example.org}]\nauthorities:\n" + keyAuth(k1),
			"ClusterImagePolicy prod\nimages: [{glob: \"reg.example.org/*/prod/**\"}]\nauthorities:\n" + keyAuth(k3),
		},
		want:       map[string][]string{"default": {"reject"}, "docker:reg.example.org": {"key matchRepository", "key matchRepository"}},
		wantIssues: []string{"spec.images[0].glob: \"reg.example.org/*/prod/**\": policy.json scopes are a host or a repository prefix"},
		wantRegs:   []string{"reg.example.org"},
	}, {
		name:       "the same path wildcard without --allow-lossy: refused",
		namespace:  "default",
		docs:       []string{"ClusterImagePolicy all\nimages: [{prefix: reg.example.org}]\nauthorities:\n" + keyAuth(k1), "ClusterImagePolicy prod\nimages: [{glob: \"reg.example.org/*/prod/**\"}]\nauthorities:\n" + keyAuth(k3)},
		wantIssues: []string{"spec.images[0].glob: \"reg.example.org/*/prod/**\""},
		refused:    true,
	}, {
		name:       "*.domain/** under unmatched deny: refused (ported hosts would be governed)",
		namespace:  "default",
		lossy:      true,
		docs:       []string{"ClusterImagePolicy domain\nimages: [{glob: \"*.example.org/**\"}]\nauthorities:\n" + keyAuth(k1)},
		wantIssues: []string{"spec.images[0].glob: \"*.example.org/**\": policy.json's *.example.org also selects hosts of the domain with a port"},
		refused:    true,
	}, {
		name:       "*.domain/** under unmatched allow, --allow-lossy: the wildcard scope",
		namespace:  "default",
		lossy:      true,
		unmatched:  "allow",
		docs:       []string{"ClusterImagePolicy domain\nimages: [{glob: \"*.example.org/**\"}]\nauthorities:\n" + keyAuth(k1)},
		want:       map[string][]string{"default": {"insecureAcceptAnything"}, "docker:*.example.org": {"key matchRepository"}},
		wantIssues: []string{"spec.images[0].glob: \"*.example.org/**\""},
		wantRegs:   []string{"*.example.org"},
	}, {
		name:      "excluded namespace: everything accepted",
		namespace: "kube-system",
		docs:      []string{"ClusterImagePolicy all\nimages: [{glob: \"**\"}]\nauthorities:\n" + keyAuth(k1)},
		want:      map[string][]string{"default": {"insecureAcceptAnything"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			labels := map[string]string{"kubernetes.io/metadata.name": tc.namespace}
			for k, v := range tc.labels {
				labels[k] = v
			}
			var rt Runtime
			if tc.runtime != "" {
				var err error
				if rt, err = ParseRuntime(tc.runtime); err != nil {
					t.Fatal(err)
				}
			}
			res, err := Export(t.Context(), compile(t, r, tc.docs...), Options{
				Target:     policy.Target{Namespace: tc.namespace, NamespaceLabels: labels},
				Config:     policy.Config{Unmatched: tc.unmatched, ExcludedNamespaces: []string{"kube-system"}},
				Resolver:   r,
				AllowLossy: tc.lossy,
				Runtime:    rt,
			})
			if tc.refused {
				if !errors.Is(err, ErrNotExpressible) {
					t.Fatalf("err = %v, want ErrNotExpressible", err)
				}
				if res.File != nil {
					t.Errorf("a refused export has a File")
				}
				if res.FailClosed == nil {
					t.Fatalf("a refused export has no FailClosed file")
				}
				for scope, reqs := range res.FailClosed.Transports[TransportDocker] {
					if len(reqs) != 1 || reqs[0].Type != TypeReject {
						t.Errorf("fail-closed scope %q: %v, want reject", scope, summarize(reqs))
					}
				}
			} else {
				if err != nil {
					t.Fatalf("Export: %v", err)
				}
				if diff := cmp.Diff(tc.want, summary(res.File)); diff != "" {
					t.Errorf("file (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantRegs, res.Registries.Scopes); diff != "" {
					t.Errorf("registries.d scopes (-want +got):\n%s", diff)
				}
			}
			var got []string
			for _, is := range res.Issues {
				got = append(got, is.Field+": "+is.Message)
			}
			if len(got) != len(tc.wantIssues) {
				t.Fatalf("issues = %q, want %d matching %q", got, len(tc.wantIssues), tc.wantIssues)
			}
			for i, w := range tc.wantIssues {
				if !strings.Contains(got[i], w) {
					t.Errorf("issue %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestExportPKI: a certificate authority becomes pki (its compiled roots,
// Secret-sourced ones too, and intermediates, one requirement per
// identity) for runtimes that read it; what pki cannot say is an issue
// naming the field.
func TestExportPKI(t *testing.T) {
	ca := pkitest.NewRoot(t, "Example Root CA")
	inter := ca.Intermediate(t, "Example Code Signing CA")
	r := resolver{tm: sigstoretest.New(t).TrustedRoot(), secrets: map[string]map[string][]byte{
		"signet-system/corp-ca": {"ca.crt": []byte(ca.PEM()), "intermediates.crt": []byte(inter.PEM())},
	}}
	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n        ") }
	inline := fmt.Sprintf("      roots: |\n        %s\n      intermediates: |\n        %s\n", indent(ca.PEM()), indent(inter.PEM()))
	doc := func(source, tlog, identities string) string {
		return "ClusterImagePolicy pki\nimages: [{prefix: reg.example.org/app}]\nauthorities:\n  - name: corp-ca\n" + tlog + "    certificate:\n" + source + "      identities: " + identities + "\n"
	}
	const ignoreTlog = "    insecureIgnoreTlog: true\n"
	const release = "[{email: release@example.com, hostname: build.example.com}]"
	export := func(t *testing.T, runtime, d string) (*Result, error) {
		t.Helper()
		rt, err := ParseRuntime(runtime)
		if err != nil {
			t.Fatal(err)
		}
		return Export(t.Context(), compile(t, r, d), Options{Target: policy.Target{Namespace: "default"}, Resolver: r, Runtime: rt})
	}
	issues := func(res *Result) []string {
		var out []string
		for _, is := range res.Issues {
			out = append(out, is.Field+": "+is.Message)
		}
		return out
	}

	for _, source := range []struct{ name, yaml string }{
		{"inline", inline},
		{"from a Secret", "      secretRef: {name: corp-ca, namespace: signet-system}\n"},
	} {
		for _, runtime := range []string{"crio-1.34", "containers-image-5.35"} {
			t.Run(source.name+" "+runtime, func(t *testing.T) {
				res, err := export(t, runtime, doc(source.yaml, ignoreTlog, release))
				if err != nil {
					t.Fatalf("Export: %v", err)
				}
				reqs := res.File.Transports[TransportDocker]["reg.example.org/app"]
				if len(reqs) != 1 || reqs[0].PKI == nil {
					t.Fatalf("requirements %v, want one pki", summarize(reqs))
				}
				want := &PKI{CARootsData: []byte(ca.PEM()), CAIntermediatesData: []byte(inter.PEM()), SubjectEmail: "release@example.com", SubjectHostname: "build.example.com"}
				if diff := cmp.Diff(want, reqs[0].PKI); diff != "" {
					t.Errorf("pki (-want +got):\n%s", diff)
				}
				if reqs[0].RekorPublicKeyData != nil || reqs[0].RekorPublicKeyDatas != nil {
					t.Errorf("Rekor keys written with pki, which containers-image refuses")
				}
				if !slices.ContainsFunc(res.Notes, func(n string) bool {
					return strings.Contains(n, "spec.authorities[0].certificate: containers-image also takes intermediates from each signature's certificate chain")
				}) {
					t.Errorf("notes %q do not say the runtime takes the signature's intermediates", res.Notes)
				}
			})
		}
	}

	for _, tc := range []struct {
		name, runtime, doc string
		want               []string
	}{{
		name: "before CRI-O 1.34", runtime: "crio-1.33", doc: doc(inline, ignoreTlog, release),
		want: []string{"spec.authorities[0].certificate: pki is read by containers-image v5.35 (CRI-O 1.34) and newer; CRI-O 1.33 (containers-image v5.34), the oldest runtime"},
	}, {
		name: "the default runtime", runtime: "crio-1.28", doc: doc(inline, ignoreTlog, release),
		want: []string{"spec.authorities[0].certificate: pki is read by containers-image v5.35 (CRI-O 1.34) and newer; CRI-O 1.28 (containers-image v5.27)"},
	}, {
		name: "a transparency log required", runtime: "crio-1.34", doc: doc(inline, "", release),
		want: []string{"spec.authorities[0].insecureIgnoreTlog: not set: the authority requires a transparency log entry, which policy.json's pki cannot check"},
	}, {
		name: "regular expression and URI identities", runtime: "crio-1.34",
		doc: doc(inline, ignoreTlog, `[{emailRegExp: ".*@example\\.com"}, {uri: "https://ci.example.com/release", hostname: build.example.com}]`),
		want: []string{
			"spec.authorities[0].certificate.identities[0].emailRegExp: policy.json's pki compares subjectEmail exactly",
			"spec.authorities[0].certificate.identities[1].uri: policy.json's pki matches email and hostname SANs only, not URIs",
		},
	}, {
		name: "a subject identity", runtime: "crio-1.34", doc: doc(inline, ignoreTlog, `[{subject: "CN=release,O=Example Corp"}]`),
		want: []string{"spec.authorities[0].certificate.identities[0].subject: policy.json's pki matches email and hostname SANs only, not the subject name"},
	}, {
		name: "two identities, any one", runtime: "crio-1.34", doc: doc(inline, ignoreTlog, "[{email: a@example.com}, {hostname: build.example.com}]"),
		want: []string{"spec.authorities: policy.json cannot express a choice between 2 ways of signing (certificate a@example.com, certificate build.example.com)"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := export(t, tc.runtime, tc.doc)
			if !errors.Is(err, ErrNotExpressible) || res.File != nil {
				t.Fatalf("err = %v, want the export refused", err)
			}
			got := issues(res)
			if len(got) != len(tc.want) {
				t.Fatalf("issues %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("issue %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// TestFileFormat: the JSON is containers-policy.json's, keys base64 of PEM.
func TestFileFormat(t *testing.T) {
	f := &File{Default: []Requirement{reject}, Transports: map[string]map[string][]Requirement{TransportDocker: {
		"reg.example.org":     {{Type: TypeSigstoreSigned, KeyDatas: [][]byte{[]byte("PEM"), []byte("PEM2")}, SignedIdentity: &SignedIdentity{Type: "matchRepository"}}},
		"reg.example.org/one": {{Type: TypeSigstoreSigned, KeyData: []byte("PEM"), SignedIdentity: &SignedIdentity{Type: "matchExact"}}},
	}}}
	data, err := f.MarshalIndent()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "default": [
    {
      "type": "reject"
    }
  ],
  "transports": {
    "docker": {
      "reg.example.org": [
        {
          "type": "sigstoreSigned",
          "keyDatas": [
            "UEVN",
            "UEVNMg=="
          ],
          "signedIdentity": {
            "type": "matchRepository"
          }
        }
      ],
      "reg.example.org/one": [
        {
          "type": "sigstoreSigned",
          "keyData": "UEVN",
          "signedIdentity": {
            "type": "matchExact"
          }
        }
      ]
    }
  }
}
`
	if diff := cmp.Diff(want, string(data)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	regs := Registries{Scopes: []string{"", "reg.example.org/app"}}.YAML()
	wantRegs := "# Written by signet: read cosign signatures (sha256-<digest>.sig tags) for the\n# scopes whose policy.json requirements verify signatures.\n" +
		"default-docker:\n  use-sigstore-attachments: true\ndocker:\n  \"reg.example.org/app\":\n    use-sigstore-attachments: true\n"
	if diff := cmp.Diff(wantRegs, string(regs)); diff != "" {
		t.Errorf("registries.d (-want +got):\n%s", diff)
	}
}

func TestContains(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"", "reg.example.org", true},
		{"reg.example.org", "reg.example.org/a", true},
		{"reg.example.org", "reg.example.org:5000/a", false},
		{"reg.example.org/a", "reg.example.org/ab", false},
		{"reg.example.org/a", "reg.example.org/a/b", true},
		{"*.example.org", "reg.example.org:5000/a", true},
		{"*.example.org", "example.org/a", false},
		{"*.example.org", "*.a.example.org", true},
		{"*.a.example.org", "*.example.org", false},
		{"reg.example.org", "*.example.org", false},
		{"reg.example.org", "", false},
		{"reg.example.org/a", "reg.example.org/a:v1", true},
		{"reg.example.org", "reg.example.org/a:v1", true},
		{"reg.example.org/a:v1", "reg.example.org/a:v1", true},
		{"reg.example.org/a:v1", "reg.example.org/a", false},
		{"reg.example.org/a:v1", "reg.example.org/a:v2", false},
		{"reg.example.org/a:v1", "reg.example.org/a/b", false},
		{"localhost:5000", "localhost:5000/a:v1", true},
		{"*.example.org", "reg.example.org/a:v1", true},
	} {
		if got := contains(tc.a, tc.b); got != tc.want {
			t.Errorf("contains(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestParseRuntime(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Runtime
		str     string
		lists   bool
		wantErr string
	}{
		{in: "crio-1.28", want: Runtime{Minor: 27, CRIO: 28}, str: "crio-1.28"},
		{in: "cri-o-1.28.11", want: Runtime{Minor: 27, CRIO: 28}, str: "crio-1.28"},
		{in: "crio-1.31", want: Runtime{Minor: 32, CRIO: 31}, str: "crio-1.31"},
		{in: "crio-v1.32.0", want: Runtime{Minor: 33, CRIO: 32}, str: "crio-1.32", lists: true},
		{in: "crio-1.40", want: Runtime{Minor: 35, CRIO: 40}, str: "crio-1.40", lists: true},
		{in: "containers-image-5.26", want: Runtime{Minor: 26}, str: "containers-image-5.26"},
		{in: "containers-image-v5.33.1", want: Runtime{Minor: 33}, str: "containers-image-5.33", lists: true},
		{in: "crio-1.26", wantErr: "since v5.24 (CRI-O 1.27)"},
		{in: "containers-image-5.23", wantErr: "since v5.24"},
		{in: "crio-2.0", wantErr: "CRI-O versions are 1.MINOR"},
		{in: "podman-5.3", wantErr: "want crio-1.MINOR or containers-image-5.MINOR"},
		{in: "crio-1.x", wantErr: `"x" is not a number`},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRuntime(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got.String() != tc.str || got.readsLists() != tc.lists {
				t.Errorf("String() = %q, readsLists() = %v; want %q, %v", got, got.readsLists(), tc.str, tc.lists)
			}
		})
	}
	if (Runtime{}).String() != "crio-1.28" || (Runtime{}).readsLists() {
		t.Errorf("the zero Runtime is %s, want the default crio-1.28", Runtime{})
	}
}

// twoLogs is trusted material with the Rekor logs given.
type twoLogs struct {
	root.TrustedMaterial
	logs map[string]*root.TransparencyLog
}

func (m twoLogs) RekorLogs() map[string]*root.TransparencyLog { return m.logs }

// TestExportSeveralRekorLogs: a TrustRoot with two Rekor logs is one
// requirement listing both keys for containers-image v5.33 and newer; for
// an older runtime (which reads one rekorPublicKeyData) the export is
// refused naming the field, and --allow-lossy keeps only the log that
// started last.
func TestExportSeveralRekorLogs(t *testing.T) {
	older := sigstoretest.New(t).TrustedRoot()
	newer := sigstoretest.New(t).TrustedRoot()
	logs := map[string]*root.TransparencyLog{}
	var newest []byte
	for i, tm := range []root.TrustedMaterial{older, newer} {
		for id, l := range tm.RekorLogs() {
			l := *l
			l.ValidityPeriodStart = time.Date(2024+i, 1, 1, 0, 0, 0, 0, time.UTC)
			logs[id] = &l
			if i == 1 {
				der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
				if err != nil {
					t.Fatal(err)
				}
				newest = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
			}
		}
	}
	if len(logs) != 2 {
		t.Fatalf("%d logs, want 2", len(logs))
	}
	r := resolver{tm: older, private: twoLogs{TrustedMaterial: older, logs: logs}}
	indent := strings.ReplaceAll(strings.TrimSpace(newKey(t)), "\n", "\n        ")
	doc := "ClusterImagePolicy logs\nimages: [{prefix: reg.example.org/app}]\nauthorities:\n" +
		fmt.Sprintf("  - key:\n      trustRootRef: private\n      data: |\n        %s\n", indent)
	export := func(runtime string, lossy bool) (*Result, error) {
		rt, err := ParseRuntime(runtime)
		if err != nil {
			t.Fatal(err)
		}
		return Export(t.Context(), compile(t, r, doc), Options{Target: policy.Target{Namespace: "default"}, Resolver: r, AllowLossy: lossy, Runtime: rt})
	}
	requirement := func(res *Result) Requirement {
		t.Helper()
		reqs := res.File.Transports[TransportDocker]["reg.example.org/app"]
		if len(reqs) != 1 {
			t.Fatalf("requirements %v", summarize(reqs))
		}
		return reqs[0]
	}

	res, err := export("crio-1.32", false)
	if err != nil {
		t.Fatalf("CRI-O 1.32: %v", err)
	}
	if got := requirement(res); len(got.RekorPublicKeyDatas) != 2 || got.RekorPublicKeyData != nil {
		t.Errorf("CRI-O 1.32: %d Rekor keys listed (and rekorPublicKeyData %v); want both in rekorPublicKeyDatas", len(got.RekorPublicKeyDatas), got.RekorPublicKeyData != nil)
	}

	res, err = export("crio-1.28", false)
	if !errors.Is(err, ErrNotExpressible) || res.File != nil {
		t.Fatalf("CRI-O 1.28 without --allow-lossy: %v; want refused", err)
	}
	if len(res.Issues) != 1 || !strings.Contains(res.Issues[0].Message, "rekorPublicKeyDatas") || !strings.Contains(res.Issues[0].Field, "spec.authorities[0]") {
		t.Errorf("issues %+v; want one naming the authority and rekorPublicKeyDatas", res.Issues)
	}

	res, err = export("crio-1.28", true)
	if err != nil {
		t.Fatalf("CRI-O 1.28 with --allow-lossy: %v", err)
	}
	if got := requirement(res); got.RekorPublicKeyDatas != nil || string(got.RekorPublicKeyData) != string(newest) {
		t.Errorf("--allow-lossy kept %q; want only the newest log's key %q", got.RekorPublicKeyData, newest)
	}
}
