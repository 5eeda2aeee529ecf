package notationtest_test

import (
	"context"
	"crypto/x509"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/notaryproject/notation-core-go/signature"

	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/notationtest"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/registrytest"
)

// TestSignaturesVerifyWithNotationGo proves the signatures real: notation-go's
// own verifier accepts the good ones and rejects each bad one at the check
// the Notary Project specification names.
func TestSignaturesVerifyWithNotationGo(t *testing.T) {
	root := pkitest.NewRoot(t, "signet notationtest root")
	ca := root.Intermediate(t, "signet notationtest intermediate")
	good := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "good signer"})
	expired := notationtest.NewSigner(t, ca, pkitest.Leaf{CommonName: "expired signer",
		NotBefore: time.Now().Add(-3 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	stranger := pkitest.NewRoot(t, "another root")
	tsa := notationtest.StartTSA(t)
	reg := registrytest.StartInProcess(t, true)

	trust := notationtest.Trust{Roots: []*x509.Certificate{root.Cert}, Identities: []string{good.Identity()}}
	withTSA := trust
	withTSA.TSARoots = []*x509.Certificate{tsa.Root.Cert}

	for _, format := range []string{notationtest.JWS, notationtest.COSE} {
		t.Run(format, func(t *testing.T) {
			cases := []struct {
				name   string
				signer notationtest.Signer
				opts   notationtest.Options
				trust  notationtest.Trust
				want   notationtest.Check
			}{
				{"good", good, notationtest.Options{}, trust, notationtest.Verified},
				{"good with expiry", good, notationtest.Options{Expiry: time.Hour}, trust, notationtest.Verified},
				{"good with user metadata", good, notationtest.Options{UserMetadata: map[string]string{"env": "prod"}},
					with(trust, func(tr *notationtest.Trust) { tr.UserMetadata = map[string]string{"env": "prod"} }), notationtest.Verified},
				{"timestamped", good, notationtest.Options{TSA: tsa}, withTSA, notationtest.Verified},
				{"backdated", good, notationtest.Options{SigningTime: time.Now().Add(-10 * time.Minute)}, trust, notationtest.Verified},
				{"missing user metadata", good, notationtest.Options{UserMetadata: map[string]string{"env": "dev"}},
					with(trust, func(tr *notationtest.Trust) { tr.UserMetadata = map[string]string{"env": "prod"} }), notationtest.UserMetadata},
				{"no timestamp when the policy wants one", good, notationtest.Options{}, withTSA, notationtest.AuthenticTimestamp},
				{"tampered payload", good, notationtest.Options{Tamper: true}, trust, notationtest.Integrity},
				{"untrusted root", good, notationtest.Options{}, with(trust, func(tr *notationtest.Trust) { tr.Roots = []*x509.Certificate{stranger.Cert} }), notationtest.Authenticity},
				{"untrusted identity", good, notationtest.Options{},
					with(trust, func(tr *notationtest.Trust) {
						tr.Identities = []string{"x509.subject: C=US, ST=WA, O=Example Corp, CN=someone else"}
					}), notationtest.Authenticity},
				{"expired signature", good, notationtest.Options{SigningTime: time.Now().Add(-30 * time.Minute), Expiry: 10 * time.Minute}, trust, notationtest.Expiry},
				{"expired certificate", expired, notationtest.Options{}, with(trust, func(tr *notationtest.Trust) { tr.Identities = nil }), notationtest.AuthenticTimestamp},
				// notation-go v1.3.2 does not reject unknown critical
				// attributes (only its verification-plugin attributes are
				// acted on); signet must, per the specification.
				{"unknown critical attribute", good, notationtest.Options{UnknownCritical: true}, trust, notationtest.Verified},
			}
			for i, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					img := reg.PushRandomImage(t, "app", tagFor(format, i))
					opts := c.opts
					opts.Format = format
					sig := notationtest.Sign(t, img.Ref, c.signer, opts)
					if sig.Subject != img.Ref || sig.Manifest == "" || len(sig.Envelope) == 0 {
						t.Fatalf("Sign returned %+v", sig)
					}
					got := notationtest.VerifyImage(context.Background(), img.Ref, c.trust)
					if got.Check != c.want {
						t.Fatalf("notation-go: check %q (err %v), want %q", got.Check, got.Err, c.want)
					}
					if (got.Err == nil) != (c.want == notationtest.Verified) {
						t.Fatalf("notation-go: err %v with check %q", got.Err, got.Check)
					}
					env := parse(t, format, sig.Envelope)
					if c.opts.TSA != nil && len(env.SignerInfo.UnsignedAttributes.TimestampSignature) == 0 {
						t.Error("no timestamp countersignature in a timestamped signature")
					}
					if c.opts.UnknownCritical {
						attr, err := env.SignerInfo.ExtendedAttribute(notationtest.UnknownCriticalAttribute)
						if err != nil || !attr.Critical {
							t.Errorf("extended attribute %+v (%v), want it critical", attr, err)
						}
					}
				})
			}

			t.Run("signature over another image", func(t *testing.T) {
				a := reg.PushRandomImage(t, "app", "other-a-"+short(format))
				b := reg.PushRandomImage(t, "app", "other-b-"+short(format))
				sig := notationtest.Sign(t, a.Ref, good, notationtest.Options{Format: format, AttachTo: b.Ref})
				if sig.Subject != b.Ref {
					t.Fatalf("attached to %s, want %s", sig.Subject, b.Ref)
				}
				got := notationtest.VerifyImage(context.Background(), b.Ref, trust)
				if got.Check != notationtest.Artifact || got.Err == nil {
					t.Fatalf("notation-go: check %q (err %v), want %q", got.Check, got.Err, notationtest.Artifact)
				}
				if got := notationtest.VerifyImage(context.Background(), a.Ref, trust); got.Check != notationtest.Retrieval {
					t.Fatalf("image A has no signature of its own; notation-go says check %q (err %v)", got.Check, got.Err)
				}
			})
		})
	}
	if tsa.Requests() != 2 {
		t.Errorf("the TSA answered %d requests, want 2", tsa.Requests())
	}
}

// TestReferrers: the signature is found by notation-go in each registry
// signet's tests use, through the referrers API where the registry has it
// and through the referrers tag schema where it has not.
func TestReferrers(t *testing.T) {
	root := pkitest.NewRoot(t, "signet notationtest root")
	s := notationtest.NewSigner(t, root.Intermediate(t, "intermediate"), pkitest.Leaf{})
	trust := notationtest.Trust{Roots: []*x509.Certificate{root.Cert}}
	for _, reg := range []struct {
		name  string
		start func(t *testing.T) *registrytest.Registry
	}{
		{"in-process with referrers API", func(t *testing.T) *registrytest.Registry { return registrytest.StartInProcess(t, true) }},
		{"in-process without referrers API", func(t *testing.T) *registrytest.Registry { return registrytest.StartInProcess(t, false) }},
		{"distribution", func(t *testing.T) *registrytest.Registry { return harness.StartRegistry(t) }},
	} {
		t.Run(reg.name, func(t *testing.T) {
			r := reg.start(t)
			img := r.PushRandomImage(t, "app", "v1")
			for _, format := range []string{notationtest.JWS, notationtest.COSE} {
				notationtest.Sign(t, img.Ref, s, notationtest.Options{Format: format})
			}
			if got := notationtest.VerifyImage(context.Background(), img.Ref, trust); got.Err != nil {
				t.Fatalf("notation-go: %v (check %q)", got.Err, got.Check)
			}
			tagged := fallbackTagExists(t, r, img)
			if tagged == r.Referrers {
				t.Errorf("referrers tag-schema index present: %v; registry serves the referrers API: %v", tagged, r.Referrers)
			}
		})
	}
}

func with(tr notationtest.Trust, f func(*notationtest.Trust)) notationtest.Trust {
	f(&tr)
	return tr
}

func short(format string) string {
	if format == notationtest.COSE {
		return "cose"
	}
	return "jws"
}

func tagFor(format string, i int) string {
	return short(format) + "-" + string(rune('a'+i))
}

func parse(t *testing.T, format string, raw []byte) *signature.EnvelopeContent {
	t.Helper()
	env, err := signature.ParseEnvelope(format, raw)
	if err != nil {
		t.Fatal(err)
	}
	content, err := env.Content()
	if err != nil {
		t.Fatal(err)
	}
	return content
}

// fallbackTagExists reports whether the referrers tag-schema index of img exists.
func fallbackTagExists(t *testing.T, r *registrytest.Registry, img registrytest.Image) bool {
	t.Helper()
	tag := strings.Replace(img.Digest, ":", "-", 1)
	req, err := http.NewRequest(http.MethodHead, "http://"+r.Host+"/v2/app/manifests/"+tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
