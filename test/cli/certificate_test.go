package cli_test

import (
	"crypto/x509"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/notationtest"
	"github.com/signet-dev/signet/test/pkitest"
)

// TestVerifyCertificateAuthority: images the real cosign CLI signed with a
// certificate of an enterprise CA, in the real registry, verified by
// signet verify --ca-roots and by a ClusterImagePolicy whose certificate
// authority reads its CA from a Secret.
func TestVerifyCertificateAuthority(t *testing.T) {
	reg := harness.StartRegistry(t)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	pubPEM, err := os.ReadFile(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verify.ParsePublicKeyPEM(pubPEM)
	if err != nil {
		t.Fatal(err)
	}
	root := pkitest.NewRoot(t, "Example Root CA")
	inter := root.Intermediate(t, "Example Code Signing CA")
	dir := t.TempDir()
	write := func(name string, certs ...*x509.Certificate) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(pkitest.PEM(certs...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	rootFile, interFile := write("root.pem", root.Cert), write("inter.pem", inter.Cert)
	leaf := write("leaf.pem", inter.Issue(t, pub.Key, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}, URIs: []string{"https://ci.example.com/pipelines/release"}}))
	chain := write("chain.pem", inter.Cert, root.Cert)

	for _, f := range harness.Formats {
		t.Run(f.String(), func(t *testing.T) {
			img := reg.PushRandomImage(t, "ca-"+f.String(), "v1")
			cosign.Sign(t, img.Ref, key, f, "--certificate", leaf, "--certificate-chain", chain)
			common := []string{"verify", "--allow-http-registry", "--insecure-ignore-tlog", "--ca-roots", rootFile, "--ca-intermediates", interFile}

			signet(t, append(common, "--certificate-identity", "release@example.com", img.Tag)...).
				Want(t, cli.ExitOK, ": verified", "certificate CN=release,O=Example Corp issued by CN=Example Code Signing CA,O=Example Corp")
			signet(t, append(common, "--certificate-identity-regexp", `https://ci\.example\.com/pipelines/.+`, img.Tag)...).
				Want(t, cli.ExitOK, ": verified")
			signet(t, append(common, "--certificate-identity", "someone@example.com", img.Tag)...).
				Want(t, cli.ExitDenied, "NOT verified", "does not match")
			// Without the intermediate, the chain the signature carries
			// is not trusted.
			signet(t, "verify", "--allow-http-registry", "--insecure-ignore-tlog", "--ca-roots", rootFile, "--certificate-identity", "release@example.com", img.Tag).
				Want(t, cli.ExitDenied, "NOT verified", "certificate signed by unknown authority")

			policy := `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: corp-signed}
spec:
  images: [{glob: "` + reg.Host + `/**"}]
  authorities:
  - name: corp-ca
    insecureIgnoreTlog: true
    certificate:
      secretRef: {name: corp-ca, namespace: signet-system}
      identities: [{email: release@example.com}]
---
apiVersion: v1
kind: Secret
metadata: {name: corp-ca, namespace: signet-system}
data:
  ca.crt: ` + base64.StdEncoding.EncodeToString([]byte(root.PEM())) + `
  intermediates.crt: ` + base64.StdEncoding.EncodeToString([]byte(inter.PEM())) + `
`
			path := filepath.Join(t.TempDir(), "policy.yaml")
			if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
				t.Fatal(err)
			}
			signet(t, "policy", "test", "--policy", path, "--allow-http-registry", "--image", img.Tag).Want(t, cli.ExitOK, "allowed")
			wrong := strings.Replace(policy, "email: release@example.com", "email: someone@example.com", 1)
			if err := os.WriteFile(path, []byte(wrong), 0o600); err != nil {
				t.Fatal(err)
			}
			signet(t, "policy", "test", "--policy", path, "--allow-http-registry", "--image", img.Tag).Want(t, cli.ExitDenied, "DENIED", "does not match certificates issued under CN=Example Root CA,O=Example Corp to email someone@example.com")
		})
	}

	t.Run("flags refused", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--ca-roots", rootFile, "--key", key.Public, "--certificate-identity", "a@example.com"}, "give either --key or --ca-roots"},
			{[]string{"--ca-roots", rootFile, "--certificate-identity", "a@example.com", "--certificate-oidc-issuer", "https://accounts.google.com"}, "--certificate-oidc-issuer applies to Fulcio certificates"},
			{[]string{"--ca-roots", rootFile}, "--ca-roots needs one of --certificate-identity"},
			{[]string{"--ca-intermediates", interFile, "--key", key.Public}, "--ca-intermediates needs --ca-roots"},
			{[]string{"--ca-roots", leaf, "--certificate-identity", "a@example.com", "--insecure-ignore-tlog"}, "is not a CA certificate"},
		} {
			signet(t, append(append([]string{"verify"}, tc.args...), "registry.example.org/app:v1")...).Want(t, cli.ExitUndecided, tc.want)
		}
	})
}

// TestPolicyTestNotation: a ClusterImagePolicy whose notation authority
// reads its trust store from a Secret decides images signed by the Notary
// Project's library in the real registry, JWS and COSE.
func TestPolicyTestNotation(t *testing.T) {
	reg := harness.StartRegistry(t)
	root := pkitest.NewRoot(t, "Notary Root CA")
	ca := root.Intermediate(t, "Notary Signing CA")
	signer := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "release"})
	other := notationtest.NewSigner(t, pkitest.NewRoot(t, "Other Root CA"), pkitest.Leaf{CommonName: "release"})
	policy := `apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: notary-signed}
spec:
  images: [{glob: "` + reg.Host + `/**"}]
  authorities:
  - name: release
    notation:
      secretRef: {name: notary-trust, namespace: signet-system}
      trustedIdentities: ["` + signer.Identity() + `"]
---
apiVersion: v1
kind: Secret
metadata: {name: notary-trust, namespace: signet-system}
data:
  ca.crt: ` + base64.StdEncoding.EncodeToString([]byte(root.PEM())) + `
`
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, format := range map[string]string{"jws": notationtest.JWS, "cose": notationtest.COSE} {
		signed := reg.PushRandomImage(t, "notary", "signed-"+name)
		notationtest.Sign(t, signed.Ref, signer, notationtest.Options{Format: format})
		stranger := reg.PushRandomImage(t, "notary", "stranger-"+name)
		notationtest.Sign(t, stranger.Ref, other, notationtest.Options{Format: format})

		signet(t, "policy", "test", "--policy", path, "--allow-http-registry", "--image", signed.Tag).
			Want(t, cli.ExitOK, "allowed", "signature by notary certificate CN=release,O=Example Corp,ST=WA,C=US issued by CN=Notary Signing CA")
		signet(t, "policy", "test", "--policy", path, "--allow-http-registry", "--image", stranger.Tag).
			Want(t, cli.ExitDenied, "DENIED", "notary signature authenticity")
	}
}

// TestVerifyNotationTrustPolicy: signet verify with notation's own trust
// policy and trust store directory decides as notation verify would.
func TestVerifyNotationTrustPolicy(t *testing.T) {
	reg := harness.StartRegistry(t)
	root := pkitest.NewRoot(t, "Notary Root CA")
	signer := notationtest.NewSigner(t, root.Intermediate(t, "Notary Signing CA"), pkitest.Leaf{CommonName: "release"})
	other := notationtest.NewSigner(t, pkitest.NewRoot(t, "Other Root CA"), pkitest.Leaf{CommonName: "release"})
	config := t.TempDir()
	store := filepath.Join(config, "truststore", "x509", "ca", "corp")
	if err := os.MkdirAll(store, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "root.pem"), []byte(root.PEM()), 0o600); err != nil {
		t.Fatal(err)
	}
	trustPolicy := filepath.Join(config, "trustpolicy.json")
	if err := os.WriteFile(trustPolicy, []byte(`{"version": "1.0", "trustPolicies": [{
		"name": "corp", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
		"trustStores": ["ca:corp"], "trustedIdentities": ["`+signer.Identity()+`"]}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	signed := reg.PushRandomImage(t, "notary", "signed")
	notationtest.Sign(t, signed.Ref, signer, notationtest.Options{Format: notationtest.COSE})
	stranger := reg.PushRandomImage(t, "notary", "stranger")
	notationtest.Sign(t, stranger.Ref, other, notationtest.Options{})

	common := []string{"verify", "--allow-http-registry", "--notation-trust-policy", trustPolicy, "--notation-trust-store", config}
	signet(t, append(common, signed.Tag)...).Want(t, cli.ExitOK, "allowed", "signature by notary certificate CN=release")
	signet(t, append(common, stranger.Tag)...).Want(t, cli.ExitDenied, "DENIED", "notary signature authenticity")
	signet(t, "verify", "--notation-trust-store", config, signed.Tag).Want(t, cli.ExitUndecided, "--notation-trust-store needs --notation-trust-policy")
	signet(t, "verify", "--notation-trust-policy", trustPolicy, "--key", "k.pub", signed.Tag).Want(t, cli.ExitUndecided, "--notation-trust-policy says what to trust")
}
