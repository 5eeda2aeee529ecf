package cli_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/harness"
)

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = prefix + lines[i]
	}
	return strings.Join(lines, "\n")
}

// TestPolicyTestCommand evaluates real cosign-signed images against policy
// files the way admission would.
func TestPolicyTestCommand(t *testing.T) {
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	ci, release := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	pub := func(kp harness.KeyPair) string {
		b, err := os.ReadFile(kp.Public)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	signed := reg.PushRandomImage(t, "prod/app", "v1")
	cosign.Sign(t, signed.Ref, ci, harness.Bundle)
	both := reg.PushRandomImage(t, "prod/app", "v2")
	cosign.Sign(t, both.Ref, ci, harness.Legacy)
	cosign.Sign(t, both.Ref, release, harness.Legacy)
	unsigned := reg.PushRandomImage(t, "prod/app", "unsigned")
	other := reg.PushRandomImage(t, "dev/tool", "v1")

	dir := t.TempDir()
	policies := clitest.WriteFile(t, dir, "policies.yaml", fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: prod-signed
spec:
  images:
    - glob: %[1]s/prod/**
  authorities:
    - name: ci-key
      insecureIgnoreTlog: true
      key:
        data: |
%[2]s
---
apiVersion: signet.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: release-too
  namespace: payments
spec:
  images:
    - prefix: %[1]s/prod
  authorities:
    - name: release-key
      insecureIgnoreTlog: true
      key:
        secretRef: {name: release-key}
---
apiVersion: signet.dev/v1alpha1
kind: ImagePolicy
metadata:
  name: everything-passes
  namespace: payments
spec:
  images:
    - glob: "**"
  authorities:
    - static: {action: pass}
---
apiVersion: v1
kind: Secret
metadata:
  name: release-key
  namespace: payments
stringData:
  cosign.pub: |
%[3]s
`, reg.Host, indent(pub(ci), "          "), indent(pub(release), "    ")))
	base := []string{"policy", "test", "--policy", policies, "--allow-http-registry"}

	signet(t, append(base, "--image", signed.Tag)...).
		Want(t, cli.ExitOK, signed.Tag+" ("+signed.Digest+"): allowed", "authority ci-key: passed", "admitted as "+signed.Tag+"@"+signed.Digest)
	signet(t, append(base, "--image", unsigned.Tag)...).
		Want(t, cli.ExitDenied, "DENIED", "denied by policy prod-signed: authority ci-key: no signature found")
	signet(t, append(base, "--image", other.Tag)...).
		Want(t, cli.ExitDenied, other.Tag+" did not match any image policies; unmatched images are denied (--unmatched=deny, the default)")
	signet(t, append(base, "--unmatched", "warn", "--image", other.Tag)...).
		Want(t, cli.ExitOK, "warning: "+other.Tag+" did not match any image policies; admitted because signet runs with --unmatched=warn")
	signet(t, append(base, "--unmatched", "allow", "--image", other.Tag)...).Want(t, cli.ExitOK, "allowed")
	signet(t, append(base, "--unmatched", "audit", "--image", other.Tag)...).
		Want(t, cli.ExitUndecided, `invalid argument "audit" for "--unmatched" flag: "audit" is not one of deny, warn, allow`)

	// The ImagePolicy adds a requirement in its namespace only.
	signet(t, append(base, "--namespace", "payments", "--image", signed.Tag)...).
		Want(t, cli.ExitDenied, "authority release-key:", "ImagePolicy payments/release-too")
	signet(t, append(base, "--namespace", "payments", "--image", both.Tag)...).Want(t, cli.ExitOK, "allowed")
	signet(t, append(base, "--namespace", "shipping", "--image", signed.Tag)...).Want(t, cli.ExitOK, "allowed")
	// ... and never lifts what the cluster refuses: its "**" passing
	// everything leaves an image no cluster policy selects unmatched.
	signet(t, append(base, "--namespace", "payments", "--image", other.Tag)...).
		Want(t, cli.ExitDenied, other.Tag+" did not match any ClusterImagePolicy")
	signet(t, append(base, "--namespace", "payments", "--unmatched", "allow", "--image", other.Tag)...).Want(t, cli.ExitOK, "allowed")
	signet(t, append(base, "--namespace", "payments", "--exclude-namespace", "payments", "--image", unsigned.Tag)...).
		Want(t, cli.ExitOK, "namespace payments is excluded")
	// Namespace opt-in with seed 004's label: a namespace labelled with it
	// is enforced; one labelled with signet's default label is not.
	seed004 := append(base, "--namespace-opt-in", "--namespace-opt-in-label", "policy.sigstore.dev/include", "--namespace", "shipping", "--image", unsigned.Tag)
	signet(t, append(seed004, "--namespace-label", "policy.sigstore.dev/include=true")...).
		Want(t, cli.ExitDenied, "denied by policy prod-signed: authority ci-key: no signature found")
	signet(t, append(seed004, "--namespace-label", "signet.dev/include=true")...).
		Want(t, cli.ExitOK, "namespace shipping has not opted in (label policy.sigstore.dev/include=true)")
	signet(t, append(base, "--namespace-opt-in", "--namespace", "shipping", "--namespace-label", "signet.dev/include=true", "--image", unsigned.Tag)...).
		Want(t, cli.ExitDenied, "no signature found")

	// Every image of a Deployment, with its field path.
	deploy := clitest.WriteFile(t, dir, "deploy.yaml", fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shipping}
spec:
  template:
    spec:
      initContainers: [{name: init, image: %s}]
      containers:
        - {name: app, image: %s}
        - {name: sidecar, image: %s}
`, signed.Tag, both.Tag, unsigned.Tag))
	signet(t, append(base, "--resource", deploy)...).
		Want(t, cli.ExitDenied, "Deployment web: spec.template.spec.containers[1].image: "+unsigned.Tag+" ("+unsigned.Digest+"): DENIED",
			"Deployment web: spec.template.spec.initContainers[0].image: "+signed.Tag)

	// signet verify --policy is the same evaluation.
	signet(t, "verify", "--policy", policies, "--allow-http-registry", signed.Tag, unsigned.Tag).
		Want(t, cli.ExitDenied, signed.Tag+" ("+signed.Digest+"): allowed", "no signature found")
	signet(t, "verify", "--policy", policies, "--key", ci.Public, signed.Tag).Want(t, cli.ExitUndecided, "do not combine")

	// JSON output.
	r := signet(t, append(base, "-o", "json", "--image", signed.Ref)...)
	r.Want(t, cli.ExitOK, `"allowed": true`, `"policy": "ClusterImagePolicy prod-signed"`)

	// Warn mode admits with a warning.
	warn := clitest.WriteFile(t, dir, "warn.yaml", strings.Replace(clitest.ReadFile(t, policies), "  name: prod-signed\nspec:\n", "  name: prod-signed\nspec:\n  mode: warn\n", 1))
	signet(t, "policy", "test", "--policy", warn, "--allow-http-registry", "--image", unsigned.Tag).
		Want(t, cli.ExitOK, "allowed", "warning: denied by policy prod-signed", "(policy in warn mode)")
}
