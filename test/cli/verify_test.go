package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/harness"
)

// signet runs a signet command line in-process.
func signet(t *testing.T, args ...string) clitest.Result {
	t.Helper()
	return clitest.Run(t, cli.Execute, args...)
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
				Want(t, cli.ExitOK, img.Tag+"@"+img.Digest+": verified", "signature by key sha256:")
			signet(t, append(common, "--key", keyB.Public, img.Tag)...).
				Want(t, cli.ExitDenied, "NOT verified", "none verified by key")
			signet(t, append(common, "--key", keyA.Public, unsigned.Tag)...).
				Want(t, cli.ExitDenied, "no signature found")
			// One denied image makes the whole run fail.
			signet(t, append(common, "--key", keyA.Public, img.Tag, unsigned.Tag)...).Want(t, cli.ExitDenied, ": verified", "NOT verified")

			r := signet(t, append(common, "--key", keyA.Public, "-o", "json", img.Ref, unsigned.Ref)...)
			r.Want(t, cli.ExitDenied)
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
			if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
				t.Fatalf("-o json printed %q: %v", r.Stdout, err)
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
				Want(t, cli.ExitOK, "attestation "+pt)
			signet(t, append(common, "--key", keyA.Public, "--type", pt, "--condition", `predicate.suite == "e2e"`, img.Ref)...).
				Want(t, cli.ExitDenied, `condition "predicate.suite == \"e2e\"" is false`)
		})
	}

	t.Run("signature repository", func(t *testing.T) {
		img := reg.PushRandomImage(t, "cli-app", "v1")
		sigRepo := reg.Repo("cli-signatures")
		cosign.WithEnv("COSIGN_REPOSITORY="+sigRepo).Sign(t, img.Ref, keyA, harness.Legacy)
		args := []string{"verify", "--allow-http-registry", "--insecure-ignore-tlog", "--key", keyA.Public}
		signet(t, append(args, img.Ref)...).Want(t, cli.ExitDenied, "no signature found")
		signet(t, append(args, "--signature-repository", sigRepo, img.Ref)...).Want(t, cli.ExitOK, sigRepo)
		t.Setenv("COSIGN_REPOSITORY", sigRepo)
		signet(t, append(args, img.Ref)...).Want(t, cli.ExitOK, sigRepo)
	})
}
