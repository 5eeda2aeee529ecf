package convert_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/convert"
	"github.com/signet-dev/signet/test/clitest"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/notationtest"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// world is a registry with images signed by real cosign (key-based,
// without a transparency log) and by a local Sigstore (keyless).
type world struct {
	host, trustedRoot, dir string
	key, other             string // PEM public keys
	ca                     string // PEM self-signed CA certificate
	// The local Sigstore's Fulcio chain (intermediate, root), Rekor and CT
	// log keys, in PEM: a private Sigstore as Kyverno names one.
	fulcioChain, rekorKey, ctKey string
	fulcioRoot                   string // the root alone, as containers-policy.json's caData holds it
	// An enterprise PKI's root and intermediate, in PEM: the "pki" image
	// is signed by key with a certificate they issued to release@example.com.
	pkiRoot, pkiIntermediate string
	// pkiLeaf is that certificate; pkiOther the same CA's certificate for
	// the other key, which signed "pki-wrong" with it.
	pkiLeaf, pkiOther string
	// Notary signatures by notation-go: the root of the CA that issued the
	// release signer's certificate, another root, the release signer's
	// trusted identity, and a timestamp authority's root.
	notaryRoot, notaryOther, notaryID, notaryTSA string
	images                                       map[string]registrytest.Image
}

const slsa = "https://slsa.dev/provenance/v1"

func newWorld(t *testing.T) *world {
	reg := registrytest.StartInProcess(t, true)
	cosign := harness.NewCosign(t)
	key, other := cosign.GenerateKeyPair(t), cosign.GenerateKeyPair(t)
	s := sigstoretest.New(t)
	w := &world{host: reg.Host, dir: t.TempDir(), images: map[string]registrytest.Image{}}
	w.trustedRoot = w.write(t, "trusted_root.json", string(s.TrustedRootJSON()))
	w.key, w.other = clitest.ReadFile(t, key.Public), clitest.ReadFile(t, other.Public)
	w.ca = selfSignedCA(t)
	w.fulcioChain, w.fulcioRoot, w.rekorKey, w.ctKey = sigstorePEMs(t, s)
	push := func(name, repo string) registrytest.Image {
		i := reg.PushRandomImage(t, repo, "v1")
		w.images[name] = i
		return i
	}
	cosign.Sign(t, push("signed", "prod/app").Ref, key, harness.Legacy)
	corp := pkitest.NewRoot(t, "Example Root CA")
	codeSigning := corp.Intermediate(t, "Example Code Signing CA")
	w.pkiRoot, w.pkiIntermediate = corp.PEM(), codeSigning.PEM()
	b, _ := pem.Decode([]byte(w.key))
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	w.pkiLeaf = pkitest.PEM(codeSigning.Issue(t, pub, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}}))
	leaf, chain := w.write(t, "pki-leaf.pem", w.pkiLeaf), w.write(t, "pki-chain.pem", codeSigning.PEM()+corp.PEM())
	cosign.Sign(t, push("pki", "pki/app").Ref, key, harness.Legacy, "--certificate", leaf, "--certificate-chain", chain)
	cosign.Sign(t, push("pki-bundle", "pki/bundle").Ref, key, harness.Bundle, "--certificate", leaf, "--certificate-chain", chain)
	b, _ = pem.Decode([]byte(w.other))
	otherPub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	w.pkiOther = pkitest.PEM(codeSigning.Issue(t, otherPub, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}}))
	cosign.Sign(t, push("pki-wrong", "pki/wrong").Ref, other, harness.Legacy, "--certificate", w.write(t, "pki-other.pem", w.pkiOther), "--certificate-chain", chain)
	cosign.Sign(t, push("bundle", "prod/bundle").Ref, key, harness.Bundle)
	cosign.Sign(t, push("wrong", "prod/wrong").Ref, other, harness.Legacy)
	push("unsigned", "prod/unsigned")
	cosign.Sign(t, push("special", "prod/special/app").Ref, other, harness.Legacy)
	push("elsewhere", "elsewhere/app")
	// Attestations (Kyverno attestation conditions): a reviewed build, an
	// unreviewed one, the reviewed one as a Sigstore bundle, by key.
	reviewed := []byte(`{"builder":{"id":"https://ci.example.org/builder"},"reviewers":["ana@example.com"]}`)
	unreviewed := []byte(`{"builder":{"id":"https://ci.example.org/builder"},"reviewers":[]}`)
	att := push("attested", "attest/reviewed")
	cosign.Attest(t, att.Ref, key, slsa, reviewed, harness.Legacy)
	cosign.Sign(t, att.Ref, key, harness.Legacy)
	cosign.Attest(t, push("attested-unreviewed", "attest/unreviewed").Ref, key, slsa, unreviewed, harness.Legacy)
	cosign.Attest(t, push("attested-bundle", "attest/bundle").Ref, key, slsa, reviewed, harness.Bundle)
	cosign.Sign(t, push("attest-signed-only", "attest/signed-only").Ref, key, harness.Legacy)
	cosign.Sign(t, push("evil", "prod-evil/app").Ref, other, harness.Legacy)
	// Keyless legacy .sig signatures, as cosign writes them: a
	// simple-signing payload naming the repository.
	keyless := func(name, repo string, o sigstoretest.SignOptions) {
		i := push(name, repo)
		n, _, _ := strings.Cut(i.Ref, "@")
		payload := sigstoretest.SimpleSigning(n, i.Digest)
		reg.AttachLegacy(t, i, ".sig", sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, o))
	}
	keyless("keyless", "keyless/app", sigstoretest.Release())
	keyless("intruder", "keyless/other", sigstoretest.SignOptions{Identity: "https://github.com/mallory/app/.github/workflows/release.yml@refs/heads/main", Issuer: sigstoretest.GitHubIssuer})
	push("keyless-unsigned", "keyless/unsigned")
	// Seed 003's images: quay.io/crio/signed, signed by an email
	// identity from GitHub's OAuth issuer, and quay.io/crio/unsigned.
	keyless("crio-signed", "crio/signed", sigstoretest.SignOptions{Identity: crioEmail, Issuer: crioIssuer})
	push("crio-unsigned", "crio/unsigned")
	w.notarySign(t, push)
	return w
}

// notarySign pushes images with Notary signatures made by notation-go: by
// the release signer in JWS and COSE, with an RFC 3161 timestamp, by
// another identity of the same CA, by another CA's signer; and unsigned.
func (w *world) notarySign(t *testing.T, push func(name, repo string) registrytest.Image) {
	root := pkitest.NewRoot(t, "Notary Root CA")
	ca := root.Intermediate(t, "Notary Signing CA")
	release := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "release"})
	intruder := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "intruder"})
	stranger := pkitest.NewRoot(t, "Other Notary Root CA")
	tsa := notationtest.StartTSA(t)
	w.notaryRoot, w.notaryOther, w.notaryID = root.PEM(), stranger.PEM(), release.Identity()
	w.notaryTSA = tsa.Root.PEM()
	notationtest.Sign(t, push("notary-jws", "notary/jws").Ref, release, notationtest.Options{Format: notationtest.JWS})
	notationtest.Sign(t, push("notary-cose", "notary/cose").Ref, release, notationtest.Options{Format: notationtest.COSE})
	notationtest.Sign(t, push("notary-timestamped", "notary/timestamped").Ref, release, notationtest.Options{TSA: tsa})
	notationtest.Sign(t, push("notary-intruder", "notary/intruder").Ref, intruder, notationtest.Options{Format: notationtest.COSE})
	notationtest.Sign(t, push("notary-stranger", "notary/stranger").Ref, notationtest.NewSigner(t, stranger.Intermediate(t, "Other Signing CA"), pkitest.Leaf{CommonName: "release"}), notationtest.Options{})
	push("notary-unsigned", "notary/unsigned")
}

// sigstorePEMs are s's Fulcio chain (intermediates, then the root), its
// root alone, Rekor key and CT log key in PEM.
func sigstorePEMs(t *testing.T, s *sigstoretest.Sigstore) (chain, fulcioRoot, rekor, ct string) {
	t.Helper()
	tr := s.TrustedRoot()
	ca, ok := tr.FulcioCertificateAuthorities()[0].(*root.FulcioCertificateAuthority)
	if !ok {
		t.Fatal("the local Fulcio is not a FulcioCertificateAuthority")
	}
	for _, c := range append(slices.Clone(ca.Intermediates), ca.Root) {
		chain += string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	fulcioRoot = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Root.Raw}))
	keyPEM := func(logs map[string]*root.TransparencyLog) string {
		for _, l := range logs {
			der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		}
		t.Fatal("no log")
		return ""
	}
	return chain, fulcioRoot, keyPEM(tr.RekorLogs()), keyPEM(tr.CTLogs())
}

// selfSignedCA is a CA certificate in PEM, for converted trust roots.
func selfSignedCA(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fulcio"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func (w *world) write(t *testing.T, name, content string) string {
	t.Helper()
	return clitest.WriteFile(t, w.dir, name, content)
}

func indent(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// expand fills a source template: {{HOST}}, {{KEY:n}} and {{OTHER:n}}
// (PEM indented by n), {{KEY64}} and {{OTHER64}} (base64 of the PEM),
// {{FULCIOCHAIN64}}, {{FULCIOROOT64}} and {{REKOR64}} (base64 of the local
// Sigstore's Fulcio chain, its root alone, and its Rekor key),
// {{PKIROOT64}} and {{PKIINTER64}} (base64 of the PKI's root and
// intermediate), {{NOTARYROOT:n}}, {{NOTARYOTHER:n}} and {{NOTARYTSA:n}}
// (the Notary signers' CA root, another root, the TSA root), {{NOTARYID}}
// (the release signer's trusted identity), {{PKILEAF:n}} and
// {{PKICHAIN:n}} (the PKI's certificate for the key, its chain from the
// intermediate to the root).
func (w *world) expand(src string) string {
	r := strings.NewReplacer("{{HOST}}", w.host, "{{NOTARYID}}", w.notaryID,
		"{{KEY64}}", base64.StdEncoding.EncodeToString([]byte(w.key)),
		"{{OTHER64}}", base64.StdEncoding.EncodeToString([]byte(w.other)),
		"{{CA64}}", base64.StdEncoding.EncodeToString([]byte(w.ca)),
		"{{FULCIOCHAIN64}}", base64.StdEncoding.EncodeToString([]byte(w.fulcioChain)),
		"{{FULCIOROOT64}}", base64.StdEncoding.EncodeToString([]byte(w.fulcioRoot)),
		"{{REKOR64}}", base64.StdEncoding.EncodeToString([]byte(w.rekorKey)),
		"{{PKIROOT64}}", base64.StdEncoding.EncodeToString([]byte(w.pkiRoot)),
		"{{PKIINTER64}}", base64.StdEncoding.EncodeToString([]byte(w.pkiIntermediate)))
	src = r.Replace(src)
	for _, k := range []struct{ tag, pem string }{{"KEY", w.key}, {"OTHER", w.other}, {"CA", w.ca},
		{"FULCIO", w.fulcioChain}, {"REKOR", w.rekorKey}, {"CTLOG", w.ctKey},
		{"NOTARYROOT", w.notaryRoot}, {"NOTARYOTHER", w.notaryOther}, {"NOTARYTSA", w.notaryTSA},
		{"PKILEAF", w.pkiLeaf}, {"PKICHAIN", w.pkiIntermediate + w.pkiRoot}} {
		for n := 0; n <= 20; n += 2 {
			src = strings.ReplaceAll(src, fmt.Sprintf("{{%s:%d}}", k.tag, n), indent(k.pem, n))
		}
	}
	return src
}

// decision is what signet's policy test says of one image under the
// converted policies.
type decision struct {
	image string // name in world.images
	// ref spells the image (default: its tagged reference).
	ref  func(registrytest.Image) string
	args []string // extra policy test flags
	code int
	want string
}

// byDigest is an image given by digest alone; tagAndDigest(tag) by tag and
// digest.
func byDigest(i registrytest.Image) string { return i.Ref }
func tagAndDigest(tag string) func(registrytest.Image) string {
	return func(i registrytest.Image) string {
		repo, _, _ := strings.Cut(i.Ref, "@")
		return repo + ":" + tag + "@" + i.Digest
	}
}

func signet(args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Execute(context.Background(), args, &out, &out)
	return code, out.String()
}

type formatCase struct {
	name    string
	format  string
	source  string
	lossy   bool
	refused []string // refusal messages; then nothing is decided
	notes   []string // notes the conversion must carry
	// contains are strings the converted objects must hold (for objects
	// policy test cannot load: TrustRoots need a cluster).
	contains []string
	// with are manifests policy test reads beside the converted ones
	// (the Secrets a converted policy names).
	with string
	// trustStore are files of a notation trust store directory by path
	// (x509/<type>/<name>/<file>), given as Options.NotationTrustStore or,
	// with storeArgs, as further files to convert.
	trustStore map[string]string
	storeArgs  bool
	decide     []decision
}

func runCases(t *testing.T, w *world, cases []formatCase) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := []string{w.write(t, strings.ReplaceAll(tc.name, " ", "_")+".src", w.expand(tc.source))}
			opts := convert.Options{AllowLossy: tc.lossy}
			if tc.trustStore != nil {
				opts.NotationTrustStore = filepath.Join(t.TempDir(), "truststore")
				for name, content := range tc.trustStore {
					path := filepath.Join(opts.NotationTrustStore, filepath.FromSlash(name))
					if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
						t.Fatal(err)
					}
					clitest.WriteFile(t, filepath.Dir(path), filepath.Base(path), w.expand(content))
					if tc.storeArgs {
						files = append(files, path)
					}
				}
				if tc.storeArgs {
					opts.NotationTrustStore = ""
				}
			}
			res, err := convert.Convert(t.Context(), tc.format, files, opts)
			if len(tc.refused) > 0 {
				var refused *convert.RefusedError
				if !errors.As(err, &refused) {
					t.Fatalf("converted, want refused saying %q (err %v)", tc.refused, err)
				}
				for _, want := range tc.refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal does not say %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("convert: %v", err)
			}
			out, err := res.YAML()
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.notes {
				if !strings.Contains(string(out), want) {
					t.Errorf("output does not note %q:\n%s", want, out)
				}
			}
			for _, want := range tc.contains {
				if !strings.Contains(string(out), w.expand(want)) {
					t.Errorf("output does not hold %q:\n%s", w.expand(want), out)
				}
			}
			policies := w.write(t, strings.ReplaceAll(tc.name, " ", "_")+".yaml", string(out))
			policyArgs := []string{"--policy", policies}
			if tc.with != "" {
				policyArgs = append(policyArgs, "--policy", w.write(t, strings.ReplaceAll(tc.name, " ", "_")+".with.yaml", w.expand(tc.with)))
			}
			for _, d := range tc.decide {
				img := w.images[d.image]
				ref := img.Tag
				if d.ref != nil {
					ref = d.ref(img)
				}
				args := append(append([]string{"policy", "test"}, policyArgs...), "--allow-http-registry", "--trusted-root", w.trustedRoot, "--image", ref)
				args = append(args, d.args...)
				code, got := signet(args...)
				if code != d.code || !strings.Contains(got, d.want) {
					t.Errorf("%s (%s %v): exit %d, want %d saying %q:\n%s\npolicies:\n%s", d.image, ref, d.args, code, d.code, d.want, got, out)
				}
			}
		})
	}
}

const (
	ok     = cli.ExitOK
	denied = cli.ExitDenied
)

// seed004OptIn are the policy test flags for an image admitted in namespace
// ns, labelled label, under the namespace opt-in of seed 004.
func seed004OptIn(ns, label string) []string {
	return []string{"--namespace-opt-in", "--namespace-opt-in-label", "policy.sigstore.dev/include", "--namespace", ns, "--namespace-label", label}
}

// Seed 003's keyless identity (an email from GitHub's OAuth issuer) and
// the address its "changed subjectEmail" edit requires instead.
const (
	crioIssuer     = "https://github.com/login/oauth"
	crioEmail      = "release@acme.example"
	crioOtherEmail = "someone-else@acme.example"
)

// seed003Policy is seed 003's policy.json as written, with the scope
// (quay.io/crio/signed there), the required email, the Fulcio CA (ca, a
// template: the local Sigstore's chain or root) and the Rekor key (the
// local Sigstore's) substituted.
func seed003Policy(scope, email, ca string) string {
	return strings.NewReplacer("{{SCOPE}}", scope, "{{EMAIL}}", email, "{{CADATA}}", ca).Replace(`{
  "default": [{ "type": "reject" }],
  "transports": {
    "docker": {
      "{{SCOPE}}": [
        {
          "type": "sigstoreSigned",
          "signedIdentity": { "type": "matchRepository" },
          "fulcio": {
            "oidcIssuer": "` + crioIssuer + `",
            "subjectEmail": "{{EMAIL}}",
            "caData": "{{CADATA}}"
          },
          "rekorPublicKeyData": "{{REKOR64}}"
        }
      ]
    }
  }
}`)
}

// TestPolicyController: seed 004 (keyless, subjectRegExp) and key
// authorities, globs, static, mode, attestations with policies refused.
func TestConvertedDecisions(t *testing.T) {
	w := newWorld(t)
	unmatched := "did not match any image policies"
	t.Run("policy-controller", func(t *testing.T) {
		runCases(t, w, []formatCase{
			{name: "pc seed 004 keyless", format: "policy-controller", source: `
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: acme-keyless}
spec:
  images: [{glob: "**/keyless/**"}]
  authorities:
    - keyless:
        url: https://fulcio.sigstore.dev
        identities:
          - issuer: https://token.actions.githubusercontent.com
            subjectRegExp: "github.com/acme/.+/release.yml"
      ctlog: {url: https://rekor.sigstore.dev}
`, notes: []string{"--namespace-opt-in", "--namespace-opt-in-label policy.sigstore.dev/include"}, decide: []decision{
				{image: "keyless", code: ok, want: "allowed"},
				{image: "intruder", code: denied, want: "DENIED"},
				{image: "keyless-unsigned", code: denied, want: "no signature found"},
				{image: "signed", code: denied, want: unmatched},
				// Run as the note says, the namespaces the seed labels are
				// enforced and the others not.
				{image: "keyless-unsigned", args: seed004OptIn("stackable", "policy.sigstore.dev/include=true"), code: denied, want: "no signature found"},
				{image: "keyless-unsigned", args: seed004OptIn("elsewhere", "signet.dev/include=true"), code: ok, want: "namespace elsewhere has not opted in"},
			}},
			{name: "pc key glob star", format: "policy-controller", source: `
apiVersion: policy.sigstore.dev/v1beta1
kind: ClusterImagePolicy
metadata: {name: prod}
spec:
  images: [{glob: "{{HOST}}/prod/*"}]
  authorities:
    - key:
        data: |
{{KEY:10}}
`, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "bundle", code: ok, want: "allowed"},
				{image: "wrong", code: denied, want: "DENIED"},
				{image: "unsigned", code: denied, want: "no signature found"},
				// "*" stays within one segment: prod/special/app is not governed.
				{image: "special", code: denied, want: unmatched},
				{image: "evil", code: denied, want: unmatched},
			}},
			{name: "pc warn and static", format: "policy-controller", source: `
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: prod-warn}
spec:
  mode: warn
  images: [{glob: "{{HOST}}/prod/**"}]
  authorities:
    - key: {data: "{{KEY64}}"}
    - static: {action: fail}
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: elsewhere}
spec:
  images: [{glob: "{{HOST}}/elsewhere/**"}]
  authorities: [{static: {action: pass}}]
`, decide: []decision{
				{image: "unsigned", code: ok, want: "warning"},
				{image: "special", code: ok, want: "warning"},
				{image: "elsewhere", code: ok, want: "allowed"},
			}},
			{name: "pc cue policy refused", format: "policy-controller", source: `
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: att}
spec:
  images: [{glob: "**"}]
  authorities:
    - key: {data: "x"}
      attestations:
        - name: must-have-slsa
          predicateType: https://slsa.dev/provenance/v1
          policy: {type: cue, data: "predicateType: \"x\""}
`, refused: []string{"spec.authorities[0].attestations[0].policy: not supported: CUE and Rego"}},
			{name: "pc trust roots", format: "policy-controller", source: `
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata: {name: private}
spec:
  sigstoreKeys:
    certificateAuthorities: [{subject: {organization: acme, commonName: fulcio}, uri: "https://fulcio.example.internal", certChain: "{{CA64}}"}]
    tLogs: [{baseURL: "https://rekor.example.internal", hashAlgorithm: sha-256, publicKey: "{{OTHER64}}"}]
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: TrustRoot
metadata: {name: mirror}
spec:
  remote: {mirror: "https://tuf.example.internal", root: "e30="}
---
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: private-rekor}
spec:
  images: [{glob: "{{HOST}}/prod/**"}]
  authorities:
    - key: {data: "{{KEY64}}"}
      ctlog: {url: "https://rekor.example.internal", trustRootRef: private}
`, contains: []string{"kind: TrustRoot\nmetadata:\n  annotations:\n    signet.dev/converted-from: policy-controller TrustRoot private\n  name: private",
				"certChain: |\n        -----BEGIN CERTIFICATE-----", "uri: https://fulcio.example.internal", "baseURL: https://rekor.example.internal\n      publicKey: |\n        -----BEGIN PUBLIC KEY-----",
				"remote:\n    mirror: https://tuf.example.internal\n    root: e30=", "trustRootRef: private"}},
			{name: "pc glob naming a tag refused", format: "policy-controller", source: `
apiVersion: policy.sigstore.dev/v1alpha1
kind: ClusterImagePolicy
metadata: {name: tag}
spec:
  images: [{glob: "ghcr.io/acme/app:*"}]
  authorities: [{static: {action: pass}}]
`, refused: []string{"spec.images[0].glob: not supported"}},
		})
	})

	t.Run("kyverno", func(t *testing.T) {
		runCases(t, w, []formatCase{
			{name: "kyverno seed 002 keyless", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: check-image-signature}
spec:
  validationFailureAction: Enforce
  rules:
    - name: check-signature
      match:
        any:
        - resources: {kinds: [Pod]}
      verifyImages:
      - imageReferences: ["{{HOST}}/keyless/*"]
        attestors:
        - count: 1
          entries:
          - keyless:
              subject: "https://github.com/acme/*/.github/workflows/release.yml@refs/heads/main"
              issuer: "https://token.actions.githubusercontent.com"
`, notes: []string{"--unmatched=allow"}, decide: []decision{
				{image: "keyless", code: ok, want: "allowed"},
				{image: "intruder", code: denied, want: "DENIED"},
				{image: "keyless-unsigned", code: denied, want: "no signature found"},
				{image: "keyless", args: []string{"--kind", "Deployment"}, code: ok, want: "allowed"},
			}},
			{name: "kyverno keys two sets audit", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: Policy
metadata: {name: two-keys, namespace: team}
spec:
  rules:
    - name: both
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        failureAction: Enforce
        mutateDigest: false
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
        - entries:
          - keys:
              publicKeys: |-
{{OTHER:16}}
              rekor: {ignoreTlog: true}
`, decide: []decision{
				// Both attestor sets must pass: signed only by one key is denied.
				{image: "signed", args: []string{"--namespace", "team"}, code: denied, want: "requires images by digest"},
				{image: "special", args: []string{"--namespace", "team"}, code: denied, want: "DENIED"},
				// A namespaced Policy: elsewhere nothing governs the image.
				{image: "signed", args: []string{"--namespace", "other"}, code: denied, want: unmatched},
			}},
			{name: "kyverno key without rekor needs the tlog", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: tlog}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
`, decide: []decision{
				{image: "signed", code: denied, want: "DENIED"},
			}},
			{name: "kyverno audit default", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: audit}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        mutateDigest: false
        verifyDigest: false
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
`, decide: []decision{
				{image: "unsigned", code: ok, want: "warning"},
				{image: "signed", code: ok, want: "allowed"},
			}},
			{name: "kyverno certificates not a certificate", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: certs}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["ghcr.io/*"]
        skipImageReferences: ["ghcr.io/acme/*"]
        attestors:
        - entries:
          - certificates: {cert: "x"}
`, refused: []string{
				"spec.rules[0].verifyImages[0].attestors[0].entries[0].certificates.cert: invalid: no PEM certificate: Kyverno fails every image",
			}},
			// Kyverno verifies with the pinned certificate's key, after
			// checking once that it chains to certChain: signatures made
			// with the key pass whatever certificate they carry, in both
			// formats; another key's, with a certificate of the same CA,
			// does not.
			{name: "kyverno certificates cert and chain", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: certs}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/pki/*"]
        attestors:
        - entries:
          - certificates:
              cert: |-
{{PKILEAF:16}}
              certChain: |-
{{PKICHAIN:16}}
              rekor: {ignoreTlog: true}
              ctlog: {ignoreSCT: true}
`, notes: []string{"becomes a key authority"}, decide: []decision{
				{image: "pki", code: ok, want: "allowed"},
				{image: "pki-bundle", code: ok, want: "allowed"},
				{image: "pki-wrong", code: denied, want: "signature does not verify with the trusted key"},
				{image: "signed", code: denied, want: unmatched},
			}},
			// certChain alone: its certificates are the roots of the
			// signature's own certificate, any identity.
			{name: "kyverno certificates chain only", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: certs}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/pki/*"]
        attestors:
        - entries:
          - certificates:
              certChain: |-
{{PKICHAIN:16}}
              rekor: {ignoreTlog: true}
              ctlog: {ignoreSCT: true}
`, notes: []string{"Kyverno checks no identity"}, decide: []decision{
				{image: "pki", code: ok, want: "allowed"},
				{image: "pki-bundle", code: ok, want: "allowed"},
				{image: "pki-wrong", code: ok, want: "allowed"},
			}},
			{name: "kyverno certificates log required", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: certs}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/pki/*"]
        attestors:
        - entries:
          - certificates:
              cert: |-
{{PKILEAF:16}}
`, refused: []string{
				"spec.rules[0].verifyImages[0].attestors[0].entries[0].certificates.cert: not supported: with the transparency log required",
			}},
			{name: "kyverno skipImageReferences", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: skip}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        skipImageReferences: ["{{HOST}}/prod/special/*"]
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
`, contains: []string{"excludeImages:\n  - glob: {{HOST}}/prod/special/*/**"}, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "unsigned", code: denied, want: "no signature found"},
				// Skipped by the rule: no policy governs it, as in Kyverno.
				{image: "special", code: denied, want: unmatched},
				{image: "special", args: []string{"--unmatched", "allow"}, code: ok, want: "allowed"},
			}},
			{name: "kyverno skipImageReferences depending on the tag refused", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: skip}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        skipImageReferences: ["{{HOST}}/prod/*-debug*"]
        attestors: [{entries: [{keys: {publicKeys: "{{KEY64}}"}}]}]
`, refused: []string{"skipImageReferences[0]: not supported", "cannot be excluded exactly"}},
			{name: "kyverno rekor pubkey and secret", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: private-rekor}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        attestors:
        - entries:
          - keys:
              secret: {name: cosign-key, namespace: security}
              rekor:
                url: https://rekor.example.internal
                pubkey: |-
{{OTHER:18}}
`, contains: []string{"kind: TrustRoot", "baseURL: https://rekor.example.internal", "trustRootRef: kyverno-", "secretRef:\n        key: cosign.pub\n        name: cosign-key\n        namespace: security"}},
			{name: "kyverno exclude namespaces", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: not-in-system}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      exclude:
        any:
        - resources: {namespaces: [kube-system]}
        - resources: {namespaces: [sandbox, kube-system]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        mutateDigest: false
        verifyDigest: false
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
    - name: legacy-form
      match: {resources: {kinds: [Pod], namespaces: [team-a, team-b]}}
      exclude: {resources: {namespaces: [team-b]}}
      verifyImages:
      - imageReferences: ["{{HOST}}/elsewhere/*"]
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
`, contains: []string{"operator: NotIn\n        values:\n        - kube-system\n        - sandbox"}, decide: []decision{
				{image: "signed", args: []string{"--namespace", "default"}, code: ok, want: "allowed"},
				{image: "unsigned", args: []string{"--namespace", "default"}, code: denied, want: "no signature found"},
				// Excluded namespaces: the policy does not govern the image there.
				{image: "unsigned", args: []string{"--namespace", "kube-system"}, code: denied, want: unmatched},
				{image: "unsigned", args: []string{"--namespace", "sandbox", "--unmatched", "allow"}, code: ok, want: "allowed"},
				{image: "elsewhere", args: []string{"--namespace", "team-a"}, code: denied, want: "no signature found"},
				{image: "elsewhere", args: []string{"--namespace", "team-b"}, code: denied, want: unmatched},
			}},
			{name: "kyverno exclude by kind refused", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: ex-kinds}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      exclude: {any: [{resources: {kinds: [Deployment]}}, {subjects: [{kind: User, name: admin}]}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
`, refused: []string{"spec.rules[0].exclude.any[0].resources.kinds: not supported"}},
			{name: "kyverno keyless private sigstore", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: private-sigstore}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/keyless/*"]
        mutateDigest: false
        verifyDigest: false
        attestors:
        - entries:
          - keyless:
              subject: "https://github.com/acme/*"
              issuer: "https://token.actions.githubusercontent.com"
              roots: |-
{{FULCIO:16}}
              rekor:
                url: https://rekor.example.internal
                pubkey: |-
{{REKOR:18}}
              ctlog:
                pubkey: |-
{{CTLOG:18}}
`, contains: []string{"kind: TrustRoot", "trustRootRef: kyverno-", "baseURL: https://rekor.example.internal"}, notes: []string{"roots must include the intermediates"}, decide: []decision{
				// Verified with the converted TrustRoot: the default root
				// (--trusted-root) is the public-good one here.
				{image: "keyless", args: []string{"--trusted-root", ""}, code: ok, want: "allowed"},
				{image: "intruder", args: []string{"--trusted-root", ""}, code: denied, want: "DENIED"},
			}},
			{name: "kyverno keyless private roots with another rekor key", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: wrong-rekor}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/keyless/*"]
        mutateDigest: false
        verifyDigest: false
        attestors:
        - entries:
          - keyless:
              subject: "https://github.com/acme/*"
              issuer: "https://token.actions.githubusercontent.com"
              roots: |-
{{FULCIO:16}}
              rekor:
                pubkey: |-
{{OTHER:18}}
              ctlog:
                pubkey: |-
{{CTLOG:18}}
`, decide: []decision{
				{image: "keyless", code: denied, want: "DENIED"},
			}},
			{name: "kyverno keyless private roots without a rekor key refused", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: half-private}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/keyless/*"]
        attestors:
        - entries:
          - keyless:
              subject: "https://github.com/acme/*"
              issuer: "https://token.actions.githubusercontent.com"
              roots: |-
{{FULCIO:16}}
`, refused: []string{"attestors[0].entries[0].keyless.rekor.pubkey: not supported", "holds one Sigstore"}},
			{name: "kyverno attestation conditions", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: reviewed}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/attest/*"]
        mutateDigest: false
        verifyDigest: false
        attestations:
        - type: https://slsa.dev/provenance/v1
          attestors:
          - entries:
            - keys:
                publicKeys: |-
{{KEY:18}}
                rekor: {ignoreTlog: true}
          conditions:
          - all:
            - key: "{{ builder.id }}"
              operator: Equals
              value: https://ci.example.org/builder
            any:
            - key: "{{ reviewers }}"
              operator: AnyIn
              value: [ana@example.com, bob@example.com]
`, contains: []string{`predicate.builder.id == "https://ci.example.org/builder"`, "match: all"}, decide: []decision{
				{image: "attested", code: ok, want: "allowed"},
				{image: "attested-bundle", code: ok, want: "allowed"},
				{image: "attested-unreviewed", code: denied, want: "is false"},
				// A signature is not an attestation.
				{image: "attest-signed-only", code: denied, want: "no statement found"},
			}},
			{name: "kyverno signature and attestation both required", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: both}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/attest/*"]
        mutateDigest: false
        verifyDigest: false
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
        attestations:
        - predicateType: https://slsa.dev/provenance/v1
          attestors:
          - entries:
            - keys:
                publicKeys: |-
{{KEY:18}}
                rekor: {ignoreTlog: true}
          conditions:
          - all:
            - key: "{{ reviewers }}"
              operator: AllNotIn
              value: [mallory@example.com]
`, decide: []decision{
				{image: "attested", code: ok, want: "allowed"},
				// Attested, but not signed.
				{image: "attested-bundle", code: denied, want: "no signature found"},
			}},
			{name: "kyverno attestation without attestors refused", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: unsigned-statements}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/attest/*"]
        attestations:
        - type: https://slsa.dev/provenance/v1
          conditions:
          - all: [{key: "{{ builder.id }}", operator: Equals, value: x}]
`, refused: []string{"spec.rules[0].verifyImages[0].attestations[0].attestors: not supported", "without checking who signed them"}},
			{name: "kyverno JMESPath function refused", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: fn}
spec:
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/attest/*"]
        attestations:
        - type: https://slsa.dev/provenance/v1
          attestors:
          - entries:
            - keys:
                publicKeys: |-
{{KEY:18}}
                rekor: {ignoreTlog: true}
          conditions:
          - any: [{key: "{{ length(reviewers) }}", operator: GreaterThan, value: 0}]
`, refused: []string{"verifyImages[0].attestations[0].conditions[0].any[0]: not supported", "write the condition in CEL by hand"}},
			{name: "kyverno attestation dropped with allow-lossy", format: "kyverno", lossy: true, source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: lossy}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - imageReferences: ["{{HOST}}/prod/*"]
        mutateDigest: false
        verifyDigest: false
        attestors:
        - entries:
          - keys:
              publicKeys: |-
{{KEY:16}}
              rekor: {ignoreTlog: true}
        attestations:
        - type: https://slsa.dev/provenance/v1
          attestors:
          - entries:
            - keys:
                publicKeys: |-
{{KEY:18}}
                rekor: {ignoreTlog: true}
          conditions:
          - all: [{key: "{{ scan.critical }}", operator: LessThan, value: 1}]
`, notes: []string{"attestation dropped"}, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "unsigned", code: denied, want: "no signature found"},
			}},
		})
	})
	// Kyverno ImageValidatingPolicy: the shapes of Kyverno's documentation
	// (website src/content/docs/docs/policy-types/image-validating-policy.mdx,
	// "Cosign Keyless Signature and Attestation Verification" and "Cosign
	// Public Key Signature Verification"), pointed at the test registry.
	t.Run("kyverno ImageValidatingPolicy", func(t *testing.T) {
		runCases(t, w, []formatCase{
			{name: "ivp keyless", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: keyless}
spec:
  validationActions: [Deny]
  webhookConfiguration: {timeoutSeconds: 15}
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ['']
        apiVersions: ['v1']
        resources: ['pods']
        operations: ['CREATE', 'UPDATE']
  matchImageReferences:
    - glob: '{{HOST}}/keyless/*'
  attestors:
    - name: cosign
      cosign:
        keyless:
          identities:
            - subjectRegExp: '^https://github\.com/acme/[^/]+/\.github/workflows/release\.yml@refs/heads/main$'
              issuer: 'https://token.actions.githubusercontent.com'
        ctlog:
          url: 'https://rekor.sigstore.dev'
  validations:
    - expression: >-
        images.containers.map(image, verifyImageSignatures(image,  [attestors.cosign])).all(e, e > 0)
      message: 'Failed image signature verification'
`, notes: []string{"they verify no initContainers"}, decide: []decision{
				{image: "keyless", code: ok, want: "allowed"},
				{image: "intruder", code: denied, want: "DENIED"},
				{image: "keyless-unsigned", code: denied, want: "no signature found"},
				// Autogen: a pods policy applies to the pod controllers.
				{image: "keyless", args: []string{"--kind", "Deployment"}, code: ok, want: "allowed"},
				{image: "elsewhere", code: denied, want: unmatched},
			}},
			{name: "ivp keyless subject compared exactly", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1beta1
kind: ImageValidatingPolicy
metadata: {name: exact}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
  matchImageReferences: [{glob: '{{HOST}}/keyless/*'}]
  attestors:
    - name: cosign
      cosign:
        keyless:
          identities:
            - subject: 'https://github.com/acme/*/.github/workflows/release.yml@refs/heads/main'
              issuer: 'https://token.actions.githubusercontent.com'
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.cosign])).all(e, e > 0)
`, notes: []string{"compares subject exactly"}, decide: []decision{
				// cosign compares subject exactly: the "*" matches no workflow.
				{image: "keyless", code: denied, want: "DENIED"},
			}},
			{name: "ivp key", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: verify-image-ivpol}
spec:
  webhookConfiguration: {timeoutSeconds: 15}
  evaluation: {background: {enabled: false}}
  validationActions: [Deny]
  matchConstraints:
    resourceRules:
      - apiGroups: ['']
        apiVersions: ['v1']
        operations: ['CREATE', 'UPDATE']
        resources: ['pods']
  matchImageReferences:
    - glob: '{{HOST}}/prod/*'
  attestors:
    - name: cosign
      cosign:
        key:
          data: |
{{KEY:12}}
        ctlog: {insecureIgnoreTlog: true}
  validations:
    - expression: >-
        images.containers.map(image, verifyImageSignatures(image, [attestors.cosign])).all(e ,e > 0)
      message: failed the image Signature verification
`, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "bundle", code: ok, want: "allowed"},
				{image: "special", code: denied, want: "DENIED"},
				{image: "unsigned", code: denied, want: "no signature found"},
			}},
			{name: "ivp two attestors verifyDigest audit", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1alpha1
kind: ImageValidatingPolicy
metadata: {name: both}
spec:
  validationActions: [Audit]
  validationConfigurations: {mutateDigest: false, verifyDigest: false}
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
  matchImageReferences: [{expression: 'ref.startsWith("{{HOST}}/prod/")'}]
  attestors:
    - name: ci
      cosign:
        key:
          data: |
{{KEY:12}}
        ctlog: {insecureIgnoreTlog: true}
    - name: other
      cosign:
        key:
          data: |
{{OTHER:12}}
        ctlog: {insecureIgnoreTlog: true}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.ci, attestors.other])).all(e, e > 0)
`, notes: []string{"[Audit]: Kyverno admits and only records"}, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "special", code: ok, want: "allowed"},
				// Audit: admitted with a warning.
				{image: "unsigned", code: ok, want: "warning"},
			}},
			{name: "ivp attestation and payload condition", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: reviewed}
spec:
  validationConfigurations: {mutateDigest: false, verifyDigest: false}
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
  matchImageReferences: [{glob: '{{HOST}}/attest/*'}]
  attestors:
    - name: ci
      cosign:
        key:
          data: |
{{KEY:12}}
        ctlog: {insecureIgnoreTlog: true}
  attestations:
    - name: slsa
      intoto: {type: https://slsa.dev/provenance/v1}
  validations:
    - expression: images.containers.map(image, verifyAttestationSignatures(image, attestations.slsa, [attestors.ci])).all(e, e > 0)
    - expression: >-
        images.containers.map(image, extractPayload(image, attestations.slsa).predicate.reviewers.exists(r, r == 'ana@example.com')).all(e, e)
`, contains: []string{`predicate.reviewers.exists(r, r == "ana@example.com")`, "match: all"}, decide: []decision{
				{image: "attested", code: ok, want: "allowed"},
				{image: "attested-bundle", code: ok, want: "allowed"},
				{image: "attested-unreviewed", code: denied, want: "is false"},
				{image: "attest-signed-only", code: denied, want: "no statement found"},
			}},
			{name: "ivp namespaced", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: NamespacedImageValidatingPolicy
metadata: {name: team-images, namespace: team}
spec:
  validationConfigurations: {mutateDigest: false}
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
  matchImageReferences: [{glob: '{{HOST}}/prod/*'}]
  attestors:
    - name: ci
      cosign:
        key:
          data: |
{{KEY:12}}
        ctlog: {insecureIgnoreTlog: true}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.ci])).all(e, e > 0)
`, contains: []string{"kind: ImagePolicy", "namespace: team", "digest: require"}, decide: []decision{
				{image: "signed", args: []string{"--namespace", "team"}, code: denied, want: "requires images by digest"},
				{image: "unsigned", args: []string{"--namespace", "team"}, code: denied, want: "DENIED"},
				{image: "signed", args: []string{"--namespace", "other"}, code: denied, want: unmatched},
			}},
			{name: "ivp keyless private sigstore", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: private-sigstore}
spec:
  validationConfigurations: {mutateDigest: false, verifyDigest: false}
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
  matchImageReferences: [{glob: '{{HOST}}/keyless/*'}]
  attestors:
    - name: private
      cosign:
        keyless:
          identities:
            - subjectRegExp: '^https://github\.com/acme/'
              issuer: https://token.actions.githubusercontent.com
          roots: |-
{{FULCIO:12}}
        ctlog:
          url: https://rekor.example.internal
          rekorPubKey: |-
{{REKOR:12}}
          ctLogPubKey: |-
{{CTLOG:12}}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.private])).all(e, e > 0)
`, contains: []string{"kind: TrustRoot", "trustRootRef: kyverno-", "baseURL: https://rekor.example.internal"}, notes: []string{"roots must include the intermediates"}, decide: []decision{
				// Verified with the converted TrustRoot, not the default one.
				{image: "keyless", args: []string{"--trusted-root", ""}, code: ok, want: "allowed"},
				{image: "intruder", args: []string{"--trusted-root", ""}, code: denied, want: "DENIED"},
			}},
			{name: "ivp object selector refused", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: labels}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
    objectSelector: {matchLabels: {verify: "true"}}
  matchImageReferences: [{glob: '{{HOST}}/prod/*'}]
  attestors:
    - name: ci
      cosign: {key: {kms: 'gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k'}}
    - name: notary
      notary: {certs: {value: x}}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.ci])).all(e, e > 0)
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.notary])).all(e, e > 0)
`, refused: []string{"spec.matchConstraints.objectSelector: not supported: signet never selects by the admitted object's own labels"}},
			{name: "ivp kms refused", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: kms}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], operations: ['CREATE', 'UPDATE']}]
  matchImageReferences: [{glob: '{{HOST}}/prod/*'}]
  attestors:
    - name: ci
      cosign: {key: {kms: 'gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k'}}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.ci])).all(e, e > 0)
`, refused: []string{"spec.attestors[0].cosign.key.kms: not supported: KMS keys"}},
		})
	})

	t.Run("tanzu", func(t *testing.T) {
		runCases(t, w, []formatCase{
			{name: "tanzu seed 001", format: "tanzu", source: `
apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    exclude:
      resources:
        namespaces: [kube-system, dev-sandbox]
    keys:
    - name: first-key
      publicKey: |
{{KEY:8}}
    images:
    - namePattern: {{HOST}}/prod/*
      keys: [{name: first-key}]
      secretRef: {name: registry-creds, namespace: image-policy-system}
`, notes: []string{"--exclude-namespace=kube-system --exclude-namespace=dev-sandbox", "--unmatched=warn", "registry-creds"},
				// The policy's secretRef became spec.pullSecrets: policy test
				// needs the Secret among its files, as serve needs it in the
				// cluster (a missing one denies what the policy selects).
				with: `
apiVersion: v1
kind: Secret
metadata: {name: registry-creds, namespace: image-policy-system}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths": {"{{HOST}}": {"username": "ci", "password": "not-checked-here"}}}'
`, decide: []decision{
					{image: "signed", code: ok, want: "allowed"},
					// "*" crosses "/": prod/special/app is governed (and signed by another key).
					{image: "special", code: denied, want: "DENIED"},
					{image: "wrong", code: denied, want: "DENIED"},
					{image: "unsigned", code: denied, want: "no signature found"},
					{image: "evil", code: denied, want: unmatched},
					{image: "elsewhere", args: []string{"--unmatched", "warn"}, code: ok, want: unmatched},
					{image: "unsigned", args: []string{"--namespace", "dev-sandbox", "--exclude-namespace", "dev-sandbox"}, code: ok, want: "excluded"},
				}},
			{name: "tanzu overlapping patterns refused", format: "tanzu", source: `
apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    keys:
    - {name: a, publicKey: "{{KEY64}}"}
    - {name: b, publicKey: "{{OTHER64}}"}
    images:
    - {namePattern: "{{HOST}}/prod/*", keys: [{name: a}]}
    - {namePattern: "{{HOST}}/prod/special/*", keys: [{name: b}]}
`, refused: []string{"spec.verification.images[1].namePattern: not supported", "Tanzu accepts either entry's keys"}},
			// Seed 001's rows naming a tag: the tag selects, the digest is
			// verified; by digest alone an image meets every tag pattern of
			// its repository; another tag is unmatched (denied).
			{name: "tanzu tag patterns", format: "tanzu", source: `
apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    keys:
    - name: a
      publicKey: |
{{KEY:8}}
    images:
    - {namePattern: "{{HOST}}/prod/app:v1", keys: [{name: a}]}
    - {namePattern: "{{HOST}}/*/unsigned:v1", keys: [{name: a}]}
    - {namePattern: "{{HOST}}/prod/wrong:v2", keys: [{name: a}]}
`, notes: []string{"selects tag \"v1\"", "deploying by digest cannot escape it"}, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "signed", ref: byDigest, code: ok, want: "allowed"},
				{image: "signed", ref: tagAndDigest("v1"), code: ok, want: "allowed"},
				{image: "unsigned", code: denied, want: "no signature found"},
				{image: "unsigned", ref: byDigest, code: denied, want: "no signature found"},
				{image: "wrong", code: denied, want: unmatched},
				{image: "wrong", ref: tagAndDigest("v1"), code: denied, want: unmatched},
				{image: "wrong", ref: byDigest, code: denied, want: "prod-wrong-v2 (enforce): failed"},
				// v2 is no tag in the registry: the digest is what is verified.
				{image: "wrong", ref: tagAndDigest("v2"), code: denied, want: "prod-wrong-v2 (enforce): failed"},
			}},
			{name: "tanzu digest pattern refused", format: "tanzu", source: `
apiVersion: signing.apps.tanzu.vmware.com/v1beta1
kind: ClusterImagePolicy
metadata: {name: image-policy}
spec:
  verification:
    keys: [{name: a, publicKey: "{{KEY64}}"}]
    images: [{namePattern: "registry.example.org/myproject/my-image@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", keys: [{name: a}]}]
`, refused: []string{"spec.verification.images[0].namePattern: not supported", "names a digest"}},
		})
	})

	t.Run("crossplane", func(t *testing.T) {
		secret := `
---
apiVersion: v1
kind: Secret
metadata: {name: %s, namespace: crossplane-system}
stringData:
  cosign.pub: |
%s
`
		runCases(t, w, []formatCase{
			{name: "crossplane key prefix", format: "crossplane", source: `
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: prod}
spec:
  matchImages: [{type: Prefix, prefix: "{{HOST}}/prod"}]
  registry: {authentication: {pullSecretRef: {name: pull}}}
  verification:
    provider: Cosign
    cosign:
      authorities:
        - name: ci
          key: {secretRef: {name: ci-key, key: cosign.pub}}
` + fmt.Sprintf(secret, "ci-key", "{{KEY:4}}"), decide: []decision{
				// Crossplane requires the transparency log: cosign signed without.
				{image: "signed", args: []string{"--kind", "Provider"}, code: denied, want: "DENIED"},
				// A raw string prefix: prod-evil is governed too.
				{image: "evil", args: []string{"--kind", "Provider"}, code: denied, want: "DENIED"},
				{image: "elsewhere", args: []string{"--kind", "Provider", "--unmatched", "allow"}, code: ok, want: "allowed"},
				// Only packages are governed.
				{image: "unsigned", args: []string{"--kind", "Pod", "--unmatched", "allow"}, code: ok, want: "allowed"},
			}},
			{name: "crossplane seed 000 keyless", format: "crossplane", source: `
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: verify-images}
spec:
  matchImages: [{prefix: "{{HOST}}/keyless/"}]
  verification:
    provider: Cosign
    cosign:
      authorities:
        - name: Verify Images
          keyless:
            identities:
              - issuer: https://token.actions.githubusercontent.com
                subject: ` + sigstoretest.ReleaseWorkflow + `
`, decide: []decision{
				{image: "keyless", args: []string{"--kind", "Configuration"}, code: ok, want: "allowed"},
				{image: "intruder", args: []string{"--kind", "Function"}, code: denied, want: "DENIED"},
				{image: "keyless-unsigned", args: []string{"--kind", "Provider"}, code: denied, want: "no signature found"},
			}},
			{name: "crossplane longest prefix", format: "crossplane", source: `
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: keyless}
spec:
  matchImages: [{prefix: "{{HOST}}/keyless/"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: a, keyless: {identities: [{issuer: ` + sigstoretest.GitHubIssuer + `, subject: "` + sigstoretest.ReleaseWorkflow + `"}]}}]}}
---
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: other}
spec:
  matchImages: [{prefix: "{{HOST}}/keyless/other"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: b, keyless: {identities: [{issuer: ` + sigstoretest.GitHubIssuer + `, subject: "https://github.com/mallory/app/.github/workflows/release.yml@refs/heads/main"}]}}]}}
`, contains: []string{"excludeImages:\n  - glob: {{HOST}}/keyless/other*\n  - glob: {{HOST}}/keyless/other*/**"}, decide: []decision{
				{image: "keyless", args: []string{"--kind", "Provider"}, code: ok, want: "allowed"},
				// The longer prefix alone decides: mallory's signature passes.
				{image: "intruder", args: []string{"--kind", "Provider"}, code: ok, want: "allowed"},
				{image: "keyless-unsigned", args: []string{"--kind", "Provider"}, code: denied, want: "no signature found"},
			}},
			{name: "crossplane longest prefix taken back refused", format: "crossplane", source: `
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: prod}
spec:
  matchImages: [{prefix: "{{HOST}}/prod/"}, {prefix: "{{HOST}}/prod/special/x"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: a, keyless: {identities: [{issuer: i, subject: s}]}}]}}
---
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: special}
spec:
  matchImages: [{prefix: "{{HOST}}/prod/special/"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: b, keyless: {identities: [{issuer: i, subject: t}]}}]}}
`, refused: []string{"the longer prefix wins in Crossplane", "cannot exclude a prefix and take a longer one back"}},
			{name: "crossplane secret key not given", format: "crossplane", source: `
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: prod}
spec:
  matchImages: [{prefix: "{{HOST}}/prod/"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: ci, key: {secretRef: {name: ci-key, key: cosign.pub}}}]}}
`, notes: []string{"Secret ci-key is not among the files given"}, contains: []string{"secretRef:\n        key: cosign.pub\n        name: ci-key"}},
			{name: "crossplane longest prefix same authorities", format: "crossplane", source: `
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: prod}
spec:
  matchImages: [{prefix: "{{HOST}}/prod/"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: a, keyless: {identities: [{issuer: ` + sigstoretest.GitHubIssuer + `, subject: "` + sigstoretest.ReleaseWorkflow + `"}]}}]}}
---
apiVersion: pkg.crossplane.io/v1beta1
kind: ImageConfig
metadata: {name: keyless}
spec:
  matchImages: [{prefix: "{{HOST}}/keyless/"}]
  verification: {provider: Cosign, cosign: {authorities: [{name: a, keyless: {identities: [{issuer: ` + sigstoretest.GitHubIssuer + `, subject: "` + sigstoretest.ReleaseWorkflow + `"}]}}]}}
`, decide: []decision{
				{image: "keyless", args: []string{"--kind", "Provider"}, code: ok, want: "allowed"},
			}},
		})
	})

	t.Run("policy.json", func(t *testing.T) {
		// Seed 003's own policy and its two edits: a changed subjectEmail,
		// and the scope renamed to the unsigned repository.
		crioSigned, crioUnsigned := "{{HOST}}/crio/signed", "{{HOST}}/crio/unsigned"
		certIdentity := "certificate identity (issuer " + crioIssuer + ", subject " + crioEmail + ")"
		chain := "{{FULCIOCHAIN64}}"
		runCases(t, w, []formatCase{
			{name: "policyjson seed 003 fulcio", format: "policy.json", source: seed003Policy(crioSigned, crioEmail, chain),
				notes: []string{"default: reject: becomes a policy denying every image", "insecureIgnoreSCT"}, decide: []decision{
					{image: "crio-signed", code: ok, want: "allowed"},
					// Outside the scope, the default decides: rejected.
					{image: "crio-unsigned", code: denied, want: "rejected by policy"},
					{image: "keyless", code: denied, want: "rejected by policy"},
				}},
			{name: "policyjson seed 003 changed subjectEmail", format: "policy.json", source: seed003Policy(crioSigned, crioOtherEmail, chain), decide: []decision{
				// CRI-O: "Required email <policy's> not found (got <certificate's>)".
				{image: "crio-signed", code: denied, want: certIdentity + " does not match identities [issuer " + crioIssuer + ", subject " + crioOtherEmail + "]"},
			}},
			// Gap: containers/image takes the intermediates from each
			// signature's chain annotation, signet only from the trust root.
			// With the root alone in caData, signet denies what CRI-O admits.
			{name: "policyjson seed 003 fulcio root alone", format: "policy.json", source: seed003Policy(crioSigned, crioEmail, "{{FULCIOROOT64}}"),
				notes: []string{"intermediate"}, decide: []decision{
					{image: "crio-signed", code: denied, want: "leaf certificate verification failed"},
				}},
			{name: "policyjson seed 003 unsigned image", format: "policy.json", source: seed003Policy(crioUnsigned, crioEmail, chain), decide: []decision{
				{image: "crio-unsigned", code: denied, want: "no signature found"},
				{image: "crio-signed", code: denied, want: "rejected by policy"},
			}},
			{name: "policyjson seed 003 keys", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {
      "{{HOST}}/prod": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}", "signedIdentity": {"type": "matchRepository"}}],
      "{{HOST}}/elsewhere": [{"type": "insecureAcceptAnything"}]
    },
    "docker-daemon": {"": [{"type": "insecureAcceptAnything"}]}
  }
}`, notes: []string{"default: reject: becomes a policy denying every image", "not converted"}, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				// containers/image reads no bundles, and a bundle names no image:
				// denied in both.
				{image: "bundle", code: denied, want: "signature names no image"},
				{image: "wrong", code: denied, want: "DENIED"},
				{image: "unsigned", code: denied, want: "no signature found"},
				// A scope is a namespace: prod/special is governed, prod-evil is not.
				{image: "special", code: denied, want: "DENIED"},
				// The default decides alone: rejected, whatever --unmatched says.
				{image: "evil", code: denied, want: "rejected by policy"},
				{image: "evil", args: []string{"--unmatched", "allow"}, code: denied, want: "rejected by policy"},
				{image: "elsewhere", code: ok, want: "allowed"},
			}},
			// A repo:tag scope replaces the requirements of the scopes
			// containing it for that tag; signet lifts none by tag.
			{name: "policyjson tag scope refused", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {
    "{{HOST}}/prod/app": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}"}],
    "{{HOST}}/prod/app:debug": [{"type": "insecureAcceptAnything"}]
  }}
}`, refused: []string{"names a tag or digest", "signet lifts none by tag or digest"}},
			{name: "policyjson most specific reject under accept", format: "policy.json", source: `{
  "default": [{"type": "insecureAcceptAnything"}],
  "transports": {"docker": {
    "{{HOST}}/prod/special": [{"type": "reject"}],
    "{{HOST}}": [{"type": "insecureAcceptAnything"}]
  }}
}`, notes: []string{"default: insecureAcceptAnything: becomes a policy admitting every image"}, decide: []decision{
				{image: "special", code: denied, want: "rejected by policy"},
				// The default decides alone: admitted, whatever --unmatched says.
				{image: "unsigned", code: ok, want: "allowed"},
				{image: "unsigned", args: []string{"--unmatched", "allow"}, code: ok, want: "allowed"},
				{image: "evil", code: ok, want: "allowed"},
			}},
			{name: "policyjson nested reject falls to reject", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {
    "{{HOST}}/prod": [{"type": "reject"}],
    "{{HOST}}/prod/special": [{"type": "sigstoreSigned", "keyData": "{{OTHER64}}", "signedIdentity": {"type": "matchRepository"}}]
  }}
}`, decide: []decision{
				{image: "special", code: ok, want: "allowed"},
				{image: "signed", code: denied, want: "rejected by policy"},
				{image: "evil", code: denied, want: "rejected by policy"},
			}},
			{name: "policyjson most specific wins", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {
    "{{HOST}}/prod": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}", "signedIdentity": {"type": "matchRepository"}}],
    "{{HOST}}/prod/special": [{"type": "sigstoreSigned", "keyData": "{{OTHER64}}", "signedIdentity": {"type": "matchRepository"}}]
  }}
}`, contains: []string{"excludeImages:\n  - glob: {{HOST}}/prod/special/**"}, decide: []decision{
				// Only the most specific scope applies: the other key alone.
				{image: "special", code: ok, want: "allowed"},
				{image: "signed", code: ok, want: "allowed"},
				{image: "wrong", code: denied, want: "DENIED"},
				{image: "unsigned", code: denied, want: "no signature found"},
			}},
			{name: "policyjson most specific accept and reject under verify", format: "policy.json", source: `{
  "default": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}", "signedIdentity": {"type": "matchRepository"}}],
  "transports": {"docker": {
    "{{HOST}}/prod/special": [{"type": "insecureAcceptAnything"}, {"type": "insecureAcceptAnything"}],
    "{{HOST}}/prod/unsigned": [{"type": "reject"}],
    "{{HOST}}/prod/unsigned/deeper": [{"type": "insecureAcceptAnything"}]
  }}
}`, decide: []decision{
				{image: "signed", code: ok, want: "allowed"},
				{image: "special", code: ok, want: "allowed"},
				{image: "unsigned", code: denied, want: "rejected by policy"},
				{image: "elsewhere", code: denied, want: "no signature found"},
			}},
			{name: "policyjson default signedIdentity", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {"{{HOST}}/prod": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}"}]}}
}`, contains: []string{"signedIdentity: matchRepoDigestOrExact"}, decide: []decision{
				// cosign signs the repository only: the default refuses it, as containers/image does.
				{image: "signed", code: denied, want: "names only the repository"},
			}},
			{name: "policyjson rekor key", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {"{{HOST}}/prod": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}", "rekorPublicKeyData": "{{OTHER64}}", "signedIdentity": {"type": "matchRepository"}}]}}
}`, contains: []string{"kind: TrustRoot", "transparencyLogs:\n    - publicKey: |\n        -----BEGIN PUBLIC KEY-----", "trustRootRef: policy-json-rekor"}},
			{name: "policyjson fulcio", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {"{{HOST}}/prod": [{"type": "sigstoreSigned", "fulcio": {"caData": "{{CA64}}", "oidcIssuer": "https://accounts.example.com", "subjectEmail": "release@example.com"}, "rekorPublicKeyData": "{{OTHER64}}", "signedIdentity": {"type": "matchRepository"}}]}}
}`, notes: []string{"does not check the certificate's SCT"}, contains: []string{"certificateAuthorities:\n    - certChain: |\n        -----BEGIN CERTIFICATE-----", "insecureIgnoreSCT: true", "issuer: https://accounts.example.com\n        subject: release@example.com\n      trustRootRef: policy-json-fulcio"}},
			{name: "policyjson signedIdentity matchExact", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {"{{HOST}}/prod": [{"type": "sigstoreSigned", "keyData": "{{KEY64}}", "signedIdentity": {"type": "matchExact"}}]}}
}`, decide: []decision{
				// cosign signs the repository only: matchExact refuses it, as containers/image does.
				{image: "signed", code: denied, want: "DENIED"},
			}},
			{name: "policyjson fulcio path and pki path refused", format: "policy.json", source: `{
  "default": [{"type": "sigstoreSigned", "pki": {"caRootsPath": "/etc/ca.pem", "subjectEmail": "a@b"}}],
  "transports": {"docker": {"{{HOST}}/prod": [{"type": "sigstoreSigned", "fulcio": {"caPath": "/etc/ca.pem", "oidcIssuer": "i", "subjectEmail": "e"}, "rekorPublicKeyData": "{{OTHER64}}", "signedIdentity": {"type": "matchRepository"}}]}}
}`, refused: []string{"default[0].pki.caRootsPath: not supported", ".fulcio.caPath: not supported"}},
			// containers-image checks the chain with the policy's and the
			// signature's intermediates; signet with the policy's only.
			{name: "policyjson pki", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {
    "{{HOST}}/pki": [{"type": "sigstoreSigned", "pki": {"caRootsData": "{{PKIROOT64}}", "caIntermediatesData": "{{PKIINTER64}}", "subjectEmail": "release@example.com"}, "signedIdentity": {"type": "matchRepository"}}],
    "{{HOST}}/prod": [{"type": "sigstoreSigned", "pki": {"caRootsData": "{{PKIROOT64}}", "caIntermediatesData": "{{PKIINTER64}}", "subjectEmail": "release@example.com"}, "signedIdentity": {"type": "matchRepository"}}]
  }}
}`, notes: []string{"checks the certificate chain at the current time"}, contains: []string{"insecureIgnoreTlog: true", "email: release@example.com"}, decide: []decision{
				{image: "pki", code: ok, want: "allowed"},
				// Signed by the same key, without a certificate.
				{image: "signed", code: denied, want: "DENIED"},
			}},
			{name: "policyjson pki another email", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {"{{HOST}}/pki": [{"type": "sigstoreSigned", "pki": {"caRootsData": "{{PKIROOT64}}", "caIntermediatesData": "{{PKIINTER64}}", "subjectEmail": "intruder@example.com"}, "signedIdentity": {"type": "matchRepository"}}]}}
}`, decide: []decision{{image: "pki", code: denied, want: "does not match"}}},
			{name: "policyjson pki without the intermediate", format: "policy.json", source: `{
  "default": [{"type": "reject"}],
  "transports": {"docker": {"{{HOST}}/pki": [{"type": "sigstoreSigned", "pki": {"caRootsData": "{{PKIROOT64}}", "subjectEmail": "release@example.com"}, "signedIdentity": {"type": "matchRepository"}}]}}
}`, notes: []string{"no caIntermediatesData"}, decide: []decision{{image: "pki", code: denied, want: "unknown authority"}}},
			{name: "policyjson invalid", format: "policy.json", source: `{"default": [{"type": "reject"}], "transports": {"docker": {"x.io": [{"type": "reject", "extra": 1}]}}}`,
				refused: []string{"invalid"}},
		})
	})
	t.Run("notary", func(t *testing.T) { runCases(t, w, notaryCases) })
}

// notaryCases convert Kyverno's Notary attestors and Notation trust
// policies and decide images signed by notation-go.
var notaryCases = []formatCase{
	// Kyverno trusts any identity the CA certifies ("*"), strict, no TSA.
	{name: "kyverno notary", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: notary}
spec:
  validationFailureAction: Enforce
  rules:
    - name: notary
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
      - type: Notary
        imageReferences: ["{{HOST}}/notary/*"]
        attestors:
        - entries:
          - certificates:
              cert: |-
{{NOTARYROOT:16}}
`, contains: []string{"trustedIdentities:\n      - '*'"}, decide: []decision{
		{image: "notary-jws", code: ok, want: "allowed"},
		{image: "notary-cose", code: ok, want: "allowed"},
		{image: "notary-timestamped", code: ok, want: "allowed"},
		{image: "notary-intruder", code: ok, want: "allowed"},
		{image: "notary-stranger", code: denied, want: "authenticity"},
		{image: "notary-unsigned", code: denied, want: "DENIED"},
	}},
	{name: "kyverno notary attestations refused", format: "kyverno", source: `
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: notary}
spec:
  validationFailureAction: Enforce
  rules:
    - name: notary
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - type: Notary
          imageReferences: ["{{HOST}}/notary/*"]
          attestations:
            - type: sbom/cyclone-dx
              attestors: [{entries: [{certificates: {cert: x}}]}]
`, refused: []string{"spec.rules[0].verifyImages[0].attestations: not supported: Notary attestations"}},
	// With tsaCerts Kyverno requires a trusted timestamp.
	{name: "ivp notary", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: notary}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  matchImageReferences: [{glob: "{{HOST}}/notary/*"}]
  attestors:
    - name: notary
      notary:
        certs:
          value: |-
{{NOTARYROOT:12}}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.notary])).all(e, e > 0)
`, decide: []decision{
		{image: "notary-jws", code: ok, want: "allowed"},
		{image: "notary-cose", code: ok, want: "allowed"},
		{image: "notary-intruder", code: ok, want: "allowed"},
		{image: "notary-stranger", code: denied, want: "authenticity"},
		{image: "notary-unsigned", code: denied, want: "DENIED"},
	}},
	{name: "ivp notary tsa", format: "kyverno", source: `
apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: notary}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  matchImageReferences: [{glob: "{{HOST}}/notary/*"}]
  attestors:
    - name: notary
      notary:
        certs:
          value: |-
{{NOTARYROOT:12}}
        tsaCerts:
          value: |-
{{NOTARYTSA:12}}
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.notary])).all(e, e > 0)
`, decide: []decision{
		{image: "notary-timestamped", code: ok, want: "allowed"},
		{image: "notary-jws", code: denied, want: "timestamp"},
	}},
	// Each statement governs its scopes; "*" the rest (skip: no check).
	{name: "notation trust policy", format: "notation", source: `{
  "version": "1.0",
  "trustPolicies": [
    {
      "name": "release",
      "registryScopes": ["{{HOST}}/notary/jws", "{{HOST}}/notary/cose", "{{HOST}}/notary/intruder", "{{HOST}}/notary/stranger", "{{HOST}}/notary/unsigned"],
      "signatureVerification": {"level": "strict", "override": {"revocation": "log"}},
      "trustStores": ["ca:release", "ca:other"],
      "trustedIdentities": ["{{NOTARYID}}"]
    },
    {"name": "timestamped", "registryScopes": ["{{HOST}}/notary/timestamped"], "signatureVerification": {"level": "strict"},
     "trustStores": ["ca:release", "tsa:clock"], "trustedIdentities": ["*"]},
    {"name": "everything else", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}
  ]
}`, trustStore: map[string]string{
		"x509/ca/release/root.crt":    "{{NOTARYROOT:0}}",
		"x509/ca/other/unrelated.pem": "{{CA:0}}",
		"x509/tsa/clock/tsa.crt":      "{{NOTARYTSA:0}}",
	}, notes: []string{"skip: notation verifies no signature", "revocation: log"}, decide: []decision{
		{image: "notary-jws", code: ok, want: "allowed"},
		{image: "notary-cose", code: ok, want: "allowed"},
		{image: "notary-intruder", code: denied, want: "identit"},
		{image: "notary-stranger", code: denied, want: "authenticity"},
		{image: "notary-unsigned", code: denied, want: "DENIED"},
		{image: "notary-timestamped", code: ok, want: "allowed"},
		{image: "unsigned", code: ok, want: "allowed"},
	}},
	// The trust store's files as arguments; a statement naming a store not
	// given is refused.
	{name: "notation store files", format: "notation", storeArgs: true, source: `{
  "version": "1.0",
  "trustPolicies": [{"name": "release", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:release"], "trustedIdentities": ["*"]}]
}`, trustStore: map[string]string{"x509/ca/release/root.pem": "{{NOTARYROOT:0}}"}, decide: []decision{
		{image: "notary-jws", code: ok, want: "allowed"},
		{image: "notary-intruder", code: ok, want: "allowed"},
		{image: "notary-stranger", code: denied, want: "authenticity"},
		{image: "unsigned", code: denied, want: "DENIED"},
	}},
	{name: "notation store missing", format: "notation", source: `{
  "version": "1.0",
  "trustPolicies": [{"name": "release", "registryScopes": ["*"], "signatureVerification": {"level": "strict"},
    "trustStores": ["ca:release", "ca:elsewhere"], "trustedIdentities": ["*"]}]
}`, trustStore: map[string]string{"x509/ca/release/root.pem": "{{NOTARYROOT:0}}"},
		refused: []string{"trustPolicies[0].trustStores[1]: invalid: trust store ca:elsewhere is not given"}},
}
