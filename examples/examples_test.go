// Package examples holds one policy per seed scenario; its tests run each
// against real signed and unsigned images, with the example's registry
// host and keys swapped for the test's own.
package examples

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

var pemBlock = regexp.MustCompile(`(?s)-----BEGIN PUBLIC KEY-----.*?-----END PUBLIC KEY-----`)

// localize rewrites an example for the test world: its hosts become the
// test registry and every PEM public key becomes key (indentation kept).
func localize(t *testing.T, file, host, key string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(data), "registry.example.org", host)
	return pemBlock.ReplaceAllStringFunc(s, func(block string) string {
		// Find the indentation of the block's lines from the original.
		i := strings.Index(s, block)
		lineStart := strings.LastIndex(s[:i], "\n") + 1
		indent := s[lineStart:i]
		lines := strings.Split(strings.TrimSpace(key), "\n")
		return strings.Join(lines, "\n"+indent)
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func signet(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := cli.Execute(context.Background(), args, &out, &out)
	return code, out.String()
}

// TestKeyExamples: the Tanzu (seed 001) and CRI-O (seed 003) key policies
// admit what their key signed and refuse the rest, for the reasons their
// systems would.
func TestKeyExamples(t *testing.T) {
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	key, other := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string { return clitest.WriteFile(t, dir, name, content) }

	t.Run("tanzu", func(t *testing.T) {
		policy := write("tanzu.yaml", localize(t, "tanzu-key-policy.yaml", reg.Host, string(pub)))
		secret := write("tanzu-secret.yaml", localize(t, "tanzu-cosign-key-secret.yaml", reg.Host, string(pub)))
		signed := reg.PushRandomImage(t, "app/web", "v1")
		cosign.Sign(t, signed.Ref, key, harness.Legacy)
		wrong := reg.PushRandomImage(t, "app/web", "v2")
		cosign.Sign(t, wrong.Ref, other, harness.Legacy)
		unsigned := reg.PushRandomImage(t, "app/web", "v3")
		base := []string{"policy", "test", "--policy", policy, "--policy", secret, "--allow-http-registry", "--namespace", "prod"}
		for _, tc := range []struct {
			image string
			ns    string
			code  int
			want  string
		}{
			{signed.Tag, "prod", cli.ExitOK, "allowed"},
			{wrong.Tag, "prod", cli.ExitDenied, "none verified by key"},
			{unsigned.Tag, "prod", cli.ExitDenied, "no signature found"},
			// Excluded namespaces (the policy's namespace selector) are not
			// governed by it, so the cluster default (deny unmatched) applies.
			{unsigned.Tag, "dev-sandbox", cli.ExitDenied, "did not match any image policies"},
		} {
			args := append(append([]string{}, base...), "--image", tc.image)
			args[len(base)-1] = tc.ns
			code, out := signet(t, args...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Errorf("%s in %s: exit %d, want %d saying %q:\n%s", tc.image, tc.ns, code, tc.code, tc.want, out)
			}
		}
		// Tanzu's AllowUnmatchedImages is --unmatched warn.
		code, out := signet(t, append(base, "--unmatched", "warn", "--image", reg.Host+"/elsewhere/tool:v1")...)
		if code != cli.ExitOK || !strings.Contains(out, "did not match any image policies") {
			t.Errorf("unmatched with warn: exit %d:\n%s", code, out)
		}
	})

	t.Run("crio repository-scoped key", func(t *testing.T) {
		policy := write("crio.yaml", localize(t, "crio-repository-key.yaml", reg.Host, string(pub)))
		signed := reg.PushRandomImage(t, "payments/api", "v1")
		cosign.Sign(t, signed.Ref, key, harness.Legacy)
		// A signature made for another repository, copied next to this image,
		// fails matchRepository (cosign writes the repository it signed).
		sibling := reg.PushRandomImage(t, "payments/api-evil", "v1")
		cosign.Sign(t, sibling.Ref, key, harness.Legacy)
		// An ImagePolicy only adds requirements: under the default
		// --unmatched=deny, an image no ClusterImagePolicy selects stays
		// denied; with --unmatched=warn (as the example says) the
		// ImagePolicy decides in its namespace.
		code, out := signet(t, "policy", "test", "--policy", policy, "--allow-http-registry", "--namespace", "payments", "--image", signed.Ref)
		if code != cli.ExitDenied || !strings.Contains(out, "did not match any ClusterImagePolicy") {
			t.Errorf("unmatched deny: exit %d:\n%s", code, out)
		}
		base := []string{"policy", "test", "--policy", policy, "--allow-http-registry", "--unmatched", "warn", "--namespace", "payments"}
		code, out = signet(t, append(base, "--image", signed.Ref)...)
		if code != cli.ExitOK || !strings.Contains(out, "authority payments-key: passed") {
			t.Errorf("signed by digest: exit %d:\n%s", code, out)
		}
		code, out = signet(t, append(base, "--image", signed.Tag)...)
		if code != cli.ExitDenied || !strings.Contains(out, "requires images by digest") {
			t.Errorf("by tag (digest: require): exit %d:\n%s", code, out)
		}
		// The sibling repository is not selected by the exact glob.
		code, out = signet(t, append(base, "--image", sibling.Ref)...)
		if code != cli.ExitOK || !strings.Contains(out, "did not match any image policies") {
			t.Errorf("sibling repository: exit %d:\n%s", code, out)
		}
		// The ImagePolicy applies only in its namespace; elsewhere nothing
		// matches this repository.
		code, out = signet(t, "policy", "test", "--policy", policy, "--allow-http-registry", "--namespace", "shipping", "--image", signed.Ref)
		if code != cli.ExitDenied || !strings.Contains(out, "did not match any image policies") {
			t.Errorf("other namespace: exit %d:\n%s", code, out)
		}
	})
}

// TestKeylessExamples: the Stackable (seed 004), Chainguard (seed 002) and
// Upbound (seed 000) keyless policies, against images signed by a local
// Sigstore (Fulcio, CT log, Rekor) whose trusted root replaces the
// public-good one, with the examples' hosts swapped for the test registry.
func TestKeylessExamples(t *testing.T) {
	reg := harness.StartRegistry(t)
	s := sigstoretest.New(t)
	dir := t.TempDir()
	write := func(name, content string) string { return clitest.WriteFile(t, dir, name, content) }
	trustedRoot := write("trusted_root.json", string(s.TrustedRootJSON()))
	const gh = "https://token.actions.githubusercontent.com"
	// signed pushes an image to repo and attaches a keyless signature made
	// by subject (issued by issuer) in format f.
	pushed := 0
	signed := func(t *testing.T, repo, issuer, subject string, f harness.Format) registrytest.Image {
		t.Helper()
		pushed++ // a tag of its own, so later pushes never move it
		img := reg.PushRandomImage(t, repo, fmt.Sprintf("v%d", pushed))
		o := sigstoretest.SignOptions{Identity: subject, Issuer: issuer}
		name, _, _ := strings.Cut(img.Ref, "@")
		if f == harness.Legacy {
			payload := sigstoretest.SimpleSigning(name, img.Digest)
			reg.AttachLegacy(t, img, ".sig", sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, o))
		} else {
			reg.AttachBundle(t, img, s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, name, img.Digest), o))
		}
		return img
	}
	localizeHost := func(t *testing.T, file, host string) string {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return write(file, strings.ReplaceAll(string(data), host, reg.Host))
	}
	type signer struct{ issuer, subject string }
	for _, ex := range []struct {
		name, file, host, repo string
		good                   []signer
		bad                    []signer // with what the denial says
		want                   []string
		unselected             string // a repository the policy must not select
	}{
		{
			name: "stackable", file: "stackable-keyless.yaml", host: "oci.stackable.tech", repo: "sdp/kafka",
			good: []signer{
				{gh, "https://github.com/stackabletech/docker-images/.github/workflows/release.yml@refs/tags/25.3.0"},
				{gh, "https://github.com/stackabletech/operator/.github/workflows/build.yml@refs/heads/main"},
			},
			bad: []signer{
				{gh, "https://github.com/stackabletech/docker-images/.github/workflows/release.yml@refs/pull/7/merge"},
				{gh, "https://github.com/evil/docker-images/.github/workflows/release.yml@refs/heads/main"},
				// The expression matches the whole subject, never a part of it.
				{gh, "https://evil.example/https://github.com/stackabletech/docker-images/.github/workflows/r.yml@refs/heads/main"},
				{"https://accounts.google.com", "https://github.com/stackabletech/docker-images/.github/workflows/release.yml@refs/heads/main"},
			},
			want: []string{"does not match", "does not match", "does not match", "does not match"},
		},
		{
			name: "chainguard", file: "chainguard-keyless.yaml", host: "cgr.dev", repo: "chainguard/nginx",
			good: []signer{{gh, "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main"}},
			bad: []signer{
				{gh, "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/dev"},
				{gh, "https://github.com/chainguard-images/images/.github/workflows/release.yaml@refs/heads/main2"},
			},
			want:       []string{"does not match", "does not match"},
			unselected: "chainguard-evil/nginx",
		},
		{
			name: "upbound", file: "upbound-packages.yaml", host: "xpkg.upbound.io", repo: "upbound/provider-aws",
			good: []signer{{gh, "https://github.com/upbound/provider-aws/.github/workflows/publish.yml@refs/tags/v1.0.0"}},
			bad:  []signer{{gh, "https://github.com/crossplane-contrib/provider-aws/.github/workflows/publish.yml@refs/tags/v1.0.0"}},
			want: []string{"does not match"},
			// A prefix ends on a path boundary: upbound-evil is another organization.
			unselected: "upbound-evil/provider-aws",
		},
	} {
		t.Run(ex.name, func(t *testing.T) {
			policy := localizeHost(t, ex.file, ex.host)
			base := []string{"policy", "test", "--policy", policy, "--trusted-root", trustedRoot, "--allow-http-registry", "--namespace", "default"}
			run := func(t *testing.T, img string, code int, want string) {
				t.Helper()
				got, out := signet(t, append(append([]string{}, base...), "--image", img)...)
				if got != code || !strings.Contains(out, want) {
					t.Errorf("%s: exit %d, want %d saying %q:\n%s", img, got, code, want, out)
				}
			}
			for _, f := range harness.Formats {
				for _, g := range ex.good {
					run(t, signed(t, ex.repo, g.issuer, g.subject, f).Tag, cli.ExitOK, "allowed")
				}
				for i, b := range ex.bad {
					run(t, signed(t, ex.repo, b.issuer, b.subject, f).Tag, cli.ExitDenied, ex.want[i])
				}
			}
			run(t, reg.PushRandomImage(t, ex.repo, "unsigned").Tag, cli.ExitDenied, "no signature found")
			if ex.unselected != "" {
				img := signed(t, ex.unselected, ex.good[0].issuer, ex.good[0].subject, harness.Legacy)
				run(t, img.Tag, cli.ExitDenied, "did not match any image policies")
			}
		})
	}

	// The trusted root can also come as a TrustRoot among the files, named
	// by the policy's trustRootRef (as in a cluster); without the TrustRoot
	// the policy cannot be compiled and denies what it selects.
	t.Run("stackable with a TrustRoot", func(t *testing.T) {
		policy := strings.ReplaceAll(string(must(os.ReadFile("stackable-keyless.yaml"))), "oci.stackable.tech", reg.Host)
		policy = strings.Replace(policy, "      keyless:\n", "      keyless:\n        trustRootRef: vendor-airgap\n", 1)
		indented := "      " + strings.ReplaceAll(string(s.TrustedRootJSON()), "\n", "\n      ")
		trustRoot := "apiVersion: signet.dev/v1alpha1\nkind: TrustRoot\nmetadata:\n  name: vendor-airgap\nspec:\n  trustedRoot:\n    data: |\n" + indented + "\n"
		withRoot := write("stackable-trustroot.yaml", policy+"---\n"+trustRoot)
		img := signed(t, "sdp/zookeeper", gh, "https://github.com/stackabletech/docker-images/.github/workflows/release.yml@refs/tags/25.3.0", harness.Bundle)
		code, out := signet(t, "policy", "test", "--policy", withRoot, "--allow-http-registry", "--namespace", "default", "--image", img.Tag)
		if code != cli.ExitOK {
			t.Errorf("with the TrustRoot: exit %d:\n%s", code, out)
		}
		code, out = signet(t, "policy", "test", "--policy", write("stackable-no-trustroot.yaml", policy), "--allow-http-registry", "--namespace", "default", "--image", img.Tag)
		if code != cli.ExitDenied || !strings.Contains(out, "TrustRoot vendor-airgap is not among the files given") {
			t.Errorf("without the TrustRoot: exit %d:\n%s", code, out)
		}
	})

	// Seed 000: the Upbound policy governs Crossplane packages; a Provider
	// whose package is signed by the publisher is admitted, one signed by
	// someone else is not, with the field named.
	t.Run("upbound provider", func(t *testing.T) {
		policy := localizeHost(t, "upbound-packages.yaml", "xpkg.upbound.io")
		good := signed(t, "upbound/provider-gcp", gh, "https://github.com/upbound/provider-gcp/.github/workflows/publish.yml@refs/tags/v1.0.0", harness.Bundle)
		bad := signed(t, "upbound/provider-gcp", gh, "https://github.com/someone/provider-gcp/.github/workflows/publish.yml@refs/tags/v1.0.0", harness.Bundle)
		provider := func(image string) string {
			return write("provider.yaml", "apiVersion: pkg.crossplane.io/v1\nkind: Provider\nmetadata:\n  name: provider-gcp\nspec:\n  package: "+image+"\n")
		}
		base := []string{"policy", "test", "--policy", policy, "--trusted-root", trustedRoot, "--allow-http-registry", "--namespace", "crossplane-system"}
		code, out := signet(t, append(base, "--resource", provider(good.Tag))...)
		if code != cli.ExitOK {
			t.Errorf("provider signed by the publisher: exit %d:\n%s", code, out)
		}
		code, out = signet(t, append(base, "--resource", provider(bad.Tag))...)
		if code != cli.ExitDenied || !strings.Contains(out, "spec.package") || !strings.Contains(out, "does not match") {
			t.Errorf("provider signed by someone else: exit %d:\n%s", code, out)
		}
	})
}
