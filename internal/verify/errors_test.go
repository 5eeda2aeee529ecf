package verify_test

import (
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// TestKinds: each kind is in the family it names, and nothing else.
func TestKinds(t *testing.T) {
	denied := []error{
		verify.ErrNoSignature, verify.ErrNoAttestation, verify.ErrMalformed, verify.ErrBadSignature,
		verify.ErrUntrustedCertificate, verify.ErrIdentityMismatch, verify.ErrDigestMismatch,
		verify.ErrSignedIdentity, verify.ErrConditionFailed, verify.ErrTransparencyLog,
		verify.ErrTimestamp, verify.ErrStatic, verify.ErrThreshold,
	}
	undecided := []error{verify.ErrNoTrustRoot, verify.ErrBudget, verify.ErrDeadline}
	seen := map[string]bool{}
	for _, k := range append(denied, undecided...) {
		codes := verify.Codes(k)
		if len(codes) != 1 || seen[codes[0]] {
			t.Errorf("%q has codes %v, want one of its own", k, codes)
		}
		seen[codes[0]] = true
	}
	for _, k := range denied {
		if !errors.Is(k, verify.ErrDenied) || errors.Is(k, verify.ErrUndecided) {
			t.Errorf("%q is not (only) a denial", k)
		}
		d := &verify.Denial{Kind: k, Reason: "r"}
		if !errors.Is(d, k) || !errors.Is(d, verify.ErrDenied) || errors.Is(d, verify.ErrUndecided) {
			t.Errorf("a Denial of kind %q does not match it and ErrDenied only", k)
		}
	}
	for _, k := range undecided {
		if !errors.Is(k, verify.ErrUndecided) || errors.Is(k, verify.ErrDenied) {
			t.Errorf("%q is not (only) undecided", k)
		}
		u := &verify.Undecided{Kind: k, Err: errors.New("e")}
		if !errors.Is(u, k) || !errors.Is(u, verify.ErrUndecided) || errors.Is(u, verify.ErrDenied) {
			t.Errorf("an Undecided of kind %q does not match it and ErrUndecided only", k)
		}
	}
	// A denial's causes are matched too; an undecided cause never is.
	sum := &verify.Denial{Reason: "sum", Causes: []*verify.Denial{{Kind: verify.ErrNoSignature}, {Kind: verify.ErrDigestMismatch}}}
	if !errors.Is(sum, verify.ErrNoSignature) || !errors.Is(sum, verify.ErrDigestMismatch) || errors.Is(sum, verify.ErrIdentityMismatch) {
		t.Errorf("a denial does not match exactly the kinds of its causes: %v", verify.Codes(sum))
	}
	if diff := cmp.Diff([]string{"NoSignature", "DigestMismatch"}, verify.Codes(sum)); diff != "" {
		t.Errorf("codes (-want +got):\n%s", diff)
	}
}

// TestKeySignatureKinds: a key authority that requires the transparency
// log says which step failed: another key is a signature that does not
// verify with the trusted key (not a log entry that does not match, which
// sigstore-go reports first, since the entry is compared with the trusted
// key), a statement for another digest is one, a log nobody trusts is the
// log's failure, a certificate-carrying signature by another key is
// another key (the certificate is not looked at).
func TestKeySignatureKinds(t *testing.T) {
	s, other := sigstoretest.New(t), sigstoretest.New(t)
	key, otherKey := sigstoretest.NewKey(t), sigstoretest.NewKey(t)
	authority := func(keys ...*ecdsa.PrivateKey) verify.Authority {
		a := verify.Authority{Name: "ci", TrustedMaterial: s.TrustedRoot()}
		for _, k := range keys {
			pk, err := verify.NewPublicKey(&k.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			a.Keys = append(a.Keys, pk)
		}
		return a
	}
	policy := func(keys ...*ecdsa.PrivateKey) *verify.Compiled {
		return verifytest.Compile(t, verify.Policy{Name: "key", Authorities: []verify.Authority{authority(keys...)}})
	}
	signed := func(s *sigstoretest.Sigstore, digest string, o sigstoretest.SignOptions) registry.Evidence {
		statement := sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, repoName, digest)
		return evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.Bundle(t, statement, o), nil)
	}
	byKey := sigstoretest.SignOptions{Key: key}

	verifytest.WantVerified(t, run(t, policy(key), signed(s, digest, byKey)))
	for _, tc := range []struct {
		name   string
		policy *verify.Compiled
		ev     registry.Evidence
		kind   error
		reason string
	}{
		{"another key", policy(otherKey), signed(s, digest, byKey), verify.ErrBadSignature,
			"1 signature checked, none verified by key sha256:"},
		{"another key, said why", policy(otherKey), signed(s, digest, byKey), verify.ErrBadSignature,
			": signature does not verify with the trusted key (wrong key or tampered payload)"},
		{"statement for another digest", policy(key), signed(s, otherDigest, byKey), verify.ErrDigestMismatch,
			"signed statement is for another digest (copied from another image?)"},
		{"logged in a log nobody trusts", policy(key), signed(other, digest, byKey), verify.ErrTransparencyLog,
			"(no entry of a transparency log in the trusted root verified: there is none, the log is not in the trusted root, or the entry's SET is signed by another key)"},
		{"a certificate of another key", policy(key), signed(s, digest, release), verify.ErrBadSignature,
			": signature does not verify with the trusted key (wrong key or tampered payload)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, tc.policy, tc.ev)
			verifytest.WantDenied(t, res, tc.reason, tc.kind)
			ar := res.Authorities[0]
			if len(ar.Failures) != 1 || !errors.Is(ar.Failures[0].Err, tc.kind) || !errors.Is(ar.Err, tc.kind) {
				t.Errorf("authority %v, failures %+v: want one failure of kind %q", ar.Err, ar.Failures, tc.kind)
			}
		})
	}

	// Of several keys, the one that signed says what is wrong; the
	// others that they did not sign.
	res := run(t, policy(otherKey, key), signed(s, otherDigest, byKey))
	verifytest.WantDenied(t, res, "signature does not verify with the trusted key (wrong key or tampered payload); signed statement is for another digest",
		verify.ErrBadSignature, verify.ErrDigestMismatch)
	raw, err := json.Marshal(res.Authorities[0].Failures[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"code":"DigestMismatch"`) {
		t.Errorf("failure %s, want the code of the key that signed", raw)
	}
}

// TestResultJSON: results printed as JSON (signet verify -o json) keep
// their fields and add the codes of the kinds: the result's and each
// authority's, and each failure's own.
func TestResultJSON(t *testing.T) {
	s := sigstoretest.New(t)
	p := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
		keyless(s, "release", releaseID), keyless(s, "mail", mailID), {Name: "never", Static: &verify.Static{}},
	}})
	res := run(t, p, signature(t, s, bundled, digest, release), signature(t, s, bundled, otherDigest, mail))
	raw, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Reason      string
		Codes       []string
		Verified    bool
		Authorities []struct {
			Name     string
			Passed   bool
			Reason   string
			Codes    []string
			Failures []struct{ Source, Reason, Code string }
		}
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.Verified || got.Reason != res.Err.Error() {
		t.Errorf("verified %v, reason %q; want denied with %q", got.Verified, got.Reason, res.Err)
	}
	if diff := cmp.Diff([]string{"IdentityMismatch", "DigestMismatch", "StaticDenial", "Threshold"}, got.Codes); diff != "" {
		t.Errorf("result codes (-want +got):\n%s\n%s", diff, raw)
	}
	if len(got.Authorities) != 3 {
		t.Fatalf("authorities %s", raw)
	}
	if a := got.Authorities[0]; !a.Passed || a.Codes != nil || len(a.Failures) != 1 || a.Failures[0].Code != "DigestMismatch" {
		t.Errorf("the passing authority, with the other signature's failure: %+v", a)
	}
	mail := got.Authorities[1]
	if diff := cmp.Diff([]string{"IdentityMismatch", "DigestMismatch"}, mail.Codes); diff != "" {
		t.Errorf("authority mail codes (-want +got):\n%s", diff)
	}
	var codes []string
	for _, f := range mail.Failures {
		if f.Source == "" || f.Reason == "" {
			t.Errorf("failure %+v", f)
		}
		codes = append(codes, f.Code)
	}
	if diff := cmp.Diff([]string{"IdentityMismatch", "DigestMismatch"}, codes); diff != "" {
		t.Errorf("failure codes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"StaticDenial"}, got.Authorities[2].Codes); diff != "" || got.Authorities[2].Reason != "static authority denies every image" {
		t.Errorf("static authority %+v (-want +got codes):\n%s", got.Authorities[2], diff)
	}
}
