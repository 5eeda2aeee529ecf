// Package playground is signet's main job, on one machine: a real
// kube-apiserver and etcd, two local registries with sample images (one
// needs a password), and `signet serve` registered as the admission
// webhook; then the Tanzu image policy documentation (seed 001) run with
// the real kubectl: what happens without a policy, the seed's own
// ClusterImagePolicy converted by `signet policy convert --from tanzu` and
// applied, and its "Verify your configuration" steps. `make playground`
// runs it and keeps it up; `go run ./test/playground --check` (and `make
// test`) runs the scenario and fails if any outcome differs.
package playground

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/webhook"
)

// World is the running playground.
type World struct {
	Cluster  *harness.Cluster
	Registry *registrytest.Registry
	// Private is a registry that needs a user and password: the seed's
	// "registry protected by authentication", read with the Secret the
	// Tanzu policy's secretRef names.
	Private *registrytest.Registry
	Webhook *webhook.Webhook
	kubectl string
	images  map[string]registrytest.Image
	// tanzu is seed 001's ClusterImagePolicy (Tanzu format, placeholders
	// filled in); converted is what `signet policy convert --from tanzu`
	// made of it; keyless is the hand-written keyless policy. The steps
	// apply the last two.
	tanzu, converted, keyless string
}

// The seed's registry credential: a user of the private registry, the
// docker-registry Secret that holds it and that Secret's namespace
// (Tanzu's deployment namespace); and the excluded namespace the steps use.
const (
	privateUser     = "reader"
	privatePassword = "pw-reader"
	privateSecret   = "authproject-reader"
	secretNamespace = "image-policy-system" //nolint:gosec // G101: a namespace's name, not a credential
	// excludedNamespace is one of the Tanzu system namespaces the seed's
	// policy excludes (testdata/tanzu-image-policy.yaml).
	excludedNamespace = "tekton-pipelines"
)

// Start brings the playground up: cluster, registries, images, the
// policies to apply, the registry credential, and signet serve as the
// webhook with the flags the conversion's notes ask for. No policy is
// applied yet: the first steps show what signet does without one, then
// apply them. Everything stops with tb's cleanups.
func Start(tb testing.TB, out io.Writer) *World {
	tb.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		tb.Fatal(err)
	}
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintln(out, "starting kube-apiserver and etcd ...")
	w := &World{
		Cluster: harness.StartCluster(tb, harness.WithCRDs(filepath.Join(root, "deploy/crds")), harness.WithScheme(scheme)),
		kubectl: harness.Binary(tb, "kubectl"),
		images:  map[string]registrytest.Image{},
	}
	fmt.Fprintln(out, "starting two registries (one needs a password) and pushing sample images ...")
	w.Registry = harness.StartRegistry(tb)
	w.Private = harness.StartRegistry(tb, harness.WithBasicAuth(privateUser, privatePassword))
	cosign := harness.NewCosign(tb)
	if b, err := cosign.Run(tb.Context(), "login", w.Private.Host, "-u", privateUser, "-p", privatePassword); err != nil {
		tb.Fatalf("cosign login %s: %v: %s", w.Private.Host, err, b)
	}
	team, stranger := cosign.GenerateKeyPair(tb), cosign.GenerateKeyPair(tb)
	// The seed's images, on the playground's registry: cosign v1.2.1 signed
	// with the policy's key, v0.3.0 signed with another, busybox that no
	// pattern names; and an unsigned image a pattern names.
	w.images["signed"] = w.Registry.PushRandomImage(tb, "projectsigstore/cosign", "v1.2.1")
	cosign.Sign(tb, w.images["signed"].Ref, team, harness.Legacy)
	w.images["other-key"] = w.Registry.PushRandomImage(tb, "projectsigstore/cosign", "v0.3.0")
	cosign.Sign(tb, w.images["other-key"].Ref, stranger, harness.Bundle)
	w.images["unsigned"] = w.Registry.PushRandomImage(tb, "myproject/unsigned", "v1")
	w.images["unmatched"] = w.Registry.PushRandomImage(tb, "library/busybox", "latest")
	// Images signed with the policy's key in the private registry: one
	// where the policy names a Secret (authproject), one where it names
	// none (myproject).
	for _, im := range []struct{ key, repo string }{{"private", "authproject/app"}, {"private-no-secret", "myproject/app"}} {
		rnd, err := random.Image(256, 2)
		if err != nil {
			tb.Fatal(err)
		}
		w.images[im.key] = w.Private.PushImage(tb, im.repo, "v1", rnd, remote.WithAuth(&authn.Basic{Username: privateUser, Password: privatePassword}))
		cosign.Sign(tb, w.images[im.key].Ref, team, harness.Legacy)
	}

	// Keyless: a local Sigstore (Fulcio CA, CT log, Rekor, TSA) stands in
	// for the public-good instance; signet trusts its trusted_root.json.
	fmt.Fprintln(out, "signing a sample image keyless with a local Fulcio and Rekor ...")
	sigstore := sigstoretest.New(tb)
	w.images["keyless"] = w.Registry.PushRandomImage(tb, "release/api", "v2.0.0")
	w.signKeyless(tb, sigstore, w.images["keyless"], playgroundWorkflow)
	w.images["keyless-fork"] = w.Registry.PushRandomImage(tb, "release/api", "v2.0.0-fork")
	w.signKeyless(tb, sigstore, w.images["keyless-fork"], "https://github.com/someone/fork/.github/workflows/release.yml@refs/heads/main")
	dir := tb.TempDir()
	trustedRoot := filepath.Join(dir, "trusted_root.json")
	if err := os.WriteFile(trustedRoot, sigstore.TrustedRootJSON(), 0o600); err != nil {
		tb.Fatal(err)
	}

	// The seed's policy, converted by signet itself.
	fmt.Fprintln(out, "converting the seed's Tanzu ClusterImagePolicy with signet policy convert --from tanzu ...")
	pub, err := os.ReadFile(team.Public)
	if err != nil {
		tb.Fatal(err)
	}
	notes := w.convertTanzu(tb, filepath.Join(root, "test/playground/testdata/tanzu-image-policy.yaml"), dir, string(pub))
	for _, n := range strings.Split(strings.TrimSpace(notes), "\n") {
		fmt.Fprintf(out, "  %s\n", n)
	}
	// serve runs as the notes say: the policy's excluded namespaces, and
	// --unmatched=warn (the seed's AllowUnmatchedImages is true).
	exclude := regexp.MustCompile(`--exclude-namespace=[a-z0-9-]+`).FindAllString(notes, -1)
	if !slices.Contains(exclude, "--exclude-namespace="+excludedNamespace) || !strings.Contains(notes, "--unmatched=warn") {
		tb.Fatalf("the conversion's notes do not ask for --exclude-namespace=%s nor say --unmatched=warn:\n%s", excludedNamespace, notes)
	}
	serve := append([]string{"--allow-http-registry", "--trusted-root", trustedRoot, "--unmatched=warn"}, exclude...)

	// The keyless part has no Tanzu equivalent (Tanzu verifies keys only):
	// it stays a hand-written signet ClusterImagePolicy.
	w.keyless = writeYAML(tb, dir, "keyless-policy.yaml", &v1alpha1.ClusterImagePolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "ClusterImagePolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: "release-workflow"},
		Spec: v1alpha1.ImagePolicySpec{
			Images: []v1alpha1.ImageMatcher{{Glob: w.Registry.Host + "/release/**"}},
			Authorities: []v1alpha1.Authority{{Name: "github-release", Keyless: &v1alpha1.KeylessAuthority{
				Identities: []v1alpha1.Identity{{Issuer: playgroundIssuer, SubjectRegExp: `https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/heads/main`}},
			}}},
		},
	})

	// The seed's registry credential, created as its documentation does,
	// and the excluded namespace, whose images are not signed.
	fmt.Fprintln(out, "creating the registry credential the policy's secretRef names ...")
	w.mustKubectl(tb, "create", "namespace", secretNamespace)
	w.mustKubectl(tb, "create", "secret", "docker-registry", privateSecret, "--namespace", secretNamespace,
		"--docker-server="+w.Private.Host, "--docker-username="+privateUser, "--docker-password="+privatePassword)
	w.mustKubectl(tb, "create", "namespace", excludedNamespace)

	fmt.Fprintf(out, "starting signet serve as the admission webhook (%s) ...\n", strings.Join(serve[2:], " "))
	w.Webhook = webhook.Start(tb, w.Cluster, serve...)
	return w
}

// convertTanzu fills in the placeholders of the Tanzu policy at template,
// writes it to dir, runs `signet policy convert --from tanzu` on it and
// writes what that prints to dir; it returns the conversion's notes.
func (w *World) convertTanzu(tb testing.TB, template, dir, publicKey string) string {
	tb.Helper()
	b, err := os.ReadFile(template)
	if err != nil {
		tb.Fatal(err)
	}
	// The key goes under "publicKey: |", indented as its placeholder is.
	const indent = "        "
	key := strings.ReplaceAll(strings.TrimSpace(publicKey), "\n", "\n"+indent)
	manifest := strings.NewReplacer("${REGISTRY}", w.Registry.Host, "${PRIVATE_REGISTRY}", w.Private.Host, "${PUBLIC_KEY}", key).Replace(string(b))
	if strings.Contains(manifest, "${") {
		tb.Fatalf("%s: a placeholder is left:\n%s", template, manifest)
	}
	w.tanzu = filepath.Join(dir, "tanzu-image-policy.yaml")
	if err := os.WriteFile(w.tanzu, []byte(manifest), 0o600); err != nil { //nolint:gosec // G703: a file in the test's own temporary directory
		tb.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli.Execute(tb.Context(), []string{"policy", "convert", "--from", "tanzu", w.tanzu}, &stdout, &stderr); code != 0 {
		tb.Fatalf("signet policy convert --from tanzu %s: exit %d:\n%s", w.tanzu, code, stderr.String())
	}
	w.converted = filepath.Join(dir, "signet-image-policy.yaml")
	if err := os.WriteFile(w.converted, stdout.Bytes(), 0o600); err != nil {
		tb.Fatal(err)
	}
	return stderr.String()
}

// writeYAML writes obj as YAML to dir/name and returns the path.
func writeYAML(tb testing.TB, dir, name string, obj any) string {
	tb.Helper()
	b, err := yaml.Marshal(obj)
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// mustKubectl runs kubectl against the playground, failing tb if it fails.
func (w *World) mustKubectl(tb testing.TB, args ...string) {
	tb.Helper()
	if b, err := w.runKubectl(tb.Context(), args...); err != nil {
		tb.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, b)
	}
}

// runKubectl runs kubectl against the playground (in namespace default
// unless args give another) and returns its combined output.
func (w *World) runKubectl(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return exec.CommandContext(ctx, w.kubectl, append([]string{"--kubeconfig", w.Cluster.Kubeconfig, "--namespace", "default"}, args...)...).CombinedOutput()
}

// The identity of the playground's keyless signer: a GitHub Actions release
// workflow, as Fulcio would certify it.
const (
	playgroundIssuer   = "https://token.actions.githubusercontent.com"
	playgroundWorkflow = "https://github.com/acme/api/.github/workflows/release.yml@refs/heads/main"
)

// signKeyless attaches a keyless signature (a Sigstore bundle, as cosign 3
// writes by default) by subject to img.
func (w *World) signKeyless(tb testing.TB, s *sigstoretest.Sigstore, img registrytest.Image, subject string) {
	tb.Helper()
	name, _, _ := strings.Cut(img.Ref, "@")
	statement := sigstoretest.Statement(tb, sigstoretest.CosignSignPredicateType, nil, name, img.Digest)
	w.Registry.AttachBundle(tb, img, s.Bundle(tb, statement, sigstoretest.SignOptions{Identity: subject, Issuer: playgroundIssuer}))
}

// Step is one kubectl command and what must happen.
type Step struct {
	Title string
	Args  []string
	// OK: the command must succeed; Want: its output must contain these;
	// Not: nor any of these.
	OK   bool
	Want []string
	Not  []string
}

// Steps are seed 001's checks, on the playground's images: what signet
// says while no policy exists; the seed's policy (converted) and the
// keyless one applied; the "Verify your configuration" steps 1-3; an
// unsigned image; the excluded namespace; the registry that needs the
// policy's Secret; keyless signatures; the digest pin.
func (w *World) Steps() []Step {
	img := func(k string) string { return w.images[k].Tag }
	return []Step{
		{Title: "with no ClusterImagePolicy yet, an image is admitted with a warning that enforcement was not applied",
			Args: []string{"run", "no-policy", "--image=" + img("signed"), "--restart=Never"},
			OK:   true, Want: []string{"Warning:", img("signed") + " did not match any image policies: no ClusterImagePolicy exists, so image policy enforcement was not applied; admitted because signet runs with --unmatched=warn", "pod/no-policy created"}},
		{Title: "apply the seed's policy as signet policy convert --from tanzu wrote it, and the keyless policy",
			Args: []string{"apply", "-f", w.converted, "-f", w.keyless},
			OK:   true, Want: []string{"clusterimagepolicy.signet.dev/image-policy-", "-projectsigstore-cosign created", "-authproject created", "clusterimagepolicy.signet.dev/release-workflow created"}},
		{Title: "signet has loaded them",
			Args: []string{"wait", "--for=condition=Ready", "clusterimagepolicies", "--all", "--timeout=60s"},
			OK:   true, Want: []string{"condition met"}},
		{Title: "a signed image, validated with the configured public key, launches",
			Args: []string{"run", "cosign", "--image=" + img("signed"), "--restart=Never", "--command", "--", "sleep", "900"},
			OK:   true, Want: []string{"pod/cosign created"}, Not: []string{"Warning:"}},
		{Title: "an image no policy matches launches, with a warning",
			Args: []string{"run", "bb", "--image=" + img("unmatched"), "--restart=Never"},
			OK:   true, Want: []string{"Warning:", img("unmatched") + " did not match any image policies; admitted because signet runs with --unmatched=warn", "pod/bb created"},
			Not: []string{"no ClusterImagePolicy exists"}},
		{Title: "an image signed with another key does not launch",
			Args: []string{"run", "cosign-fail", "--image=" + img("other-key"), "--command", "--", "sleep", "900"},
			Want: []string{"Forbidden", "denied the request", "spec.containers[0].image: " + img("other-key"), "denied by policy image-policy-", "authority tanzu-keys", "none verified by key"}},
		{Title: "an unsigned image does not launch",
			Args: []string{"run", "unsigned", "--image=" + img("unsigned"), "--restart=Never"},
			Want: []string{"Forbidden", "authority tanzu-keys: no signature found"}},
		{Title: "in a namespace the policy excludes, an unsigned image launches",
			Args: []string{"run", "unsigned", "--namespace", excludedNamespace, "--image=" + img("unsigned"), "--restart=Never"},
			OK:   true, Want: []string{"namespace " + excludedNamespace + " is excluded from image policy enforcement", "pod/unsigned created"}},
		{Title: "a signed image in the registry that needs credentials launches: signet reads it with the policy's secretRef",
			Args: []string{"run", "authproject", "--image=" + img("private"), "--restart=Never"},
			OK:   true, Want: []string{"pod/authproject created"}},
		{Title: "where the policy names no Secret for that registry, signet cannot read it and says so",
			Args: []string{"run", "myproject", "--image=" + img("private-no-secret"), "--restart=Never"},
			Want: []string{"ServiceUnavailable", "could not decide", "401 Unauthorized (no pull secret names " + w.Private.Host + ")"}},
		{Title: "an image signed keyless by the release workflow launches",
			Args: []string{"run", "api", "--image=" + img("keyless"), "--restart=Never"},
			OK:   true, Want: []string{"pod/api created"}},
		{Title: "an image signed keyless by another workflow does not launch",
			Args: []string{"run", "api-fork", "--image=" + img("keyless-fork"), "--restart=Never"},
			Want: []string{"denied by policy release-workflow", "authority github-release", "does not match"}},
		{Title: "the admitted pods run the digests that were verified",
			Args: []string{"get", "pod", "cosign", "authproject", "-o", "jsonpath={.items[*].spec.containers[0].image}"},
			OK:   true, Want: []string{img("signed") + "@" + w.images["signed"].Digest, img("private") + "@" + w.images["private"].Digest}},
	}
}

// Run runs the steps with kubectl, printing each; it returns the steps
// whose outcome differed.
func (w *World) Run(ctx context.Context, out io.Writer) []string {
	var failed []string
	for i, s := range w.Steps() {
		b, err := w.runKubectl(ctx, s.Args...)
		output := strings.TrimSpace(string(b))
		fmt.Fprintf(out, "\n%d. %s\n   $ kubectl %s\n", i+1, s.Title, strings.Join(s.Args, " "))
		for _, line := range strings.Split(output, "\n") {
			fmt.Fprintf(out, "   %s\n", line)
		}
		var why []string
		if (err == nil) != s.OK {
			why = append(why, fmt.Sprintf("kubectl %s (err: %v)", map[bool]string{true: "should have succeeded", false: "should have failed"}[s.OK], err))
		}
		for _, want := range s.Want {
			if !strings.Contains(output, want) {
				why = append(why, fmt.Sprintf("output does not say %q", want))
			}
		}
		for _, not := range s.Not {
			if strings.Contains(output, not) {
				why = append(why, fmt.Sprintf("output says %q", not))
			}
		}
		if len(why) > 0 {
			fmt.Fprintf(out, "   UNEXPECTED: %s\n", strings.Join(why, "; "))
			failed = append(failed, fmt.Sprintf("step %d (%s): %s", i+1, s.Title, strings.Join(why, "; ")))
		} else {
			fmt.Fprintln(out, "   as expected")
		}
	}
	return failed
}

// Explain says how to use the running playground.
func (w *World) Explain(out io.Writer) {
	fmt.Fprintf(out, `
The playground is running until you press Ctrl-C.

  export KUBECONFIG=%s
  kubectl get clusterimagepolicies
  kubectl run test --image=%s --restart=Never      # signed: admitted
  kubectl run test2 --image=%s --restart=Never     # unsigned: denied

Seed 001's policy, in Tanzu's format: %s
What signet policy convert --from tanzu made of it: %s
Registries (plain HTTP): %s, and %s (user %s, password %s; the Secret
%s/%s holds them). Sample images:
`, w.Cluster.Kubeconfig, w.images["signed"].Tag, w.images["unsigned"].Tag, w.tanzu, w.converted,
		w.Registry.Host, w.Private.Host, privateUser, privatePassword, secretNamespace, privateSecret)
	for _, k := range []string{"signed", "other-key", "unsigned", "unmatched", "private", "private-no-secret", "keyless", "keyless-fork"} {
		fmt.Fprintf(out, "  %-17s %s\n", k, w.images[k].Tag)
	}
}
