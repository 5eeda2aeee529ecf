package cli

import (
	"path/filepath"
	"testing"

	"github.com/signet-dev/signet/test/clitest"
)

func TestPolicyLintCommand(t *testing.T) {
	dir := t.TempDir()
	clitest.WriteFile(t, dir, "bad.yaml", `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: bad}
spec:
  images: [{glob: "registry.example.org/app:v1"}]
  authorities:
    - keyless:
        identities: [{issuer: "https://accounts.google.com", subjectRegExp: "(oops"}]
`)
	signet(t, "policy", "lint", dir).want(t, ExitDenied,
		"bad.yaml: ClusterImagePolicy bad: spec.images[0].glob:",
		"spec.authorities[0].keyless.identities[0]: subjectRegExp: invalid regular expression",
		"1 of 1 policies are invalid")

	unknown := t.TempDir()
	clitest.WriteFile(t, unknown, "typo.yaml", `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: typo}
spec:
  images: [{glob: "**"}]
  authorities: [{static: {action: pass}, insecureIgnoreTLog: true}]
`)
	signet(t, "policy", "lint", unknown).want(t, ExitDenied, `unknown field "spec.authorities[0].insecureIgnoreTLog"`)

	signet(t, "policy", "lint", filepath.Join(dir, "missing.yaml")).want(t, ExitUndecided, "missing.yaml")

	// go test runs in the package's directory, two below the repository's.
	signet(t, "policy", "lint", filepath.Join("..", "..", "examples")).want(t, ExitOK, "policies are valid")
}
