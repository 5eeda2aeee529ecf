package crio

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// seed003Policy is seed 003's policy.json (CRI-O's signature policy guide)
// as written, with the scope (quay.io/crio/signed there), the required
// email, the Fulcio CA (caData, PEM) and the Rekor key (PEM) substituted.
func seed003Policy(scope, subjectEmail, caData, rekorKey string) []byte {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	return []byte(strings.NewReplacer("{{SCOPE}}", scope, "{{EMAIL}}", subjectEmail, "{{CA}}", b64(caData), "{{REKOR}}", b64(rekorKey), "{{ISSUER}}", issuer).Replace(`{
  "default": [{ "type": "reject" }],
  "transports": {
    "docker": {
      "{{SCOPE}}": [
        {
          "type": "sigstoreSigned",
          "signedIdentity": { "type": "matchRepository" },
          "fulcio": {
            "oidcIssuer": "{{ISSUER}}",
            "subjectEmail": "{{EMAIL}}",
            "caData": "{{CA}}"
          },
          "rekorPublicKeyData": "{{REKOR}}"
        }
      ]
    }
  }
}`))
}

// TestSeed003PolicyDecidesAsCRIO decides seed 003's own policy, its
// "changed subjectEmail" edit and its "unsigned image" edit three ways on
// the same keyless-signed and unsigned images: the seed's policy.json by
// containers-image directly (what CRI-O does), `signet policy test` on
// what `signet policy convert` makes of it, and containers-image on what
// `signet policy export` makes of the converted policies. All three agree.
func TestSeed003PolicyDecidesAsCRIO(t *testing.T) {
	reg := harness.StartRegistry(t)
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
	certPEM := func(c *x509.Certificate) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	chain := certPEM(s.Chain()[0]) + certPEM(s.Chain()[1])
	rootAlone := certPEM(s.Chain()[1])
	var rekorKey string
	for _, l := range s.TrustedRoot().RekorLogs() {
		der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		rekorKey = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}

	// quay.io/crio/signed, signed keylessly by the seed's identity as
	// cosign does (a legacy .sig: a simple-signing payload naming the
	// repository), and quay.io/crio/unsigned.
	signed := reg.PushRandomImage(t, "crio/signed", "latest")
	{
		name, _, _ := strings.Cut(signed.Ref, "@")
		payload := sigstoretest.SimpleSigning(name, signed.Digest)
		reg.AttachLegacy(t, signed, ".sig", sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, sigstoretest.SignOptions{Identity: email, Issuer: issuer}))
	}
	unsigned := reg.PushRandomImage(t, "crio/unsigned", "latest")
	elsewhere := reg.PushRandomImage(t, "elsewhere/app", "latest")
	// CRI-O reads sigstore signatures only where registries.d says so.
	registriesDir := filepath.Join(dir, "registries.d")
	if err := os.MkdirAll(registriesDir, 0o700); err != nil {
		t.Fatal(err)
	}
	write("registries.d/crio.yaml", []byte("docker:\n  "+reg.Host+":\n    use-sigstore-attachments: true\n"))

	const otherEmail = "someone-else@acme.example"
	rejected := "is rejected by policy"
	type want struct {
		img     registrytest.Image
		allowed bool
		crio    string // in containers-image's error deciding the seed's policy
	}
	for _, tc := range []struct {
		name   string
		policy []byte
		want   []want
		// differs: containers-image admits, on the seed's policy.json and on
		// the export; signet denies.
		differs []registrytest.Image
	}{
		{name: "seed policy", policy: seed003Policy(reg.Host+"/crio/signed", email, chain, rekorKey), want: []want{
			{img: signed, allowed: true},
			{img: unsigned, crio: rejected},
			{img: elsewhere, crio: rejected},
		}},
		{name: "changed subjectEmail", policy: seed003Policy(reg.Host+"/crio/signed", otherEmail, chain, rekorKey), want: []want{
			// The guide quotes an older containers-image: Required email
			// [email protected] not found (got []string{"..."}).
			{img: signed, crio: `Required email "` + otherEmail + `" not found (got ["` + email + `"])`},
		}},
		{name: "scope renamed to the unsigned image", policy: seed003Policy(reg.Host+"/crio/unsigned", email, chain, rekorKey), want: []want{
			{img: unsigned, crio: "A signature was required, but no signature exists"},
			{img: signed, crio: rejected},
		}},
		// Gap: containers-image takes intermediates from the signature's
		// chain annotation; signet trusts only the chain caData holds, so
		// it denies what containers-image admits, from the seed's policy
		// and from the export alike (the export's caData is the root too).
		{name: "caData the root alone", policy: seed003Policy(reg.Host+"/crio/signed", email, rootAlone, rekorKey), want: []want{
			{img: unsigned, crio: rejected},
		}, differs: []registrytest.Image{signed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			source := write(strings.ReplaceAll(tc.name, " ", "-")+".json", tc.policy)
			policies := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", convertPolicyJSON(t, source))
			args := []string{"--policy", policies}
			exported, exportedRegs := export(t, args, "default")
			for _, w := range tc.want {
				for _, ref := range []string{w.img.Tag, w.img.Ref} {
					got, err := runtime(t, tc.policy, registriesDir, ref)
					if got != w.allowed || (w.crio != "" && (err == nil || !strings.Contains(err.Error(), w.crio))) {
						t.Errorf("%s: containers-image on the seed's policy: allowed=%v (%v), want allowed=%v saying %q", ref, got, err, w.allowed, w.crio)
					}
					if allowed, report := signet(t, args, ref, "default"); allowed != w.allowed {
						t.Errorf("%s: signet on the converted policies: allowed=%v, want %v\n%s", ref, allowed, w.allowed, report)
					}
					if got, err := runtime(t, exported, exportedRegs, ref); got != w.allowed {
						t.Errorf("%s: containers-image on the export: allowed=%v (%v), want %v\npolicy.json:\n%s", ref, got, err, w.allowed, exported)
					}
				}
			}
			for _, i := range tc.differs {
				if got, err := runtime(t, tc.policy, registriesDir, i.Ref); !got {
					t.Errorf("%s: containers-image denied it on the seed's policy: %v", i.Ref, err)
				}
				if allowed, report := signet(t, args, i.Ref, "default"); allowed || !strings.Contains(report, "leaf certificate verification failed") {
					t.Errorf("%s: signet allowed=%v, want denied as the leaf does not chain to caData:\n%s", i.Ref, allowed, report)
				}
				if got, err := runtime(t, exported, exportedRegs, i.Ref); !got {
					t.Errorf("%s: containers-image denied it on the export: %v", i.Ref, err)
				}
			}
		})
	}
}

// convertPolicyJSON runs `signet policy convert --from policy.json` on file.
func convertPolicyJSON(t *testing.T, file string) []byte {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Execute(context.Background(), []string{"policy", "convert", "--from", "policy.json", file}, &out, &errOut); code != 0 {
		t.Fatalf("signet policy convert --from policy.json %s: exit %d\n%s%s", file, code, out.String(), errOut.String())
	}
	return out.Bytes()
}
