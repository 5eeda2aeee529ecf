package convert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
)

// tanzuTable is seed 001's "Image name patterns" table: each pattern, the
// images its "Matches Image Name" column lists, and images it must not
// match.
var tanzuTable = []struct {
	desc, pattern string
	match, not    []string
}{
	{"Exact Match", "registry.example.org/myproject/my-image:mytag",
		[]string{"registry.example.org/myproject/my-image:mytag"},
		[]string{"registry.example.org/myproject/my-image:other-tag", "registry.example.org/myproject/my-image", "registry.example.org/myproject/my-image:mytag2", "registry.example.org/anotherproject/my-image:mytag", "registry.example.org/myproject/my-image2:mytag"}},
	{"Any Tag", "registry.example.org/myproject/my-image",
		[]string{"registry.example.org/myproject/my-image:mytag", "registry.example.org/myproject/my-image:other-tag"},
		[]string{"registry.example.org/myproject/my-image2:mytag", "registry.example.org/myproject/other:mytag"}},
	{"Any Tag", "registry.example.org/myproject/my-image:*",
		[]string{"registry.example.org/myproject/my-image:mytag", "registry.example.org/myproject/my-image:other-tag"},
		[]string{"registry.example.org/myproject/my-image2:mytag"}},
	{"Any Image and Tag", "registry.example.org/myproject/*",
		[]string{"registry.example.org/myproject/my-image:mytag", "registry.example.org/myproject/anotherimage:anothertag"},
		[]string{"registry.example.org/anotherproject/my-image:mytag", "registry.example.org/myproject-x/img:mytag"}},
	{"Any Project", "registry.example.org/*/my-image:mytag",
		[]string{"registry.example.org/myproject/my-image:mytag", "registry.example.org/anotherproject/my-image:mytag"},
		[]string{"registry.example.org/myproject/my-image:anothertag", "registry.example.org/myproject/other:mytag", "other.example.org/myproject/my-image:mytag"}},
	{"Any Project and Tag", "registry.example.org/*/my-image",
		[]string{"registry.example.org/myproject/my-image:mytag", "registry.example.org/myproject/my-image:anothertag"},
		[]string{"registry.example.org/myproject/other:mytag"}},
	{"Registry", "registry.example.org/*",
		[]string{"registry.example.org/myproject/my-image:mytag", "registry.example.org/anotherproject/anotherimage:anothertag"},
		[]string{"my-registry.example.org/myproject/my-image:mytag", "registry.example.org.evil.com/x:y"}},
	{"Any Subdomain", "*.example.org/*",
		[]string{"my-registry.example.org/myproject/my-image:mytag", "registry.example.org/anotherproject/anotherimage:anothertag"},
		[]string{"example.org/x:y", "registry.example.com/x:y"}},
	{"Anything", "*",
		[]string{"my-registry.example.org/myproject/my-image:mytag", "registry.example.org/anotherproject/anotherimage:anothertag", "registry.io/project/image:tag"},
		nil},
}

// TestTanzuNamePatternTable: every row of seed 001's table converts without
// --allow-lossy and, compiled, selects (policy.Snapshot.Match) exactly as
// the table says. An image given by digest alone is selected by a tag
// pattern of its repository; one with tag and digest by its tag.
func TestTanzuNamePatternTable(t *testing.T) {
	key := tanzuTestKey(t)
	digest := "@sha256:" + hex64
	for _, row := range tanzuTable {
		t.Run(row.desc+" "+row.pattern, func(t *testing.T) {
			snap := tanzuSnapshot(t, key, row.pattern)
			check := func(image string, want bool) {
				ref, err := reference.Parse(image)
				if err != nil {
					t.Fatalf("%q: %v", image, err)
				}
				if got := len(snap.Match(ref, policy.Target{Namespace: "default", Kind: "Pod"})) > 0; got != want {
					t.Errorf("%q on %q: matched %v, want %v", row.pattern, image, got, want)
				}
			}
			for _, im := range row.match {
				check(im, true)
				name, _, _ := strings.Cut(im[strings.LastIndex(im, "/"):], ":")
				check(im[:strings.LastIndex(im, "/")]+name+digest, true) // by digest alone
				check(im+digest, true)                                   // tag and digest: by the tag
			}
			for _, im := range row.not {
				check(im, false)
				if strings.HasSuffix(row.pattern, ":mytag") && strings.Contains(im, ":") && !strings.HasSuffix(im, ":mytag") {
					check(im+digest, false) // another tag, with a digest
				}
			}
		})
	}
	// The whole table in one policy with one key converts too.
	var patterns []string
	for _, row := range tanzuTable {
		patterns = append(patterns, row.pattern)
	}
	tanzuSnapshot(t, key, patterns...)
}

// TestTanzuRefusesDigestPatterns: a digest in a pattern cannot be
// expressed (signet verifies the digest each image has), and is refused
// naming the field; different keys on patterns that can select the same
// tag are refused, on different tags only noted.
func TestTanzuRefusesDigestPatterns(t *testing.T) {
	key := tanzuTestKey(t)
	_, err := tanzuConvert(t, key, "registry.example.org/myproject/my-image@sha256:"+hex64)
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "spec.verification.images[0].namePattern") || !strings.Contains(err.Error(), "names a digest") {
		t.Errorf("got %v, want a refusal of spec.verification.images[0].namePattern naming the digest", err)
	}
	src := `apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    keys: [{name: a, publicKey: "` + key + `"}, {name: b, publicKey: "` + key + `"}]
    images:
    - {namePattern: "registry.example.org/*/my-image:mytag", keys: [{name: a}]}
    - {namePattern: "registry.example.org/myproject/my-image:other", keys: [{name: b}]}
    - {namePattern: "registry.example.org/myproject/*:my*", keys: [{name: b}]}
`
	_, err = Convert(t.Context(), "tanzu", []string{writeTemp(t, src)}, Options{})
	if !errors.As(err, &refused) || len(refused.Problems) != 1 || refused.Problems[0].Path != "spec.verification.images[2].namePattern" {
		t.Errorf("got %v, want images[2] alone refused (its tags overlap images[0]'s)", err)
	}
}

func tanzuTestKey(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), "\n", `\n`)
}

func writeTemp(t *testing.T, src string) string {
	path := filepath.Join(t.TempDir(), "tanzu.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func tanzuConvert(t *testing.T, key string, patterns ...string) (*Result, error) {
	var b strings.Builder
	b.WriteString(`apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    keys: [{name: k, publicKey: "` + key + `"}]
    images:
`)
	for _, p := range patterns {
		b.WriteString(`    - {namePattern: "` + p + `", keys: [{name: k}]}` + "\n")
	}
	return Convert(t.Context(), "tanzu", []string{writeTemp(t, b.String())}, Options{})
}

// tanzuSnapshot converts patterns (without --allow-lossy) and compiles the
// result as signet serve does.
func tanzuSnapshot(t *testing.T, key string, patterns ...string) *policy.Snapshot {
	res, err := tanzuConvert(t, key, patterns...)
	if err != nil {
		t.Fatal(err)
	}
	var ps []*policy.Policy
	for _, o := range res.Objects {
		cip, ok := o.Policy.(*v1alpha1.ClusterImagePolicy)
		if !ok {
			t.Fatalf("converted a %T", o.Policy)
		}
		p := policy.CompileObject(t.Context(), policy.Object{Kind: policy.KindClusterImagePolicy, Name: cip.Name, Spec: cip.Spec}, nil)
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		ps = append(ps, p)
	}
	snap, err := policy.NewSnapshot(ps, policy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// TestTanzuSecretRef: an images entry's secretRef becomes the policy's
// spec.pullSecrets (the namespace it names, signet's when none), and the
// conversion points Tanzu's image-policy-registry-credentials service
// account at --fallback-service-account.
func TestTanzuSecretRef(t *testing.T) {
	key := tanzuTestKey(t)
	src := `apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    keys: [{name: k, publicKey: "` + key + `"}]
    images:
    - {namePattern: "registry.example.org/myproject/*", keys: [{name: k}], secretRef: {name: registry-credentials, namespace: default}}
    - {namePattern: "other.example.org/*", keys: [{name: k}], secretRef: {name: other-credentials}}
    - {namePattern: "public.example.org/*", keys: [{name: k}]}
`
	res, err := Convert(t.Context(), "tanzu", []string{writeTemp(t, src)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]v1alpha1.PullSecretReference{}
	for _, o := range res.Objects {
		cip := o.Policy.(*v1alpha1.ClusterImagePolicy)
		got[cip.Spec.Images[0].Glob] = cip.Spec.PullSecrets
	}
	want := map[string][]v1alpha1.PullSecretReference{
		"registry.example.org/myproject/*/**": {{Name: "registry-credentials", Namespace: "default"}},
		"other.example.org/*/**":              {{Name: "other-credentials"}},
		"public.example.org/*/**":             nil,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("pull secrets by images (-want +got):\n%s", diff)
	}
	var notes []string
	for _, n := range res.Notes {
		notes = append(notes, n.Path+": "+n.Text)
	}
	all := strings.Join(notes, "\n")
	for _, w := range []string{
		"spec.verification.images[1].secretRef: Secret other-credentials is read from signet's namespace",
		"--fallback-service-account image-policy-registry-credentials",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("notes do not say %q:\n%s", w, all)
		}
	}
	if strings.Contains(all, "registry-credentials's credentials") {
		t.Errorf("secretRef still noted as unsupported:\n%s", all)
	}
}
