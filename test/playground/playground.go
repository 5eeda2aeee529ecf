// Package playground is signet's main job, on one machine: a real
// kube-apiserver and etcd, a local registry with sample images, and `signet
// serve` registered as the admission webhook, then the "Verify your
// configuration" steps of the Tanzu image policy documentation (seed 001)
// run with the real kubectl. `make playground` runs it and keeps it up;
// `go run ./test/playground --check` (and `make test`) runs the scenario
// and fails if any outcome differs.
package playground

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/webhook"
)

// World is the running playground.
type World struct {
	Cluster  *harness.Cluster
	Registry *registrytest.Registry
	Webhook  *webhook.Webhook
	kubectl  string
	images   map[string]registrytest.Image
}

// Start brings the playground up: cluster, registry, images, policy,
// webhook. Everything stops with tb's cleanups.
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
	fmt.Fprintln(out, "starting a registry and pushing sample images ...")
	w.Registry = harness.StartRegistry(tb)
	cosign := harness.NewCosign(tb)
	team, stranger := cosign.GenerateKeyPair(tb), cosign.GenerateKeyPair(tb)
	w.images["signed"] = w.Registry.PushRandomImage(tb, "apps/cosign", "v1.2.1")
	cosign.Sign(tb, w.images["signed"].Ref, team, harness.Legacy)
	w.images["other-key"] = w.Registry.PushRandomImage(tb, "apps/cosign", "v0.3.0")
	cosign.Sign(tb, w.images["other-key"].Ref, stranger, harness.Bundle)
	w.images["unsigned"] = w.Registry.PushRandomImage(tb, "apps/unsigned", "v1")
	w.images["unmatched"] = w.Registry.PushRandomImage(tb, "library/busybox", "latest")

	// Keyless: a local Sigstore (Fulcio CA, CT log, Rekor, TSA) stands in
	// for the public-good instance; signet trusts its trusted_root.json.
	fmt.Fprintln(out, "signing a sample image keyless with a local Fulcio and Rekor ...")
	sigstore := sigstoretest.New(tb)
	w.images["keyless"] = w.Registry.PushRandomImage(tb, "release/api", "v2.0.0")
	w.signKeyless(tb, sigstore, w.images["keyless"], playgroundWorkflow)
	w.images["keyless-fork"] = w.Registry.PushRandomImage(tb, "release/api", "v2.0.0-fork")
	w.signKeyless(tb, sigstore, w.images["keyless-fork"], "https://github.com/someone/fork/.github/workflows/release.yml@refs/heads/main")
	trustedRoot := filepath.Join(tb.TempDir(), "trusted_root.json")
	if err := os.WriteFile(trustedRoot, sigstore.TrustedRootJSON(), 0o600); err != nil {
		tb.Fatal(err)
	}

	pub, err := os.ReadFile(team.Public)
	if err != nil {
		tb.Fatal(err)
	}
	policy := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "team-signed"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: w.Registry.Host + "/apps/**"}},
		Authorities: []v1alpha1.Authority{{Name: "cosign-key", InsecureIgnoreTlog: true,
			Key: &v1alpha1.KeyAuthority{Data: string(pub)}}},
	}}
	if err := w.Cluster.Client.Create(tb.Context(), policy); err != nil {
		tb.Fatal(err)
	}
	release := &v1alpha1.ClusterImagePolicy{ObjectMeta: metav1.ObjectMeta{Name: "release-workflow"}, Spec: v1alpha1.ImagePolicySpec{
		Images: []v1alpha1.ImageMatcher{{Glob: w.Registry.Host + "/release/**"}},
		Authorities: []v1alpha1.Authority{{Name: "github-release", Keyless: &v1alpha1.KeylessAuthority{
			Identities: []v1alpha1.Identity{{Issuer: playgroundIssuer, SubjectRegExp: `https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/heads/main`}},
		}}},
	}}
	if err := w.Cluster.Client.Create(tb.Context(), release); err != nil {
		tb.Fatal(err)
	}
	fmt.Fprintln(out, "starting signet serve as the admission webhook ...")
	// Unmatched images are admitted with a warning, as with Tanzu's
	// AllowUnmatchedImages.
	w.Webhook = webhook.Start(tb, w.Cluster, "--allow-http-registry", "--unmatched", "warn", "--trusted-root", trustedRoot)
	return w
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
	// OK: the command must succeed; Want: its output must contain these.
	OK   bool
	Want []string
}

// Steps are seed 001's checks, on the playground's images.
func (w *World) Steps() []Step {
	img := func(k string) string { return w.images[k].Tag }
	return []Step{
		{"a signed image, validated with the configured public key, launches",
			[]string{"run", "cosign", "--image=" + img("signed"), "--restart=Never", "--command", "--", "sleep", "900"},
			true, []string{"pod/cosign created"}},
		{"an image no policy matches launches, with a warning",
			[]string{"run", "bb", "--image=" + img("unmatched"), "--restart=Never"},
			true, []string{"Warning:", img("unmatched") + " did not match any image policies", "pod/bb created"}},
		{"an image signed with another key does not launch",
			[]string{"run", "cosign-fail", "--image=" + img("other-key"), "--command", "--", "sleep", "900"},
			false, []string{"denied the request", "spec.containers[0].image: " + img("other-key"), "denied by policy team-signed", "authority cosign-key", "none verified by key"}},
		{"an unsigned image does not launch",
			[]string{"run", "unsigned", "--image=" + img("unsigned"), "--restart=Never"},
			false, []string{"authority cosign-key: no signature found"}},
		{"an image signed keyless by the release workflow launches",
			[]string{"run", "api", "--image=" + img("keyless"), "--restart=Never"},
			true, []string{"pod/api created"}},
		{"an image signed keyless by another workflow does not launch",
			[]string{"run", "api-fork", "--image=" + img("keyless-fork"), "--restart=Never"},
			false, []string{"denied by policy release-workflow", "authority github-release", "does not match"}},
		{"the admitted pod runs the digest that was verified",
			[]string{"get", "pod", "cosign", "-o", "jsonpath={.spec.containers[0].image}"},
			true, []string{img("signed") + "@" + w.images["signed"].Digest}},
	}
}

// Run runs the steps with kubectl, printing each; it returns the steps
// whose outcome differed.
func (w *World) Run(ctx context.Context, out io.Writer) []string {
	var failed []string
	for i, s := range w.Steps() {
		cmdCtx, cancel := context.WithTimeout(ctx, time.Minute)
		cmd := exec.CommandContext(cmdCtx, w.kubectl, append([]string{"--kubeconfig", w.Cluster.Kubeconfig, "--namespace", "default"}, s.Args...)...)
		b, err := cmd.CombinedOutput()
		cancel()
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

Registry: %s (plain HTTP). Sample images:
`, w.Cluster.Kubeconfig, w.images["signed"].Tag, w.images["unsigned"].Tag, w.Registry.Host)
	for _, k := range []string{"signed", "other-key", "unsigned", "unmatched", "keyless", "keyless-fork"} {
		fmt.Fprintf(out, "  %-12s %s\n", k, w.images[k].Tag)
	}
}
