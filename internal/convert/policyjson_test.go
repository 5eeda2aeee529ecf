package convert

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/pkitest"
)

// TestPolicyJSONPKI: a sigstoreSigned pki requirement becomes a certificate
// authority (roots, intermediates, one identity with email and hostname,
// no transparency log); what containers-image refuses is invalid with its
// words, and what signet cannot read (files on the node, certificates a
// certificate authority cannot hold) is refused naming the field.
func TestPolicyJSONPKI(t *testing.T) {
	ca := pkitest.NewRoot(t, "Example Root CA")
	inter := ca.Intermediate(t, "Example Code Signing CA")
	leaf := inter.Issue(t, inter.Cert.PublicKey, pkitest.Leaf{CommonName: "release", Emails: []string{"release@example.com"}})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	roots, intermediates := b64(ca.PEM()), b64(inter.PEM())
	convertPKI := func(t *testing.T, requirement string, lossy bool) (*Result, error) {
		t.Helper()
		src := `{"default": [{"type": "reject"}], "transports": {"docker": {"reg.example.org/app": [{"type": "sigstoreSigned", ` + requirement + `, "signedIdentity": {"type": "matchRepository"}}]}}}`
		file := filepath.Join(t.TempDir(), "policy.json")
		if err := os.WriteFile(file, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return Convert(t.Context(), "policy.json", []string{file}, Options{AllowLossy: lossy})
	}
	authority := func(t *testing.T, res *Result) v1alpha1.Authority {
		t.Helper()
		for _, o := range res.Objects {
			if p, ok := o.Policy.(*v1alpha1.ClusterImagePolicy); ok && p.Spec.Images[0].Glob == "reg.example.org/app/**" {
				return p.Spec.Authorities[0]
			}
		}
		t.Fatalf("no policy for reg.example.org/app in %+v", res.Objects)
		return v1alpha1.Authority{}
	}
	hasNote := func(res *Result, path, text string) bool {
		return slices.ContainsFunc(res.Notes, func(n Note) bool { return strings.HasSuffix(n.Path, path) && strings.Contains(n.Text, text) })
	}

	t.Run("converts", func(t *testing.T) {
		for _, tc := range []struct {
			name, pki string
			want      *v1alpha1.CertificateAuthority
			note      string // the note on intermediates: "path: text"
		}{{
			name: "roots, intermediates, email and hostname: one identity with both",
			pki:  `{"caRootsData": "` + roots + `", "caIntermediatesData": "` + intermediates + `", "subjectEmail": "release@example.com", "subjectHostname": "build.example.com"}`,
			want: &v1alpha1.CertificateAuthority{Roots: ca.PEM(), Intermediates: inter.PEM(),
				Identities: []v1alpha1.CertificateIdentity{{Email: "release@example.com", Hostname: "build.example.com"}}},
			note: "pki.caIntermediatesData: containers-image also takes intermediates from each signature's certificate chain (all but its last certificate), signet only these",
		}, {
			name: "roots and an email, no intermediates: noted",
			pki:  `{"caRootsData": "` + roots + `", "subjectEmail": "release@example.com"}`,
			want: &v1alpha1.CertificateAuthority{Roots: ca.PEM(), Identities: []v1alpha1.CertificateIdentity{{Email: "release@example.com"}}},
			note: "pki: no caIntermediatesData: signet takes intermediates only from the authority, never from a signature's certificate chain",
		}, {
			name: "a hostname alone",
			pki:  `{"caRootsData": "` + roots + `", "caIntermediatesData": "` + intermediates + `", "subjectHostname": "build.example.com"}`,
			want: &v1alpha1.CertificateAuthority{Roots: ca.PEM(), Intermediates: inter.PEM(), Identities: []v1alpha1.CertificateIdentity{{Hostname: "build.example.com"}}},
			note: "pki.caIntermediatesData: containers-image also takes intermediates",
		}} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := convertPKI(t, `"pki": `+tc.pki, false)
				if err != nil {
					t.Fatal(err)
				}
				a := authority(t, res)
				if diff := cmp.Diff(v1alpha1.Authority{Name: "policy-json", Certificate: tc.want, InsecureIgnoreTlog: true}, a); diff != "" {
					t.Errorf("authority (-want +got):\n%s", diff)
				}
				n, _, _ := strings.Cut(tc.note, ": ")
				if !hasNote(res, n, strings.TrimPrefix(tc.note, n+": ")) {
					t.Errorf("no note %q in %v", tc.note, res.Notes)
				}
				if !hasNote(res, "pki", "checks the certificate chain at the current time") {
					t.Errorf("no note on the time the chain is checked at in %v", res.Notes)
				}
			})
		}
	})

	t.Run("invalid in containers-image", func(t *testing.T) {
		for _, tc := range []struct{ name, requirement, want string }{
			{"both root fields", `"pki": {"caRootsPath": "/etc/ca.pem", "caRootsData": "` + roots + `", "subjectEmail": "a@example.com"}`,
				"[0].pki: invalid: caRootsPath and caRootsData cannot be used simultaneously"},
			{"no roots", `"pki": {"caIntermediatesData": "` + intermediates + `", "subjectEmail": "a@example.com"}`,
				"[0].pki: invalid: At least one of caRootsPath and caRootsData must be specified"},
			{"both intermediate fields", `"pki": {"caRootsData": "` + roots + `", "caIntermediatesPath": "/etc/i.pem", "caIntermediatesData": "` + intermediates + `", "subjectEmail": "a@example.com"}`,
				"[0].pki: invalid: caIntermediatesPath and caIntermediatesData cannot be used simultaneously"},
			{"no subject", `"pki": {"caRootsData": "` + roots + `"}`,
				"[0].pki: invalid: At least one of subjectEmail, subjectHostname must be specified"},
			{"a Rekor key", `"pki": {"caRootsData": "` + roots + `", "subjectEmail": "a@example.com"}, "rekorPublicKeyData": "` + roots + `"`,
				"[0]: invalid: rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas are not supported for pki"},
			{"an unknown field", `"pki": {"caRootsData": "` + roots + `", "subjectEmail": "a@example.com", "subjectURI": "x"}`,
				`[0].pki: invalid: unknown field "subjectURI"`},
			{"pki and a key", `"pki": {"caRootsData": "` + roots + `", "subjectEmail": "a@example.com"}, "keyData": "` + roots + `"`,
				"exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := convertPKI(t, tc.requirement, true)
				var refused *RefusedError
				if !errors.As(err, &refused) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want refused saying %q", err, tc.want)
				}
			})
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, tc := range []struct {
			name, pki string
			want      []string
		}{
			{"files on the node", `{"caRootsPath": "/etc/ca.pem", "caIntermediatesPath": "/etc/i.pem", "subjectEmail": "a@example.com"}`, []string{
				"[0].pki.caRootsPath: not supported: CA files on the node cannot be read here; give the roots as caRootsData",
				"[0].pki.caIntermediatesPath: not supported: CA files on the node cannot be read here; give the intermediates as caIntermediatesData",
			}},
			{"a root that is not a CA", `{"caRootsData": "` + b64(pkitest.PEM(leaf)) + `", "subjectEmail": "a@example.com"}`, []string{
				"[0].pki.caRootsData: not supported: certificate 1 (CN=release,O=Example Corp) is not a CA certificate",
			}},
			{"intermediates that are not PEM", `{"caRootsData": "` + roots + `", "caIntermediatesData": "eA==", "subjectEmail": "a@example.com"}`, []string{
				"[0].pki.caIntermediatesData: not supported: no PEM certificate",
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := convertPKI(t, `"pki": `+tc.pki, false)
				var refused *RefusedError
				if !errors.As(err, &refused) {
					t.Fatalf("err = %v, want refused", err)
				}
				for _, w := range tc.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("refusal does not say %q:\n%v", w, err)
					}
				}
				// --allow-lossy: the requirement rejects every image.
				res, err := convertPKI(t, `"pki": `+tc.pki, true)
				if err != nil {
					t.Fatal(err)
				}
				if a := authority(t, res); a.Static == nil || a.Static.Action != "fail" {
					t.Errorf("--allow-lossy authority %+v, want a static fail", a)
				}
			})
		}
	})
}
