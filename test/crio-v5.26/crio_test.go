// Package crio proves that the containers-policy.json `signet policy export
// --to containers-policy` writes for an old runtime loads in, and decides
// like signet with, containers-image v5.26 (github.com/containers/image/v5,
// what CRI-O 1.28 and podman 4.6 link), and that the fields a newer runtime
// reads (keyDatas) make that version reject the whole file.
//
// It mirrors test/crio (the current go.podman.io/image/v5), whose small
// test world it copies: a module imports one containers-image. It is a
// module of its own so v5.26's dependency graph never meets signet's; its
// go.mod replaces golang.org/x/exp with the version v5.26 was built
// against (its slices.SortStableFunc takes a less function). It needs
// bin/registry and bin/cosign (`make tools`).
package crio

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containers/image/v5/docker"
	"github.com/containers/image/v5/image"
	"github.com/containers/image/v5/signature"
	"github.com/containers/image/v5/types"
	"github.com/containers/image/v5/version"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

const (
	issuer = "https://github.com/login/oauth"
	email  = "release@acme.example"
)

// runtime evaluates img against the policy.json and registries.d directory
// the way CRI-O does before a pull.
func runtime(t *testing.T, policyJSON []byte, registriesDir, img string) (bool, error) {
	t.Helper()
	pol, err := signature.NewPolicyFromBytes(policyJSON)
	if err != nil {
		t.Fatalf("containers-image %s does not accept the exported policy: %v\n%s", version.Version, err, policyJSON)
	}
	pc, err := signature.NewPolicyContext(pol)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy() //nolint:errcheck // nothing to do about it
	ref, err := docker.ParseReference("//" + img)
	if err != nil {
		t.Fatalf("parsing %s: %v", img, err)
	}
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "registries.conf"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{
		DockerInsecureSkipTLSVerify: types.OptionalBoolTrue, // the loopback registries speak plain HTTP
		RegistriesDirPath:           registriesDir,
		SystemRegistriesConfPath:    filepath.Join(empty, "registries.conf"),
		SystemRegistriesConfDirPath: empty,
		AuthFilePath:                filepath.Join(empty, "auth.json"),
	}
	ctx := context.Background()
	src, err := ref.NewImageSource(ctx, sys)
	if err != nil {
		t.Fatalf("opening %s: %v", img, err)
	}
	defer src.Close()
	return pc.IsRunningImageAllowed(ctx, image.UnparsedInstance(src, nil))
}

// signet runs `signet policy test` on the image and reports whether it was
// allowed (exit 0) or denied (exit 1).
func signet(t *testing.T, args []string, img, namespace string) (bool, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"policy", "test", "--image", img, "--namespace", namespace, "--allow-http-registry"}, args...)
	code := cli.Execute(context.Background(), full, &out, &errOut)
	switch code {
	case 0:
		return true, out.String()
	case 1:
		return false, out.String()
	}
	t.Fatalf("signet %s: exit %d\n%s%s", strings.Join(full, " "), code, out.String(), errOut.String())
	return false, ""
}

// export runs `signet policy export --to containers-policy` for namespace
// into a new directory and returns its exit code, the policy.json (nil
// when refused), the registries.d directory and standard error.
func export(t *testing.T, args []string, namespace string) (int, []byte, string, string) {
	t.Helper()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	full := append([]string{"policy", "export", "--to", "containers-policy", "--namespace", namespace, "-o", dir}, args...)
	code := cli.Execute(context.Background(), full, &out, &errOut)
	if code != 0 {
		return code, nil, "", errOut.String()
	}
	data, err := os.ReadFile(filepath.Join(dir, namespace+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return code, data, filepath.Join(dir, "registries.d"), errOut.String()
}

func TestExportForCRIO128(t *testing.T) {
	if !strings.HasPrefix(version.Version, "5.26.") {
		t.Fatalf("this module must test containers-image v5.26, not %s", version.Version)
	}
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	ci, other := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	s := sigstoretest.New(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trustedRoot := write("trusted_root.json", s.TrustedRootJSON())
	pub := func(k harness.KeyPair) string {
		t.Helper()
		data, err := os.ReadFile(k.Public)
		if err != nil {
			t.Fatal(err)
		}
		return "          " + strings.ReplaceAll(strings.TrimSpace(string(data)), "\n", "\n          ")
	}
	keyAuthority := func(k harness.KeyPair) string {
		return fmt.Sprintf("    - insecureIgnoreTlog: true\n      key:\n        data: |\n%s\n", pub(k))
	}

	// Seed 003 on CRI-O 1.28: the "signed" repositories need the CI key,
	// the "keyless" ones a Fulcio certificate for the release email with a
	// Rekor SET; every other image is unmatched.
	single := write("single.yaml", []byte(fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: ci-key}
spec:
  images: [{prefix: %[1]s/signed}]
  signedIdentity: matchRepository
  authorities:
%[2]s---
apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: release-keyless}
spec:
  images: [{glob: "%[1]s/keyless/**"}]
  authorities:
    - keyless:
        identities: [{issuer: %[3]s, subject: %[4]s}]
`, reg.Host, keyAuthority(ci), issuer, email)))
	// Either key: one requirement with keyDatas, which v5.26 does not read.
	either := write("either.yaml", []byte(fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: either-key}
spec:
  images: [{prefix: %[1]s/signed}]
  authorities:
%[2]s%[3]s`, reg.Host, keyAuthority(ci), keyAuthority(other))))

	img := func(repo string) registrytest.Image { return reg.PushRandomImage(t, repo, "v1") }
	signedCI := img("signed/app")
	cosign.Sign(t, signedCI.Ref, ci, harness.Legacy)
	signedOther := img("signed/other")
	cosign.Sign(t, signedOther.Ref, other, harness.Legacy)
	signedBoth := img("signed/both")
	cosign.Sign(t, signedBoth.Ref, ci, harness.Legacy)
	cosign.Sign(t, signedBoth.Ref, other, harness.Legacy)
	unsignedGoverned := img("signed/unsigned")
	unmatched := img("elsewhere/app")
	keyless := func(repo, identity string) registrytest.Image {
		i := img(repo)
		name, _, _ := strings.Cut(i.Ref, "@")
		payload := sigstoretest.SimpleSigning(name, i.Digest)
		reg.AttachLegacy(t, i, ".sig", sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, sigstoretest.SignOptions{Identity: identity, Issuer: issuer}))
		return i
	}
	keylessGood := keyless("keyless/app", email)
	keylessWrong := keyless("keyless/other", "intruder@acme.example")
	keylessUnsigned := img("keyless/unsigned")

	base := []string{"--trusted-root", trustedRoot, "--unmatched", "deny"}
	with := func(extra ...string) []string { return append(append([]string(nil), base...), extra...) }

	t.Run("one key and keyless load and decide as signet", func(t *testing.T) {
		for _, target := range []string{"", "crio-1.28", "containers-image-5.26", "crio-1.32"} {
			args := with("--policy", single)
			exportArgs := args
			if target != "" {
				exportArgs = with("--policy", single, "--min-runtime", target)
			}
			code, policyJSON, regsDir, stderr := export(t, exportArgs, "default")
			if code != 0 {
				t.Fatalf("export for %q: exit %d\n%s", target, code, stderr)
			}
			if bytes.Contains(policyJSON, []byte("keyDatas")) || bytes.Contains(policyJSON, []byte("rekorPublicKeyDatas")) {
				t.Errorf("export for %q lists one key or Rekor key:\n%s", target, policyJSON)
			}
			want := map[registrytest.Image]bool{signedCI: true, keylessGood: true,
				signedOther: false, unsignedGoverned: false, unmatched: false, keylessWrong: false, keylessUnsigned: false}
			for i, allowed := range want {
				for _, ref := range []string{i.Tag, i.Ref} {
					byS, report := signet(t, args, ref, "default")
					got, err := runtime(t, policyJSON, regsDir, ref)
					if byS != allowed || got != allowed {
						t.Errorf("%s (target %q): signet allowed=%v, containers-image %s allowed=%v (%v), want %v\nsignet:\n%s\npolicy.json:\n%s", ref, target, byS, version.Version, got, err, allowed, report, policyJSON)
					}
				}
			}
		}
	})

	t.Run("keyDatas, written for CRI-O 1.32, is rejected whole", func(t *testing.T) {
		code, policyJSON, _, stderr := export(t, with("--policy", either, "--min-runtime", "crio-1.32"), "default")
		if code != 0 {
			t.Fatalf("export: exit %d\n%s", code, stderr)
		}
		_, err := signature.NewPolicyFromBytes(policyJSON)
		if err == nil || !strings.Contains(err.Error(), `Unknown key "keyDatas"`) {
			t.Fatalf("containers-image %s loaded a policy with keyDatas (err %v): this test would not catch an export CRI-O 1.28 cannot load\n%s", version.Version, err, policyJSON)
		}
	})

	t.Run("either key for CRI-O 1.28: refused naming keyDatas", func(t *testing.T) {
		code, _, _, stderr := export(t, with("--policy", either), "default")
		if code != 1 || !strings.Contains(stderr, "keyDatas (a signature by any one of 2 keys)") || !strings.Contains(stderr, "CRI-O 1.28") {
			t.Fatalf("export: exit %d, want 1 naming keyDatas and CRI-O 1.28:\n%s", code, stderr)
		}
	})

	t.Run("either key for CRI-O 1.28 with --allow-lossy: both keys required", func(t *testing.T) {
		args := with("--policy", either)
		code, policyJSON, regsDir, stderr := export(t, with("--policy", either, "--allow-lossy"), "default")
		if code != 0 {
			t.Fatalf("export: exit %d\n%s", code, stderr)
		}
		// Stricter than signet: one key's signature no longer suffices.
		for i, want := range map[registrytest.Image][2]bool{
			signedBoth: {true, true}, signedCI: {true, false}, signedOther: {true, false},
			unsignedGoverned: {false, false}, unmatched: {false, false},
		} {
			byS, _ := signet(t, args, i.Tag, "default")
			got, err := runtime(t, policyJSON, regsDir, i.Tag)
			if byS != want[0] || got != want[1] {
				t.Errorf("%s: signet allowed=%v, containers-image allowed=%v (%v); want %v, %v\n%s", i.Tag, byS, got, err, want[0], want[1], policyJSON)
			}
		}
	})
}
