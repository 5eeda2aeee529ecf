// Package examples holds one policy per seed scenario; its tests run each
// against real signed and unsigned images, with the example's registry
// host and keys swapped for the test's own.
package examples

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
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
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

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
		base := []string{"policy", "test", "--policy", policy, "--allow-http-registry", "--namespace", "payments"}
		code, out := signet(t, append(base, "--image", signed.Ref)...)
		if code != cli.ExitOK {
			t.Errorf("signed by digest: exit %d:\n%s", code, out)
		}
		code, out = signet(t, append(base, "--image", signed.Tag)...)
		if code != cli.ExitDenied || !strings.Contains(out, "requires images by digest") {
			t.Errorf("by tag (digest: require): exit %d:\n%s", code, out)
		}
		// The ImagePolicy applies only in its namespace; elsewhere nothing
		// matches this repository.
		code, out = signet(t, "policy", "test", "--policy", policy, "--allow-http-registry", "--namespace", "shipping", "--image", signed.Ref)
		if code != cli.ExitDenied || !strings.Contains(out, "did not match any image policies") {
			t.Errorf("other namespace: exit %d:\n%s", code, out)
		}
		// The sibling repository is not selected by the exact glob.
		code, out = signet(t, append(base, "--image", sibling.Ref)...)
		if code != cli.ExitDenied || !strings.Contains(out, "did not match any image policies") {
			t.Errorf("sibling repository: exit %d:\n%s", code, out)
		}
	})
}
