package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/test/harness"
)

func repoPath(t *testing.T, rel string) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, rel)
}

// create applies one YAML document as an unstructured object.
func create(t *testing.T, c *harness.Cluster, doc string) error {
	t.Helper()
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatalf("test YAML: %v", err)
	}
	if ns := obj.GetNamespace(); ns != "" {
		nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
		if err := c.Client.Create(t.Context(), nsObj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	// Strict, as kubectl does by default: unknown fields are errors, not
	// silently pruned.
	return c.Client.Create(t.Context(), &obj, client.FieldValidation("Strict"))
}

// TestCRDsAgainstAPIServer installs the generated CRDs in a real API server:
// every example policy is accepted, and policies the schema can reject are
// rejected with their message.
func TestCRDsAgainstAPIServer(t *testing.T) {
	c := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")))

	t.Run("examples are accepted", func(t *testing.T) {
		dir := repoPath(t, "examples")
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".yaml") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range strings.Split(string(data), "\n---\n") {
				if err := create(t, c, doc); err != nil {
					t.Errorf("%s: %v", e.Name(), err)
				}
				n++
			}
		}
		if n < 5 {
			t.Fatalf("only %d example documents found", n)
		}
		// The same files compile offline.
		set, err := manifests.Load(dir)
		if err != nil || len(set.Policies) < 5 {
			t.Fatalf("loading examples: %v (%d policies)", err, len(set.Policies))
		}
	})

	const head = "apiVersion: signet.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: %s\nspec:\n"
	t.Run("accepts tag patterns", func(t *testing.T) {
		doc := strings.Replace(head, "%s", "tags", 1) + "  images: [{glob: 'registry.example.org/*/my-image', tag: mytag}, {prefix: registry.example.org/team, tag: 'release-*'}]\n  authorities:\n    - static: {action: pass}\n"
		if err := create(t, c, doc); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
	})
	t.Run("accepts certificate and notation authorities", func(t *testing.T) {
		doc := strings.Replace(head, "%s", "pki-and-notary", 1) + `  images: [{glob: 'registry.example.org/**'}]
  threshold: 2
  authorities:
    - name: corp-ca
      insecureIgnoreTlog: true
      certificate:
        secretRef: {name: corp-ca}
        identities: [{email: release@example.com}, {uriRegExp: 'https://ci\.example\.com/.+', subject: 'CN=release,O=Example Corp'}]
    - name: notary
      notation:
        secretRef: {name: notary-trust}
        trustedIdentities: ['x509.subject: C=US, ST=WA, O=Example Corp, CN=release']
        verificationLevel: permissive
        revocation: skip
`
		if err := create(t, c, doc); err != nil {
			t.Fatalf("%v:\n%s", err, doc)
		}
	})
	key := "      key:\n        data: x\n"
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"glob-and-prefix", "  images: [{glob: 'a/**', prefix: 'a'}]\n  authorities:\n    - static: {action: pass}\n", "give exactly one of glob or prefix"},
		{"certificate-roots-and-secret", "  images: [{glob: 'a/**'}]\n  authorities:\n    - certificate:\n        roots: x\n        secretRef: {name: ca}\n        identities: [{email: a@example.com}]\n", "give exactly one of roots, secretRef or configMapRef"},
		{"certificate-email-twice", "  images: [{glob: 'a/**'}]\n  authorities:\n    - certificate:\n        roots: x\n        identities: [{email: a@example.com, emailRegExp: '.*'}]\n", "give at most one of email or emailRegExp"},
		{"notation-without-trust", "  images: [{glob: 'a/**'}]\n  authorities:\n    - notation:\n        trustedIdentities: ['*']\n", "give certificateAuthorities, signingAuthorities or secretRef"},
		{"notation-level", "  images: [{glob: 'a/**'}]\n  authorities:\n    - notation:\n        certificateAuthorities: x\n        trustedIdentities: ['*']\n        verificationLevel: lenient\n", "Unsupported value"},
		{"no-images", "  images: []\n  authorities:\n    - static: {action: pass}\n", "spec.images"},
		{"two-authority-kinds", "  images: [{glob: 'a/**'}]\n  authorities:\n    - static: {action: pass}\n" + key, "give exactly one of key, keyless, certificate, notation or static"},
		{"no-authority-kind", "  images: [{glob: 'a/**'}]\n  authorities:\n    - name: empty\n", "give exactly one of key, keyless, certificate, notation or static"},
		{"issuer-twice", "  images: [{glob: 'a/**'}]\n  authorities:\n    - keyless:\n        identities: [{issuer: a, issuerRegExp: b, subject: c}]\n", "give exactly one of issuer or issuerRegExp"},
		{"no-subject", "  images: [{glob: 'a/**'}]\n  authorities:\n    - keyless:\n        identities: [{issuer: a}]\n", "give exactly one of subject or subjectRegExp"},
		{"keyless-ignoring-tlog", "  images: [{glob: 'a/**'}]\n  authorities:\n    - insecureIgnoreTlog: true\n      keyless:\n        identities: [{issuer: a, subject: b}]\n", "insecureIgnoreTlog applies only to key and certificate authorities"},
		{"threshold-too-high", "  images: [{glob: 'a/**'}]\n  threshold: 2\n  authorities:\n    - static: {action: pass}\n", "threshold cannot exceed the number of authorities"},
		{"bad-mode", "  images: [{glob: 'a/**'}]\n  mode: audit\n  authorities:\n    - static: {action: pass}\n", `spec.mode: Unsupported value: "audit"`},
		{"unknown-field", "  images: [{glob: 'a/**'}]\n  authorities:\n    - static: {action: pass}\n      keyles: {}\n", "unknown field"},
		{"tag-in-excludeImages", "  images: [{glob: 'a/**'}]\n  excludeImages: [{glob: 'a/b', tag: debug}]\n  authorities:\n    - static: {action: pass}\n", "a tag cannot exclude an image"},
		{"tag-characters", "  images: [{glob: 'a/**', tag: 'v1@sha256'}]\n  authorities:\n    - static: {action: pass}\n", "spec.images[0].tag"},
	} {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			doc := strings.Replace(head, "%s", "bad-"+tc.name, 1) + tc.spec
			err := create(t, c, doc)
			if err == nil {
				t.Fatalf("the API server accepted:\n%s", doc)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("rejected with %q, want it to say %q", err, tc.want)
			}
		})
	}
}

// TestDeployManifests checks deploy/manifests against the real API server
// with a server-side dry run (the namespace is created for real, as the
// namespaced objects need it).
func TestDeployManifests(t *testing.T) {
	c := harness.StartCluster(t, harness.WithCRDs(repoPath(t, "deploy/crds")))
	dir := repoPath(t, "deploy/manifests")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---\n") {
			var obj unstructured.Unstructured
			if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
				t.Fatalf("%s: %v", e.Name(), err)
			}
			opts := []client.CreateOption{client.FieldValidation("Strict")}
			if obj.GetKind() != "Namespace" {
				opts = append(opts, client.DryRunAll)
			}
			if err := c.Client.Create(t.Context(), &obj, opts...); err != nil {
				t.Errorf("%s: %s %s: %v", e.Name(), obj.GetKind(), obj.GetName(), err)
			}
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d objects in deploy/manifests", n)
	}
}
