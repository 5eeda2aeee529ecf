package cli_test

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
)

// TestVerifyBundleCosignBlob verifies a bundle made by the real `cosign
// sign-blob`, for the file and for its digest, and refuses the wrong key,
// another file and a malformed bundle.
func TestVerifyBundleCosignBlob(t *testing.T) {
	cosign := harness.NewCosign(t)
	key, other := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "artifact.txt")
	if err := os.WriteFile(file, []byte("release 1.2.3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bundle := cosign.SignBlob(t, file, key)
	sum := sha256.Sum256([]byte("release 1.2.3\n"))
	digest := "sha256:" + hex.EncodeToString(sum[:])

	// cosign signed offline: no log entry, so only --insecure-ignore-tlog
	// accepts it, as with cosign verify-blob.
	signet(t, "verify-bundle", "--bundle", bundle, "--key", key.Public, file).Want(t, cli.ExitDenied, "no transparency log entry", "--insecure-ignore-tlog")
	signet(t, "verify-bundle", "--bundle", bundle, "--key", key.Public, "--insecure-ignore-tlog", file).Want(t, cli.ExitOK, "verified")
	signet(t, "verify-bundle", "--bundle", bundle, "--key", key.Public, "--insecure-ignore-tlog", digest).Want(t, cli.ExitOK, "verified")
	signet(t, "verify-bundle", "--bundle", bundle, "--key", other.Public, "--insecure-ignore-tlog", file).Want(t, cli.ExitDenied, "does not verify")

	tampered := filepath.Join(dir, "tampered.txt")
	if err := os.WriteFile(tampered, []byte("release 1.2.4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signet(t, "verify-bundle", "--bundle", bundle, "--key", key.Public, "--insecure-ignore-tlog", tampered).Want(t, cli.ExitDenied, "does not verify")

	garbage := filepath.Join(dir, "garbage.json")
	if err := os.WriteFile(garbage, []byte(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	signet(t, "verify-bundle", "--bundle", garbage, "--key", key.Public, file).Want(t, cli.ExitDenied, garbage)

	signet(t, "verify-bundle", "--bundle", bundle, file).Want(t, cli.ExitUndecided, "say what to trust")
	signet(t, "verify-bundle", "--key", key.Public, file).Want(t, cli.ExitUndecided, "--bundle is required")
	signet(t, "verify-bundle", "--bundle", bundle, "--key", key.Public, "--insecure-ignore-tlog", "sha256:abc").Want(t, cli.ExitUndecided, "not a sha256 digest")
}
