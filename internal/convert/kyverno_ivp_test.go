package convert

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/verify"
)

// TestIVGlobTranslation: each ImageValidatingPolicy glob selects in signet
// exactly what Kyverno selects, in every spelling Kyverno sees (the pod's:
// untagged, by tag, by digest, both; and with mutateDigest the full name
// with tag and digest), or, where Kyverno misses some spellings of a
// repository ("covers"), signet selects the repository exactly when
// Kyverno selects one of its spellings; or it is refused.
func TestIVGlobTranslation(t *testing.T) {
	type outcome int
	const (
		exact outcome = iota
		covers
		refused
	)
	for _, tc := range []struct {
		pattern string
		want    outcome
	}{
		// Kyverno's documentation and samples.
		{"ghcr.io/kyverno/test-verify-image*", exact},
		{"ghcr.io/kyverno/*", exact},
		{"ghcr.io/*", exact},
		{"ghcr.io/myorg/dev-*", exact},
		{"ghcr.io/myorg/myrepo:*", covers},
		{"docker.io/kyverno/kyverno*", covers},
		{"myreg.org/path/repo:*", covers},
		// Others.
		{"*", exact},
		{"**", exact},
		{"cgr.dev/chainguard/*", exact},
		{"localhost:5000/team/*", exact},
		{"ghcr.io/acme/app", refused},     // only the untagged spelling
		{"ghcr.io/acme/*-x*", refused},    // "-x" may lie in the tag
		{"ghcr.io/acme/app:v1*", refused}, // a tag
		{"ghcr.io/acme/app?", refused},
		{"ghcr.io/{acme,evil}/*", refused},
		{"*.example.org/*", refused}, // a wildcard registry: short names too
		{"*/nginx*", refused},
		{"nginx*", refused},
		{"bitnami/*", refused},
		{"index.docker.io/*", refused},
		{"docker.io/nginx*", refused},   // docker.io/nginx or docker.io/library/nginx
		{"docker.io/nginx:*", refused},  // the same
		{"docker.io/bitnami/*", covers}, // bitnami/redis@sha256:... escapes Kyverno
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			globs, dead, hub, reason := ivGlob(tc.pattern)
			got := exact
			switch {
			case reason != "":
				got = refused
			case hub || strings.HasSuffix(tc.pattern, ":*"):
				got = covers
			}
			if got != tc.want || dead {
				t.Fatalf("outcome %d (dead %v), want %d (globs %q, reason %q)", got, dead, tc.want, globs, reason)
			}
			if got == refused {
				return
			}
			digest := "@sha256:" + hex64
			for _, s := range ivSamples {
				spellings := []string{s.written, s.written + ":v1", s.written + digest, s.written + ":v1" + digest,
					s.kyName + ":v1" + digest, s.kyName + ":latest" + digest}
				anyKy := false
				for _, sp := range spellings {
					anyKy = anyKy || wildMatches(tc.pattern, sp)
				}
				for _, suffix := range []string{"", ":v1", digest} {
					sig := signetMatches(t, globs, s.written+suffix)
					if got == covers {
						if sig != anyKy {
							t.Errorf("%s: Kyverno selects a spelling: %v, signet (globs %q): %v", s.written+suffix, anyKy, globs, sig)
						}
						continue
					}
					for _, sp := range spellings {
						if ky := wildMatches(tc.pattern, sp); ky != sig {
							t.Errorf("%s: Kyverno selects %s: %v, signet (globs %q): %v", s.written+suffix, sp, ky, globs, sig)
						}
					}
				}
			}
		})
	}
}

// ivSamples adds the repositories of Kyverno's samples to the shared ones.
var ivSamples = append([]sample{
	{"ghcr.io/myorg/myrepo", "", "ghcr.io/myorg/myrepo"},
	{"ghcr.io/myorg/myrepo-x", "", "ghcr.io/myorg/myrepo-x"},
	{"ghcr.io/myorg/dev-app", "", "ghcr.io/myorg/dev-app"},
	{"myreg.org/path/repo", "", "myreg.org/path/repo"},
	{"ghcr.io/kyverno/test-verify-image", "", "ghcr.io/kyverno/test-verify-image"},
	{"kyverno/kyverno", "", "docker.io/kyverno/kyverno"},
	{"docker.io/kyverno/kyverno-x", "", "docker.io/kyverno/kyverno-x"},
	{"docker.io/library/nginx", "", "docker.io/library/nginx"},
}, samples...)

func TestIVRefExpression(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`ref.startsWith("ghcr.io/acme/")`, []string{"ghcr.io/acme/*"}},
		{`ref.startsWith('ghcr.io/a/') || ref.startsWith("cgr.dev/b/")`, []string{"ghcr.io/a/*", "cgr.dev/b/*"}},
		{`image.registry == 'ghcr.io'`, nil},
		{`ref.startsWith("ghcr.io/") && ref.contains("x")`, nil},
		{`ref.matches("^ghcr")`, nil},
		{`ref.startsWith(ref)`, nil},
	} {
		got, why := ivRefExpression(tc.expr)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.expr, diff)
		}
		if (why == "") != (tc.want != nil) {
			t.Errorf("%s: reason %q", tc.expr, why)
		}
	}
}

// TestIVReadCheck reads the validation shapes of Kyverno's documentation
// and samples, and refuses the others saying why.
func TestIVReadCheck(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want ivCheck
		why  string // refused, saying this
	}{
		{expr: `images.containers.map(image, verifyImageSignatures(image, [attestors.notary])).all(e ,e > 0)`,
			want: ivCheck{kind: ivSignatures, categories: []string{"containers"}, attestors: []string{"notary"}, min: 1}},
		{expr: "images.containers.map(image, verifyImageSignatures(image,  [attestors.a, attestors[\"b-c\"]])).all(e, e >= 2)",
			want: ivCheck{kind: ivSignatures, categories: []string{"containers"}, attestors: []string{"a", "b-c"}, min: 2}},
		{expr: `images.containers.all(i, verifyImageSignatures(i, [attestors.a, attestors.b]) == 2)`,
			want: ivCheck{kind: ivSignatures, categories: []string{"containers"}, attestors: []string{"a", "b"}, min: 2}},
		{expr: `(images.containers + images.initContainers).map(image, verifyImageSignatures(image, [attestors.a])).all(e, e > 0)`,
			want: ivCheck{kind: ivSignatures, categories: []string{"containers", "initContainers"}, attestors: []string{"a"}, min: 1}},
		{expr: `images.containers.map(image, verifyAttestationSignatures(image, attestations.slsa, [attestors.cosign])).all(e, e > 0)`,
			want: ivCheck{kind: ivAttestationCheck, categories: []string{"containers"}, attestors: []string{"cosign"}, min: 1, attestation: "slsa"}},
		{expr: `images.containers.map(image, extractPayload(image, attestations.slsa).predicate.builder.id == "https://ci.example.org/builder").all(e, e)`,
			want: ivCheck{kind: ivPayload, categories: []string{"containers"}, attestation: "slsa", condition: `predicate.builder.id == "https://ci.example.org/builder"`}},
		{expr: `images.containers.all(image, extractPayload(image, attestations.slsa).predicate.reviewers.exists(r, r == "ana@example.com"))`,
			want: ivCheck{kind: ivPayload, categories: []string{"containers"}, attestation: "slsa", condition: `predicate.reviewers.exists(r, r == "ana@example.com")`}},
		{expr: `images.containers.map(image, extractPayload(image, attestations.slsa).builder.id.matches('^x')).all(e, e)`, why: "whole in-toto statement"},
		{expr: `images.containers.map(image, extractPayload(image, attestations.slsa).predicate.x == image).all(e, e)`, why: "does not compile"},
		{expr: `images.containers.map(image, extractPayload(image, attestations.a).predicate.x == extractPayload(image, attestations.b).predicate.x).all(e, e)`, why: "two attestations"},
		{expr: `images.containers.map(image, verifyImageSignatures(image, [attestors.a])).all(e, e == 0)`, why: "exactly that many"},
		{expr: `images.containers.map(image, verifyImageSignatures(image, [attestors.a])).all(e, e >= 0)`, why: "always true"},
		{expr: `images.containers.map(image, verifyImageSignatures(image, [attestors.a])).all(e, e > 1)`, why: "never verifies"},
		{expr: `images.containers.map(image, verifyImageSignatures(image, [attestors.a])).exists(e, e > 0)`, why: "only verifyImageSignatures"},
		{expr: `images.containers.map(image, verifyImageSignatures("ghcr.io/x", [attestors.a])).all(e, e > 0)`, why: "image of the iteration"},
		{expr: `imageverify.verify(images.containers, attestors.devAttestor).all(result, result.verified)`, why: "only verifyImageSignatures"},
		{expr: `object.spec.containers.all(c, verifyImageSignatures(c.image, [attestors.a]) > 0)`, why: "only verifyImageSignatures"},
		{expr: `images.containers.map(image, verifyImageSignatures(image, variables.attestors)).all(e, e > 0)`, why: "list of attestors"},
		{expr: `images.containers.map(image,`, why: "not a CEL expression"},
	} {
		got, why := ivReadCheck(tc.expr)
		if tc.why != "" {
			if !strings.Contains(why, tc.why) {
				t.Errorf("%s: reason %q, want one saying %q", tc.expr, why, tc.why)
			}
			continue
		}
		if why != "" {
			t.Errorf("%s: refused: %s", tc.expr, why)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(ivCheck{})); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.expr, diff)
		}
	}
}

// TestIVSamples converts the ImageValidatingPolicies of Kyverno's
// documentation and policy library (testdata/kyverno-ivp, each file naming
// its source): each converts, or is refused naming the field and why.
func TestIVSamples(t *testing.T) {
	for _, tc := range []struct {
		file    string
		refused []string
		kinds   []string // of the converted objects
		images  string   // first glob
	}{
		// Kyverno trusts its sample signing certificate itself (self-signed, not a CA): so does signet.
		{file: "policies-verify-image-ivpol.yaml", kinds: []string{"ClusterImagePolicy"}, images: "ghcr.io/kyverno/test-verify-image*"},
		{file: "website-verify-image-slsa.yaml", refused: []string{"spec.validations[1].expression: not supported: extractPayload(...).builder: Kyverno's payload is the whole in-toto statement"}},
		{file: "docs-namespaced-verify-team-images.yaml", refused: []string{"spec.validations[0].expression: not supported: only verifyImageSignatures"}},
		{file: "docs-image-verification-library.yaml", refused: []string{"spec.matchImageReferences[0].attestors: not supported", "spec.validations[2].expression"}},
		{file: "docs-keyless-require-vulnerability-scan.yaml", kinds: []string{"ClusterImagePolicy", "ClusterImagePolicy"}, images: "ghcr.io/myorg/myrepo"},
		{file: "docs-key-verify-image-ivpol.yaml", kinds: []string{"ClusterImagePolicy"}, images: "docker.io/kyverno/kyverno*"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			res, err := Convert(t.Context(), "kyverno", []string{filepath.Join("testdata", "kyverno-ivp", tc.file)}, Options{})
			if len(tc.refused) > 0 {
				var refused *RefusedError
				if !errors.As(err, &refused) {
					t.Fatalf("converted, want refused (err %v)", err)
				}
				for _, want := range tc.refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal does not say %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for _, o := range res.Objects {
				p, ok := o.Policy.(*v1alpha1.ClusterImagePolicy)
				if !ok {
					t.Fatalf("%T", o.Policy)
				}
				kinds = append(kinds, p.Kind)
				if p.Spec.Images[0].Glob != tc.images {
					t.Errorf("images %v, want %s first", p.Spec.Images, tc.images)
				}
			}
			if diff := cmp.Diff(tc.kinds, kinds); diff != "" {
				t.Errorf("kinds (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzKyvernoIVPValidation: whatever a validation holds, it is refused or
// read into a check whose condition (if any) signet compiles.
func FuzzKyvernoIVPValidation(f *testing.F) {
	for _, seed := range []string{
		`images.containers.map(image, verifyImageSignatures(image, [attestors.notary])).all(e ,e > 0)`,
		`images.containers.map(image, verifyAttestationSignatures(image, attestations.x, [attestors.a])).all(e, e >= 1)`,
		`images.containers.map(image, extractPayload(image, attestations.x).predicate.a == "b").all(e, e)`,
		`images.initContainers.all(i, extractPayload(i, attestations["x"]).predicateType.startsWith("https://"))`,
		`images.containers.map(image, extractPayload(image, attestations.x).predicate.a == {"k": [image]}).all(e, e)`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		ck, why := ivReadCheck(expr)
		if why != "" {
			return
		}
		if len(ck.categories) == 0 {
			t.Fatalf("%s: read without image categories", expr)
		}
		switch ck.kind {
		case ivPayload:
			if err := verify.CheckCondition(ck.condition); err != nil || ck.attestation == "" {
				t.Fatalf("%s became a condition signet rejects: %s: %v", expr, ck.condition, err)
			}
		default:
			if ck.min < 1 || int(ck.min) > len(ck.attestors) {
				t.Fatalf("%s: %d of %d attestors", expr, ck.min, len(ck.attestors))
			}
		}
	})
}

// FuzzKyvernoIVPGlob: any glob is refused, reported dead, or becomes
// globs signet compiles.
func FuzzKyvernoIVPGlob(f *testing.F) {
	for _, seed := range []string{"ghcr.io/kyverno/test-verify-image*", "docker.io/kyverno/kyverno*", "ghcr.io/myorg/myrepo:*", "*", "a.b/**/c*", "localhost:5000/x*"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, pat string) {
		globs, dead, _, reason := ivGlob(pat)
		if reason != "" || dead {
			return
		}
		if len(globs) == 0 {
			t.Fatalf("%q: no globs, not dead, not refused", pat)
		}
		signetMatches(t, globs, "ghcr.io/x/y:v1") // compiles them
	})
}

// TestIVSettings: match constraints, actions and digest settings as
// signet policy settings.
func TestIVSettings(t *testing.T) {
	const key = "-----BEGIN PUBLIC KEY-----\n" +
		"MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6QsNef3SKYhJVYSVj+ZfbPwJd0pv\n" +
		"DLYNHXITZkhIzfE+apcxDjCCkDPcJ3A3zvhPATYOIsCxYPch7Q2JdJLsDQ==\n" +
		"-----END PUBLIC KEY-----"
	pods := `{resourceRules: [{apiGroups: [""], apiVersions: [v1], resources: [pods], operations: [CREATE, UPDATE]}]}`
	for _, tc := range []struct {
		name, spec string
		want       v1alpha1.ImagePolicySpec // authorities and images left out
		note       string
	}{
		{name: "autogen", spec: "matchConstraints: " + pods,
			want: v1alpha1.ImagePolicySpec{Match: &v1alpha1.MatchResources{Kinds: []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"}}}},
		{name: "autogen controllers", spec: "autogen: {podControllers: {controllers: [deployments, cronjobs]}}\nmatchConstraints: " + pods,
			want: v1alpha1.ImagePolicySpec{Match: &v1alpha1.MatchResources{Kinds: []string{"Pod", "Deployment", "CronJob"}}}},
		{name: "two resources no autogen", spec: `matchConstraints: {resourceRules: [{apiGroups: ["", apps], apiVersions: [v1], resources: [pods, deployments], operations: [CREATE]}],
    namespaceSelector: {matchLabels: {team: a}}}`,
			want: v1alpha1.ImagePolicySpec{Match: &v1alpha1.MatchResources{Kinds: []string{"Pod", "Deployment"},
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "a"}}}},
			note: "signet checks updates too"},
		{name: "every resource", spec: `matchConstraints: {resourceRules: [{apiGroups: ["*"], apiVersions: ["*"], resources: ["*"], operations: ["*"]}]}`,
			want: v1alpha1.ImagePolicySpec{Match: &v1alpha1.MatchResources{Kinds: []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"}}}},
		{name: "warn", spec: "validationActions: [Warn]\nmatchConstraints: " + pods,
			want: v1alpha1.ImagePolicySpec{Mode: "warn", OnError: "warn", Match: &v1alpha1.MatchResources{Kinds: []string{"Pod", "Deployment", "ReplicaSet", "StatefulSet", "DaemonSet", "Job", "CronJob"}}}},
		{name: "deny ignore, verifyDigest", spec: "validationActions: [Deny, Audit]\nfailurePolicy: Ignore\nvalidationConfigurations: {mutateDigest: false}\nautogen: {podControllers: {controllers: []}}\nmatchConstraints: " + pods,
			want: v1alpha1.ImagePolicySpec{OnError: "allow", Digest: "require", Match: &v1alpha1.MatchResources{Kinds: []string{"Pod"}}},
			note: "onError: allow"},
		{name: "no digest rule", spec: "validationConfigurations: {mutateDigest: false, verifyDigest: false, required: false}\nautogen: {podControllers: {controllers: []}}\nmatchConstraints: " + pods,
			want: v1alpha1.ImagePolicySpec{Digest: "none", Match: &v1alpha1.MatchResources{Kinds: []string{"Pod"}}},
			note: "required is false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := "apiVersion: policies.kyverno.io/v1\nkind: ImageValidatingPolicy\nmetadata: {name: p}\nspec:\n" +
				"  " + strings.ReplaceAll(tc.spec, "\n", "\n  ") + "\n" +
				"  matchImageReferences: [{glob: 'ghcr.io/acme/*'}]\n" +
				"  attestors: [{name: k, cosign: {key: {data: " + strconv.Quote(key) + "}}}]\n" +
				"  validations: [{expression: 'images.containers.map(i, verifyImageSignatures(i, [attestors.k])).all(e, e > 0)'}]\n"
			file := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Convert(t.Context(), "kyverno", []string{file}, Options{})
			if err != nil {
				t.Fatalf("%v\n%s", err, src)
			}
			got := res.Objects[0].Policy.(*v1alpha1.ClusterImagePolicy).Spec
			got.Authorities, got.Images = nil, nil
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if tc.note != "" && !slices.ContainsFunc(res.Notes, func(n Note) bool { return strings.Contains(n.Text, tc.note) }) {
				t.Errorf("no note saying %q: %v", tc.note, res.Notes)
			}
		})
	}
}
