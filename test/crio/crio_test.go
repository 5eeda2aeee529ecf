// Package crio proves that the containers-policy.json `signet policy export
// --to containers-policy` writes makes the real containers-image library
// (go.podman.io/image/v5, which CRI-O, podman and skopeo use) decide real
// signed and unsigned images the way signet's admission does.
//
// It is a module of its own so the library's dependency graph never meets
// signet's. It needs bin/registry and bin/cosign (`make tools`).
package crio

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

const (
	issuer = "https://github.com/login/oauth"
	email  = "release@acme.example"
)

// runtime evaluates image against the policy.json and registries.d
// directory the way CRI-O does before a pull: the policy is evaluated on
// the image source (manifest and sigstore attachments) of the reference.
func runtime(t *testing.T, policyJSON []byte, registriesDir, img string) (bool, error) {
	t.Helper()
	pol, err := signature.NewPolicyFromBytes(policyJSON)
	if err != nil {
		t.Fatalf("containers-image does not accept the exported policy: %v\n%s", err, policyJSON)
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
// into a new directory and returns the policy.json and the registries.d
// directory.
func export(t *testing.T, args []string, namespace string) ([]byte, string) {
	t.Helper()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	full := append([]string{"policy", "export", "--to", "containers-policy", "--namespace", namespace, "-o", dir}, args...)
	if code := cli.Execute(context.Background(), full, &out, &errOut); code != 0 {
		t.Fatalf("signet %s: exit %d\n%s%s", strings.Join(full, " "), code, out.String(), errOut.String())
	}
	data, err := os.ReadFile(filepath.Join(dir, namespace+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return data, filepath.Join(dir, "registries.d")
}

func TestExportedPolicyDecidesAsSignet(t *testing.T) {
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	ci, other, payments := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
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

	// Seed 003 in signet's terms: the "signed" repositories need the CI
	// key (and, in the payments namespace, the payments key too); the
	// "keyless" ones a Fulcio certificate for the release email; every
	// other image is unmatched.
	policies := write("policies.yaml", []byte(fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: ci-key}
spec:
  images: [{prefix: %[1]s/signed}]
  signedIdentity: matchRepository
  authorities:
    - name: ci
      insecureIgnoreTlog: true
      key:
        data: |
%[2]s
---
apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: release-keyless}
spec:
  images: [{glob: "%[1]s/keyless/**"}]
  authorities:
    - keyless:
        identities: [{issuer: %[4]s, subject: %[5]s}]
---
apiVersion: signet.dev/v1alpha1
kind: ImagePolicy
metadata: {name: payments-key, namespace: payments}
spec:
  images: [{prefix: %[1]s/signed/payments}]
  authorities:
    - insecureIgnoreTlog: true
      key:
        data: |
%[3]s
`, reg.Host, pub(ci), pub(payments), issuer, email)))

	img := func(repo string) registrytest.Image { return reg.PushRandomImage(t, repo, "v1") }
	signedCI := img("signed/app")
	cosign.Sign(t, signedCI.Ref, ci, harness.Legacy)
	signedOther := img("signed/other")
	cosign.Sign(t, signedOther.Ref, other, harness.Legacy)
	unsignedGoverned := img("signed/unsigned")
	unmatched := img("elsewhere/app")
	paymentsCIOnly := img("signed/payments/api")
	cosign.Sign(t, paymentsCIOnly.Ref, ci, harness.Legacy)
	paymentsBoth := img("signed/payments/worker")
	cosign.Sign(t, paymentsBoth.Ref, ci, harness.Legacy)
	cosign.Sign(t, paymentsBoth.Ref, payments, harness.Legacy)
	bundleOnly := img("signed/bundle")
	cosign.Sign(t, bundleOnly.Ref, ci, harness.Bundle)
	keyless := func(repo, identity string) registrytest.Image {
		i := img(repo)
		name, _, _ := strings.Cut(i.Ref, "@")
		payload := sigstoretest.SimpleSigning(name, i.Digest)
		reg.AttachLegacy(t, i, ".sig", sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, sigstoretest.SignOptions{Identity: identity, Issuer: issuer}))
		return i
	}
	keylessGood := keyless("keyless/app", email)
	keylessBundle := img("keyless/bundle")
	{
		name, _, _ := strings.Cut(keylessBundle.Ref, "@")
		reg.AttachBundle(t, keylessBundle, s.Bundle(t, sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, name, keylessBundle.Digest), sigstoretest.SignOptions{Identity: email, Issuer: issuer}))
	}
	keylessWrong := keyless("keyless/other", "intruder@acme.example")
	keylessUnsigned := img("keyless/unsigned")

	base := []string{"--policy", policies, "--trusted-root", trustedRoot}
	for _, tc := range []struct {
		name, namespace, unmatched string
		images                     []registrytest.Image
		// differs: signet allows, the runtime rejects (stricter, and
		// printed as a note by the export): the runtime reads only legacy
		// .sig signatures, not Sigstore bundles.
		differs []registrytest.Image
	}{
		{name: "default namespace, unmatched deny", namespace: "default", unmatched: "deny",
			// bundleOnly: a bundle names no image, so signedIdentity:
			// matchRepository denies it in signet too.
			images:  []registrytest.Image{signedCI, signedOther, unsignedGoverned, unmatched, paymentsCIOnly, paymentsBoth, bundleOnly, keylessGood, keylessWrong, keylessUnsigned},
			differs: []registrytest.Image{keylessBundle}},
		{name: "payments namespace adds its key", namespace: "payments", unmatched: "deny",
			images: []registrytest.Image{signedCI, paymentsCIOnly, paymentsBoth, unmatched}},
		{name: "unmatched allow", namespace: "default", unmatched: "allow",
			images: []registrytest.Image{unmatched, signedOther, keylessWrong}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string(nil), base...), "--unmatched", tc.unmatched)
			policyJSON, regsDir := export(t, args, tc.namespace)
			for _, i := range tc.images {
				for _, ref := range []string{i.Tag, i.Ref} {
					want, report := signet(t, args, ref, tc.namespace)
					got, err := runtime(t, policyJSON, regsDir, ref)
					if got != want {
						t.Errorf("%s in %s: signet allowed=%v, containers-image allowed=%v (%v)\nsignet:\n%s\npolicy.json:\n%s", ref, tc.namespace, want, got, err, report, policyJSON)
					}
				}
			}
			for _, i := range tc.differs {
				allowed, report := signet(t, args, i.Ref, tc.namespace)
				if !allowed {
					t.Errorf("%s: signet denied an image with a keyless Sigstore bundle by the release identity:\n%s", i.Ref, report)
				}
				if got, _ := runtime(t, policyJSON, regsDir, i.Ref); got {
					t.Errorf("%s: containers-image allowed an image with no legacy signature", i.Ref)
				}
			}
		})
	}

	// The expected decisions, so agreement is not agreement on "deny
	// everything": these images are allowed by both in the default namespace.
	policyJSON, regsDir := export(t, append(append([]string(nil), base...), "--unmatched", "deny"), "default")
	for _, i := range []registrytest.Image{signedCI, paymentsCIOnly, paymentsBoth, keylessGood} {
		if ok, err := runtime(t, policyJSON, regsDir, i.Tag); !ok {
			t.Errorf("%s: containers-image denied a correctly signed image: %v", i.Tag, err)
		}
	}
	for _, i := range []registrytest.Image{signedOther, unsignedGoverned, unmatched, keylessWrong, keylessUnsigned} {
		if ok, _ := runtime(t, policyJSON, regsDir, i.Tag); ok {
			t.Errorf("%s: containers-image allowed an image signet must deny", i.Tag)
		}
	}
	// Without the registries.d entries the runtime never sees a signature.
	if ok, _ := runtime(t, policyJSON, t.TempDir(), signedCI.Tag); ok {
		t.Errorf("%s allowed without use-sigstore-attachments", signedCI.Tag)
	}

	// A certificate authority (an enterprise PKI: cosign sign --certificate
	// --certificate-chain, the legacy format the runtime reads), exported
	// as pki for CRI-O 1.34.
	t.Run("pki certificate authority, CRI-O 1.34", func(t *testing.T) {
		corp := pkitest.NewRoot(t, "Example Root CA")
		codeSigning := corp.Intermediate(t, "Example Code Signing CA")
		unlisted := corp.Intermediate(t, "Example Unlisted CA")
		rogue := pkitest.NewRoot(t, "Other Root CA")
		pk := publicKey(t, ci)
		n := 0
		sign := func(repo string, ca *pkitest.CA, email string, chain ...*x509.Certificate) registrytest.Image {
			t.Helper()
			n++
			leaf := write(fmt.Sprintf("leaf-%d.pem", n), []byte(pkitest.PEM(ca.Issue(t, pk, pkitest.Leaf{CommonName: "release", Emails: []string{email}}))))
			i := img(repo)
			cosign.Sign(t, i.Ref, ci, harness.Legacy, "--certificate", leaf, "--certificate-chain", write(fmt.Sprintf("chain-%d.pem", n), []byte(pkitest.PEM(chain...))))
			return i
		}
		good := sign("pki/app", codeSigning, "release@example.com", codeSigning.Cert, corp.Cert)
		otherCA := sign("pki/other-ca", rogue, "release@example.com", rogue.Cert)
		otherEmail := sign("pki/other-email", codeSigning, "intruder@example.com", codeSigning.Cert, corp.Cert)
		viaUnlisted := sign("pki/unlisted", unlisted, "release@example.com", unlisted.Cert, corp.Cert)
		keyOnly := img("pki/key-only")
		cosign.Sign(t, keyOnly.Ref, ci, harness.Legacy)
		unsigned := img("pki/unsigned")

		indent := func(pem string) string {
			return "          " + strings.ReplaceAll(strings.TrimSpace(pem), "\n", "\n          ")
		}
		pkiPolicy := write("pki.yaml", []byte(fmt.Sprintf(`apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: corp-pki}
spec:
  images: [{glob: "%[1]s/pki/**"}]
  signedIdentity: matchRepository
  authorities:
    - name: corp-ca
      insecureIgnoreTlog: true
      certificate:
        roots: |
%[2]s
        intermediates: |
%[3]s
        identities: [{email: release@example.com}]
`, reg.Host, indent(corp.PEM()), indent(codeSigning.PEM()))))
		args := []string{"--policy", pkiPolicy, "--unmatched", "deny"}
		policyJSON, regsDir := export(t, append(append([]string(nil), args...), "--min-runtime", "crio-1.34"), "default")
		if !bytes.Contains(policyJSON, []byte(`"pki"`)) {
			t.Fatalf("the export has no pki requirement:\n%s", policyJSON)
		}
		for _, tc := range []struct {
			img  registrytest.Image
			want bool
		}{{good, true}, {otherCA, false}, {otherEmail, false}, {keyOnly, false}, {unsigned, false}} {
			for _, ref := range []string{tc.img.Tag, tc.img.Ref} {
				allowed, report := signet(t, args, ref, "default")
				got, err := runtime(t, policyJSON, regsDir, ref)
				if allowed != tc.want || got != tc.want {
					t.Errorf("%s: signet allowed=%v, containers-image allowed=%v (%v), want %v\nsignet:\n%s\npolicy.json:\n%s", ref, allowed, got, err, tc.want, report, policyJSON)
				}
			}
		}
		// An intermediate the authority does not list, carried by the
		// signature's chain: signet never uses that chain; containers-image
		// uses all of it but the last certificate, which it takes for the
		// root, and cosign writes the chain without its root, so the one
		// intermediate is not used there either.
		for _, ref := range []string{viaUnlisted.Tag, viaUnlisted.Ref} {
			allowed, report := signet(t, args, ref, "default")
			got, err := runtime(t, policyJSON, regsDir, ref)
			if allowed || got {
				t.Errorf("%s: signet allowed=%v, containers-image allowed=%v (%v), want both denied\nsignet:\n%s", ref, allowed, got, err, report)
			}
		}
	})
}

// publicKey reads a cosign key pair's public key.
func publicKey(t *testing.T, k harness.KeyPair) crypto.PublicKey {
	t.Helper()
	data, err := os.ReadFile(k.Public)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", k.Public)
	}
	pk, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}
