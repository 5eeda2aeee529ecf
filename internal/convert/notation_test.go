package convert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/test/pkitest"
)

// TestNotationRefusals: what a Notation trust policy or Kyverno Notary
// attestor sets that signet cannot express is refused naming the field, and
// what converts with a caveat carries a note.
func TestNotationRefusals(t *testing.T) {
	root := pkitest.NewRoot(t, "Root CA")
	tsa := pkitest.NewRoot(t, "TSA Root")
	leaf := selfSignedLeaf(t)
	statement := func(sv, stores string) string {
		return `{"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["ghcr.io/acme/app"],
  "signatureVerification": ` + sv + `, "trustStores": [` + stores + `], "trustedIdentities": ["*"]}]}`
	}
	for _, tc := range []struct {
		name, format, source string
		store                map[string]string // trust store files (notation)
		refused, notes       []string
		lossy                bool
	}{
		{name: "afterCertExpiry with a TSA", format: "notation", source: statement(`{"level": "strict", "verifyTimestamp": "afterCertExpiry"}`, `"ca:r", "tsa:t"`),
			refused: []string{"trustPolicies[0].signatureVerification.verifyTimestamp: not supported: afterCertExpiry"}},
		{name: "afterCertExpiry lossy", format: "notation", lossy: true, source: statement(`{"level": "strict", "verifyTimestamp": "afterCertExpiry"}`, `"ca:r", "tsa:t"`),
			notes: []string{"--allow-lossy: timestamps are verified always"}},
		{name: "afterCertExpiry without a TSA", format: "notation", source: statement(`{"level": "strict", "verifyTimestamp": "afterCertExpiry"}`, `"ca:r"`),
			notes: []string{"afterCertExpiry changes nothing without a tsa store"}},
		{name: "afterCertExpiry permissive", format: "notation", source: statement(`{"level": "permissive", "verifyTimestamp": "afterCertExpiry"}`, `"ca:r", "tsa:t"`),
			notes: []string{"afterCertExpiry changes no decision at this level"}},
		{name: "expiry override", format: "notation", source: statement(`{"level": "strict", "override": {"expiry": "log"}}`, `"ca:r"`),
			refused: []string{"trustPolicies[0].signatureVerification.override.expiry: not supported: expiry: log with the strict level"}},
		{name: "overrides that make another level", format: "notation", source: statement(`{"level": "strict", "override": {"expiry": "log", "authenticTimestamp": "log", "revocation": "skip"}}`, `"ca:r"`),
			notes: []string{"converted to verificationLevel permissive"}},
		{name: "skip level", format: "notation", source: `{"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["*"], "signatureVerification": {"level": "skip"}}]}`,
			notes: []string{"skip: notation verifies no signature of these images; converted to a static pass authority"}},
		{name: "Docker Hub official image scope", format: "notation", source: `{"version": "1.0", "trustPolicies": [{"name": "p", "registryScopes": ["docker.io/nginx"],
  "signatureVerification": {"level": "strict"}, "trustStores": ["ca:r"], "trustedIdentities": ["*"]}]}`,
			refused: []string{"trustPolicies[0].registryScopes[0]: not supported: \"docker.io/nginx\"", "write the scope docker.io/library/nginx"}},
		// A self-signed signing certificate in the store is trusted as it is.
		{name: "signing certificate in the store", format: "notation", source: statement(`{"level": "strict"}`, `"ca:leaf"`)},
		{name: "store not given", format: "notation", source: statement(`{"level": "strict"}`, `"signingAuthority:aws"`),
			refused: []string{"trustPolicies[0].trustStores[0]: invalid: trust store signingAuthority:aws is not given"}},
		{name: "not a root in a tsa store", format: "notation", source: statement(`{"level": "strict"}`, `"ca:r"`),
			store:   map[string]string{"x509/tsa/bad/inter.pem": root.Intermediate(t, "Intermediate").PEM()},
			refused: []string{"trust store tsa:bad: certificate CN=Intermediate,O=Example Corp is not a root CA certificate"}},
		{name: "invalid trust policy", format: "notation", source: `{"version": "2.0", "trustPolicies": []}`,
			refused: []string{"invalid: notation rejects it: trust policy document uses unsupported version \"2.0\""}},
		{name: "kyverno notary keys", format: "kyverno", source: kyNotary(`keys: {publicKeys: x}`),
			refused: []string{"entries[0]: invalid: keys and keyless are not allowed for type Notary"}},
		{name: "kyverno notary leaf", format: "kyverno", source: kyNotary("certificates:\n                  cert: |-\n" + indentLines(pkitest.PEM(leaf), 20))},
		{name: "kyverno notary repository", format: "kyverno", source: kyNotary("repository: ghcr.io/sigs\n                certificates:\n                  cert: |-\n" + indentLines(root.PEM(), 20)),
			notes: []string{"entries[0].repository: Kyverno's Notary verifier does not use it"}},
		{name: "ivp notary expression", format: "kyverno", source: ivNotaryPolicy(`{certs: {expression: "x"}}`),
			refused: []string{"spec.attestors[0].notary.certs.expression: not supported: certificates computed by CEL"}},
		{name: "ivp notary without certs", format: "kyverno", source: ivNotaryPolicy(`{}`),
			refused: []string{"spec.attestors[0].notary.certs: invalid: no certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "source")
			if err := os.WriteFile(src, []byte(tc.source), 0o600); err != nil {
				t.Fatal(err)
			}
			opts := Options{AllowLossy: tc.lossy}
			if tc.format == "notation" {
				opts.NotationTrustStore = filepath.Join(dir, "truststore")
				files := map[string]string{"x509/ca/r/root.crt": root.PEM(), "x509/tsa/t/tsa.crt": tsa.PEM(), "x509/ca/leaf/leaf.pem": pkitest.PEM(leaf)}
				for name, content := range tc.store {
					files[name] = content
				}
				for name, content := range files {
					path := filepath.Join(opts.NotationTrustStore, filepath.FromSlash(name))
					if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			res, err := Convert(t.Context(), tc.format, []string{src}, opts)
			if len(tc.refused) > 0 {
				var refused *RefusedError
				if !errors.As(err, &refused) {
					t.Fatalf("converted, want refused (err %v)", err)
				}
				for _, want := range tc.refused {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("refusal does not say %q:\n%v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var notes []string
			for _, n := range res.Notes {
				notes = append(notes, n.String())
			}
			for _, want := range tc.notes {
				if !strings.Contains(strings.Join(notes, "\n"), want) {
					t.Errorf("no note says %q:\n%s", want, strings.Join(notes, "\n"))
				}
			}
		})
	}
}

func kyNotary(entry string) string {
	return `apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: notary}
spec:
  validationFailureAction: Enforce
  rules:
    - name: r
      match: {any: [{resources: {kinds: [Pod]}}]}
      verifyImages:
        - type: Notary
          imageReferences: ["ghcr.io/acme/*"]
          attestors:
            - entries:
              - ` + entry + "\n"
}

func ivNotaryPolicy(notary string) string {
	return `apiVersion: policies.kyverno.io/v1
kind: ImageValidatingPolicy
metadata: {name: notary}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [pods]}]
  matchImageReferences: [{glob: "ghcr.io/acme/*"}]
  attestors: [{name: notary, notary: ` + notary + `}]
  validations:
    - expression: images.containers.map(image, verifyImageSignatures(image, [attestors.notary])).all(e, e > 0)
`
}

func indentLines(s string, n int) string {
	pad := strings.Repeat(" ", n)
	return pad + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n"+pad)
}

// selfSignedLeaf is a self-signed code-signing certificate that is not a
// CA: notation and Kyverno trust one placed in a trust store.
func selfSignedLeaf(t *testing.T) *x509.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
