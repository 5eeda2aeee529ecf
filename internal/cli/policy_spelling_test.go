package cli

import (
	"fmt"
	"strings"
	"testing"

	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestPolicyTestRegistrySpellings: a deny-list for a registry cannot be
// escaped under --unmatched allow or warn by spelling the registry's host
// differently: the runtime pulls the same image from 127.0.0.1:05000 as from
// 127.0.0.1:5000, and signet decides about it as one registry, or refuses
// spellings whose server could differ.
func TestPolicyTestRegistrySpellings(t *testing.T) {
	reg := registrytest.StartInProcess(t, false)
	img := reg.PushRandomImage(t, "team/app", "v1")
	hostname, port, ok := strings.Cut(reg.Host, ":")
	if !ok || hostname != "127.0.0.1" {
		t.Fatalf("registry host %q, want 127.0.0.1:PORT", reg.Host)
	}
	path := strings.TrimPrefix(img.Ref, reg.Host) // "/team/app@sha256:..."

	policies := clitest.WriteFile(t, t.TempDir(), "deny.yaml", fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: deny-loopback
spec:
  images:
    - glob: %s/**
  authorities:
    - static:
        action: fail
        message: images from this registry are not allowed
`, reg.Host))
	denied := "denied by policy deny-loopback"

	for _, unmatched := range []string{"allow", "warn"} {
		base := []string{"policy", "test", "--policy", policies, "--allow-http-registry", "--unmatched", unmatched}
		for _, image := range []string{
			img.Ref,
			hostname + ":0" + port + path,
			hostname + ":00" + port + path,
			"[::ffff:7f00:1]:" + port + path,
			"[0:0:0:0:0:FFFF:7F00:0001]:0" + port + path,
		} {
			t.Run(unmatched+"/"+image, func(t *testing.T) {
				signet(t, append(base, "--image", image)...).want(t, ExitDenied, "DENIED", denied)
			})
		}
		// Spellings whose server could differ are refused, never unmatched.
		for image, reason := range map[string]string{
			"127.1:" + port + path:              `registry host "127.1" is a numeric address`,
			"0x7f.0.0.1:" + port + path:         `registry host "0x7f.0.0.1" is a numeric address`,
			"2130706433:" + port + path:         `registry host "2130706433" is a numeric address`,
			"127.0.0.1.:" + port + path:         `registry host "127.0.0.1.:` + port + `" ends with a dot`,
			"127.0.0.1:" + port + "0000" + path: "registry port " + port + "0000 is out of range",
		} {
			t.Run(unmatched+"/"+image, func(t *testing.T) {
				signet(t, append(base, "--image", image)...).want(t, ExitDenied, "DENIED", "invalid image reference", reason)
			})
		}
	}
}
