package cli

import (
	"testing"

	"github.com/signet-dev/signet/test/clitest"
)

// TestPolicyTestCrossplaneRegistry: `signet policy test --resource` decides
// a Crossplane package written without a registry as Crossplane pulls it,
// from --crossplane-registry (default xpkg.crossplane.io), never Docker
// Hub. Static policies: no registry is needed.
func TestPolicyTestCrossplaneRegistry(t *testing.T) {
	dir := t.TempDir()
	policies := clitest.WriteFile(t, dir, "policies.yaml", `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: hub}
spec:
  images: [{glob: "docker.io/**"}]
  digest: none
  authorities: [{name: s, static: {action: fail, message: hub denies}}]
---
apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: crossplane}
spec:
  images: [{glob: "xpkg.crossplane.io/**"}]
  digest: none
  authorities: [{name: s, static: {action: pass}}]
---
apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: upbound}
spec:
  images: [{glob: "xpkg.upbound.io/**"}]
  digest: none
  authorities: [{name: s, static: {action: fail, message: upbound denies}}]
`)
	provider := clitest.WriteFile(t, dir, "provider.yaml", `apiVersion: pkg.crossplane.io/v1
kind: Provider
metadata: {name: provider-aws}
spec: {package: "crossplane-contrib/provider-aws:v1"}
`)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"default", nil, ExitOK, []string{"spec.package: xpkg.crossplane.io/crossplane-contrib/provider-aws:v1", "allowed"}},
		{"before Crossplane v2", []string{"--crossplane-registry", "xpkg.upbound.io"}, ExitDenied, []string{"spec.package: xpkg.upbound.io/crossplane-contrib/provider-aws:v1", "upbound denies"}},
		{"not a host", []string{"--crossplane-registry", "https://xpkg.upbound.io"}, ExitUndecided, []string{"--crossplane-registry", "want a registry host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"policy", "test", "--policy", policies, "--resource", provider}, tc.args...)
			signet(t, args...).want(t, tc.code, tc.want...)
		})
	}
}
