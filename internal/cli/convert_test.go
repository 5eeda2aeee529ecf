package cli

import (
	"path/filepath"
	"testing"

	"github.com/signet-dev/signet/test/clitest"
)

// TestPolicyConvertCommand: usage errors, a refusal naming the source
// field, --allow-lossy with its warning, and the output formats.
func TestPolicyConvertCommand(t *testing.T) {
	dir := t.TempDir()
	kyverno := clitest.WriteFile(t, dir, "kyverno.yaml", `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: certs}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["ghcr.io/acme/*"]
        attestors:
        - entries:
          - keyless:
              subject: "https://github.com/acme/*"
              issuer: https://token.actions.githubusercontent.com
              additionalExtensions: {githubWorkflowTrigger: push}
`)
	signet(t, "policy", "convert", kyverno).want(t, ExitUndecided, "give --from")
	signet(t, "policy", "convert", "--from", "opa", kyverno).want(t, ExitUndecided, `unknown format "opa"`)
	signet(t, "policy", "convert", "--from", "kyverno", filepath.Join(dir, "missing.yaml")).want(t, ExitUndecided, "missing.yaml")
	signet(t, "policy", "convert", "--from", "kyverno", "-o", "toml", kyverno).want(t, ExitUndecided, "--output must be yaml or json")
	signet(t, "policy", "convert", "--from", "kyverno", "--notation-trust-store", dir, kyverno).want(t, ExitUndecided, "--notation-trust-store goes with --from notation")
	bad := clitest.WriteFile(t, dir, "bad.yaml", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: x\n")
	signet(t, "policy", "convert", "--from", "kyverno", bad).want(t, ExitUndecided, "not YAML")

	signet(t, "policy", "convert", "--from", "kyverno", kyverno).want(t, ExitDenied,
		"spec.rules[0].verifyImages[0].attestors[0].entries[0].keyless.additionalExtensions: not supported: certificate extension checks",
		"--allow-lossy converts anyway")
	signet(t, "policy", "convert", "--from", "kyverno", "--allow-lossy", kyverno).want(t, ExitOK,
		"warning: lossy: "+kyverno+": spec.rules[0].verifyImages[0].attestors[0].entries[0].keyless.additionalExtensions: not supported",
		"# WARNING (lossy): ", "kind: ClusterImagePolicy", "glob: ghcr.io/acme/*/**", "subjectRegExp: https://github\\.com/acme/(?s:.*)",
		"note: Kyverno admits images no rule selects: to keep that, run signet serve --unmatched=allow")
	signet(t, "policy", "convert", "--from", "kyverno", "--allow-lossy", "-o", "json", kyverno).want(t, ExitOK, `"kind": "List"`, `"glob": "ghcr.io/acme/*/**"`)

	// The output is a valid signet policy.
	out := signet(t, "policy", "convert", "--from", "kyverno", "--allow-lossy", kyverno)
	converted := clitest.WriteFile(t, dir, "converted.yaml", out.Stdout)
	signet(t, "policy", "lint", converted).want(t, ExitOK, "1 policies are valid")

	// An invalid source is reported as such: --allow-lossy cannot help.
	tanzu := clitest.WriteFile(t, dir, "tanzu.yaml", `apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: not-image-policy}
spec: {verification: {images: [{namePattern: "*", keys: [{name: k}]}]}}
`)
	signet(t, "policy", "convert", "--from", "tanzu", "--allow-lossy", tanzu).want(t, ExitDenied, "the source is invalid", "Tanzu enforces only the ClusterImagePolicy named image-policy")

	// Nothing to convert: the notes that say why are shown with the error.
	// policy-controller compares <repository>@sha256:<digest>, so a glob
	// without "*" and without a digest selects nothing.
	dead := clitest.WriteFile(t, dir, "dead.yaml", `apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: dead}
spec:
  images: [{glob: ghcr.io/acme/app}]
  authorities: [{static: {action: pass}}]
`)
	signet(t, "policy", "convert", "--from", "policy-controller", dead).want(t, ExitDenied,
		"the sources hold no image policy to convert",
		"note: "+dead+": spec.images[0].glob: \"ghcr.io/acme/app\" selects no image in the source system",
		"--namespace-opt-in-label policy.sigstore.dev/include")
}
