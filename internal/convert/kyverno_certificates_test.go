package convert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/test/pkitest"
)

// TestKyvernoCertificates: a Cosign certificates attestor converts as
// Kyverno verifies it: cert to a key authority of its key, after the
// checks Kyverno makes once (chain to certChain, an embedded SCT unless
// ignoreSCT), a failure of which is an invalid policy; certChain alone to
// a certificate authority of every certificate in it; the log settings as
// for keys. Both dialects.
func TestKyvernoCertificates(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := pkitest.NewRoot(t, "Root CA")
	inter := root.Intermediate(t, "Code Signing CA")
	other := pkitest.NewRoot(t, "Other CA")
	leaf := pkitest.PEM(inter.Issue(t, &key.PublicKey, pkitest.Leaf{CommonName: "release"}))
	chain := inter.PEM() + root.PEM()

	cp := func(fields string) string {
		return "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  validationFailureAction: Enforce\n  rules:\n  - name: r\n" +
			"    match: {any: [{resources: {kinds: [Pod]}}]}\n    verifyImages:\n    - imageReferences: ['ghcr.io/acme/*']\n" +
			"      attestors: [{entries: [{certificates: {" + fields + "}}]}]\n"
	}
	ivp := func(fields string) string {
		return "apiVersion: policies.kyverno.io/v1\nkind: ImageValidatingPolicy\nmetadata: {name: p}\nspec:\n" +
			"  matchConstraints: {resourceRules: [{apiGroups: [''], apiVersions: [v1], resources: [pods], operations: [CREATE]}]}\n" +
			"  matchImageReferences: [{glob: 'ghcr.io/acme/*'}]\n" +
			"  attestors: [{name: c, cosign: {" + fields + "}}]\n" +
			"  validations: [{expression: 'images.containers.map(i, verifyImageSignatures(i, [attestors.c])).all(e, e > 0)'}]\n"
	}
	q := strconv.Quote
	offline := "rekor: {ignoreTlog: true}, ctlog: {ignoreSCT: true}"
	ivOffline := "ctlog: {insecureIgnoreTlog: true, insecureIgnoreSCT: true}"
	for _, tc := range []struct {
		name, src string
		lossy     bool
		key       bool   // a key authority of the certificate's key
		roots     int    // a certificate authority of that many roots
		tlog      bool   // the log required
		problem   string // refused or invalid, saying
		note      string
	}{
		{name: "cert", src: cp("cert: " + q(leaf) + ", " + offline), key: true, note: "becomes a key authority"},
		{name: "cert base64", src: cp("cert: " + q(b64(leaf)) + ", " + offline), key: true},
		{name: "cert and chain", src: cp("cert: " + q(leaf) + ", certChain: " + q(chain) + ", " + offline), key: true},
		{name: "chain only", src: cp("certChain: " + q(chain) + ", " + offline), roots: 2, note: "Kyverno checks no identity"},
		{name: "chain only, log required", src: cp("certChain: " + q(chain) + ", ctlog: {ignoreSCT: true}"), roots: 2, tlog: true},
		{name: "chain of another CA", src: cp("cert: " + q(leaf) + ", certChain: " + q(other.PEM()) + ", " + offline),
			problem: "certificates.certChain: invalid: the certificate does not chain to the last certificate of certChain"},
		{name: "chain without the intermediate", src: cp("cert: " + q(leaf) + ", certChain: " + q(root.PEM()) + ", " + offline),
			problem: "does not chain"},
		{name: "no SCT", src: cp("cert: " + q(leaf) + ", certChain: " + q(chain) + ", rekor: {ignoreTlog: true}"),
			problem: "certificates.cert: invalid: the certificate carries no embedded SCT and ctlog.ignoreSCT is not set: Kyverno fails every image"},
		{name: "cert alone needs no SCT", src: cp("cert: " + q(leaf) + ", rekor: {ignoreTlog: true}"), key: true},
		{name: "chain only, SCT", src: cp("certChain: " + q(chain) + ", rekor: {ignoreTlog: true}"),
			problem: "certificates.certChain: not supported: Kyverno requires each signature's certificate to carry an SCT"},
		{name: "chain only, SCT, lossy", src: cp("certChain: " + q(chain) + ", rekor: {ignoreTlog: true}"), lossy: true, roots: 2,
			note: "certificates are accepted without an SCT"},
		{name: "log required", src: cp("cert: " + q(leaf) + ", ctlog: {ignoreSCT: true}"),
			problem: "certificates.cert: not supported: with the transparency log required"},
		{name: "log required, lossy", src: cp("cert: " + q(leaf) + ", ctlog: {ignoreSCT: true}"), lossy: true, key: true, tlog: true,
			note: "signatures that carry a certificate are denied"},
		{name: "not a certificate", src: cp("cert: " + q(root.PEM()[:40]) + ", " + offline), problem: "invalid: no PEM certificate"},
		{name: "ivp cert and chain", src: ivp("certificate: {cert: {value: " + q(leaf) + "}, certChain: {value: " + q(chain) + "}}, " + ivOffline), key: true},
		{name: "ivp chain only", src: ivp("certificate: {certChain: {value: " + q(chain) + "}}, " + ivOffline), roots: 2},
		{name: "ivp bad chain", src: ivp("certificate: {cert: {value: " + q(leaf) + "}, certChain: {value: " + q(other.PEM()) + "}}, " + ivOffline),
			problem: "cosign.certificate.certChain: invalid: the certificate does not chain"},
		{name: "ivp expression", src: ivp("certificate: {cert: {expression: 'x'}}, " + ivOffline), problem: "certificate.cert.expression: not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(file, []byte(tc.src), 0o600); err != nil {
				t.Fatal(err)
			}
			res, err := Convert(t.Context(), "kyverno", []string{file}, Options{AllowLossy: tc.lossy})
			if tc.problem != "" {
				if err == nil || !strings.Contains(err.Error(), tc.problem) {
					t.Fatalf("error %v, want one saying %q", err, tc.problem)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, tc.src)
			}
			au := res.Objects[0].Policy.(*v1alpha1.ClusterImagePolicy).Spec.Authorities[0]
			switch {
			case tc.key:
				if au.Key == nil || !strings.Contains(au.Key.Data, "PUBLIC KEY") {
					t.Fatalf("authority %+v, want a key authority", au)
				}
			case au.Certificate == nil:
				t.Fatalf("authority %+v, want a certificate authority", au)
			default:
				if n := strings.Count(au.Certificate.Roots, "BEGIN CERTIFICATE"); n != tc.roots {
					t.Errorf("%d roots, want %d", n, tc.roots)
				}
				if len(au.Certificate.Identities) != 1 || au.Certificate.Identities[0].SubjectRegExp != ".*" {
					t.Errorf("identities %+v, want any", au.Certificate.Identities)
				}
			}
			if au.InsecureIgnoreTlog == tc.tlog {
				t.Errorf("insecureIgnoreTlog %v, want %v", au.InsecureIgnoreTlog, !tc.tlog)
			}
			if tc.note != "" && !slices.ContainsFunc(res.Notes, func(n Note) bool { return strings.Contains(n.Text, tc.note) }) {
				t.Errorf("no note saying %q: %v", tc.note, res.Notes)
			}
		})
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
