package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/test/harness"
)

type run struct {
	code           int
	stdout, stderr string
}

func signet(t *testing.T, args ...string) run {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(t.Context(), args, &out, &errOut)
	return run{code, out.String(), errOut.String()}
}

func (r run) want(t *testing.T, code int, substrings ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range substrings {
		if !strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("output does not say %q\nstdout:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

// TestVerifyCommand runs `signet verify` on images signed by the real cosign
// CLI in the real distribution registry.
func TestVerifyCommand(t *testing.T) {
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	keyA, keyB := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)

	for _, f := range harness.Formats {
		t.Run(f.String(), func(t *testing.T) {
			repo := "cli-" + f.String()
			img := reg.PushRandomImage(t, repo, "v1")
			cosign.Sign(t, img.Ref, keyA, f)
			unsigned := reg.PushRandomImage(t, repo, "unsigned")
			common := []string{"verify", "--allow-http-registry", "--insecure-ignore-tlog"}

			signet(t, append(common, "--key", keyA.Public, img.Tag)...).
				want(t, ExitOK, img.Tag+"@"+img.Digest+": verified", "signature by key sha256:")
			signet(t, append(common, "--key", keyB.Public, img.Tag)...).
				want(t, ExitDenied, "NOT verified", "none verified by key")
			signet(t, append(common, "--key", keyA.Public, unsigned.Tag)...).
				want(t, ExitDenied, "no signature found")
			// One denied image makes the whole run fail.
			signet(t, append(common, "--key", keyA.Public, img.Tag, unsigned.Tag)...).want(t, ExitDenied, ": verified", "NOT verified")

			r := signet(t, append(common, "--key", keyA.Public, "-o", "json", img.Ref, unsigned.Ref)...)
			r.want(t, ExitDenied)
			var out struct {
				Images []struct {
					Image, Digest, Decision, Reason string
					Result                          struct {
						Authorities []struct {
							Passed     bool
							Signatures []struct{ Signer, KeyFingerprint, Format string }
						}
					}
				}
			}
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("-o json printed %q: %v", r.stdout, err)
			}
			if len(out.Images) != 2 || out.Images[0].Decision != "verified" || out.Images[1].Decision != "denied" {
				t.Fatalf("decisions: %+v", out.Images)
			}
			if out.Images[0].Digest != img.Digest || out.Images[1].Reason == "" {
				t.Errorf("json: %+v", out.Images)
			}
			if sigs := out.Images[0].Result.Authorities[0].Signatures; len(sigs) != 1 || !strings.HasPrefix(sigs[0].KeyFingerprint, "sha256:") {
				t.Errorf("json signatures: %+v", sigs)
			}

			// An attestation, with a CEL condition.
			const pt = "https://example.org/test-result/v1"
			cosign.Attest(t, img.Ref, keyA, pt, []byte(`{"passed":true,"suite":"unit"}`), f)
			signet(t, append(common, "--key", keyA.Public, "--type", pt, "--condition", "predicate.passed", img.Ref)...).
				want(t, ExitOK, "attestation "+pt)
			signet(t, append(common, "--key", keyA.Public, "--type", pt, "--condition", `predicate.suite == "e2e"`, img.Ref)...).
				want(t, ExitDenied, `condition "predicate.suite == \"e2e\"" is false`)
		})
	}

	t.Run("signature repository", func(t *testing.T) {
		img := reg.PushRandomImage(t, "cli-app", "v1")
		sigRepo := reg.Repo("cli-signatures")
		cosign.WithEnv("COSIGN_REPOSITORY="+sigRepo).Sign(t, img.Ref, keyA, harness.Legacy)
		args := []string{"verify", "--allow-http-registry", "--insecure-ignore-tlog", "--key", keyA.Public}
		signet(t, append(args, img.Ref)...).want(t, ExitDenied, "no signature found")
		signet(t, append(args, "--signature-repository", sigRepo, img.Ref)...).want(t, ExitOK, sigRepo)
		t.Setenv("COSIGN_REPOSITORY", sigRepo)
		signet(t, append(args, img.Ref)...).want(t, ExitOK, sigRepo)
	})
}

func TestVerifyCommandUndecided(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "key.pub")
	cosign := harness.NewCosign(t)
	kp := cosign.GenerateKeyPair(t)
	data, err := os.ReadFile(kp.Public)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, data, 0o600); err != nil {
		t.Fatal(err)
	}
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	signet(t, "verify", "--allow-http-registry", "--insecure-ignore-tlog", "--timeout", "5s", "--key", key, addr+"/app:v1").
		want(t, ExitUndecided, "could not decide", addr)
}

func TestVerifyCommandUsage(t *testing.T) {
	dir := t.TempDir()
	notKey := filepath.Join(dir, "not-a-key.pem")
	if err := os.WriteFile(notKey, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "example.org/app:v1"}, "say what to trust"},
		{[]string{"verify", "--key", notKey, "example.org/app:v1"}, "not a PEM public key"},
		{[]string{"verify", "--key", filepath.Join(dir, "missing.pub"), "example.org/app:v1"}, "missing.pub"},
		{[]string{"verify", "--certificate-identity", "me@example.org", "example.org/app:v1"}, "--certificate-oidc-issuer"},
		{[]string{"verify", "--certificate-identity-regexp", "(", "--certificate-oidc-issuer", "https://x", "example.org/app:v1"}, "invalid regular expression"},
		{[]string{"verify", "--key", notKey, "--certificate-identity", "a", "--certificate-oidc-issuer", "b", "x"}, "not both"},
		{[]string{"verify", "--certificate-identity", "a", "--certificate-oidc-issuer", "b", "--insecure-ignore-tlog", "x"}, "only to --key"},
		{[]string{"verify", "--key", notKey, "Example.org/UPPER:v1"}, "Example.org/UPPER"},
		{[]string{"verify", "--key", notKey, "--condition", "true", "x"}, "--condition needs --type"},
		{[]string{"verify", "--key", notKey, "-o", "yaml", "x"}, "--output"},
		{[]string{"verify"}, "requires at least 1 arg"},
	} {
		signet(t, tc.args...).want(t, ExitUndecided, tc.want)
	}
}
