package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// run is what a signet command line did.
type run clitest.Result

// signet runs a signet command line in-process.
func signet(t *testing.T, args ...string) run {
	t.Helper()
	return run(clitest.Run(t, Execute, args...))
}

func (r run) want(t *testing.T, code int, substrings ...string) {
	t.Helper()
	clitest.Result(r).Want(t, code, substrings...)
}

func TestVerifyCommandUndecided(t *testing.T) {
	key := clitest.WriteTemp(t, "key.pub", sigstoretest.PublicKeyPEM(t, sigstoretest.NewKey(t)))
	addr := registrytest.UnreachableHost(t)
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
