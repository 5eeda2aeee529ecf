package policy

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/pkitest"
	"github.com/signet-dev/signet/test/sigstoretest"
)

func pemKey(t *testing.T) string {
	t.Helper()
	return string(sigstoretest.PublicKeyPEM(t, sigstoretest.NewKey(t)))
}

func smallRSAKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, &k.PublicKey)
}

func pemOf(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// fakeResolver serves Secrets from a map and a fixed trust root.
type fakeResolver struct {
	secrets map[string]map[string][]byte
	roots   map[string]bool
}

func (r fakeResolver) SecretKeys(_ context.Context, ns, name string) (map[string][]byte, error) {
	if v, ok := r.secrets[ns+"/"+name]; ok {
		return v, nil
	}
	return nil, errors.New("Secret " + ns + "/" + name + " not found")
}

func (r fakeResolver) TrustedMaterial(_ context.Context, name string) (root.TrustedMaterial, error) {
	if name == "" || r.roots[name] {
		return &root.BaseTrustedMaterial{}, nil
	}
	return nil, errors.New("TrustRoot " + name + " not found")
}

func TestCompileValidation(t *testing.T) {
	key := pemKey(t)
	res := fakeResolver{
		secrets: map[string]map[string][]byte{
			"signet/keys":              {"cosign.pub": []byte(key), "second.pub": []byte(pemKey(t))},
			"signet/not-keys":          {"password": []byte("hunter2")},
			"signet-system/cosign-key": {"cosign.pub": []byte(key)},
			"signet/mixed":             {"cosign.pub": []byte(key), "cosign.key": []byte("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")},
		},
		roots: map[string]bool{"airgap": true},
	}
	images := []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}
	keyAuth := v1alpha1.Authority{Name: "ci", Key: &v1alpha1.KeyAuthority{Data: key}}
	id := v1alpha1.Identity{Issuer: "https://token.actions.githubusercontent.com", SubjectRegExp: "https://github.com/acme/.+"}
	ca := pkitest.NewRoot(t, "root")
	caPEM := ca.PEM()
	leafPEM := pkitest.PEM(ca.Issue(t, sigstoretest.NewKey(t).Public(), pkitest.Leaf{CommonName: "leaf"}))
	for _, tc := range []struct {
		name string
		spec v1alpha1.ImagePolicySpec
		want []string // field paths and reasons; empty: valid
	}{
		{"valid key", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{keyAuth}}, nil},
		{"valid keyless with trust root", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{id}, TrustRootRef: "airgap"}}}}, nil},
		{"valid secretRef with two keys", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "keys", Namespace: "signet"}}}}}, nil},
		{"no images", v1alpha1.ImagePolicySpec{Authorities: []v1alpha1.Authority{keyAuth}}, []string{"spec.images: at least one image pattern is required"}},
		{"glob with tag", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/app:v1"}}, Authorities: []v1alpha1.Authority{keyAuth}}, []string{"spec.images[0].glob", "write the tag"}},
		{"glob and prefix", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "a/b", Prefix: "a"}}, Authorities: []v1alpha1.Authority{keyAuth}}, []string{"spec.images[0]: give exactly one of glob or prefix"}},
		{"uppercase pattern cannot match", v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Prefix: "registry.example.org/Team"}}, Authorities: []v1alpha1.Authority{keyAuth}}, []string{"spec.images[0].prefix", "no image can match"}},
		{"no authorities", v1alpha1.ImagePolicySpec{Images: images}, []string{"spec.authorities: at least one authority is required"}},
		{"two kinds in one authority", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: keyAuth.Key, Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}, []string{"spec.authorities[0]: give exactly one of key, keyless, certificate, notation or static"}},
		{"identity without issuer", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{Subject: "me@example.org"}}}}}}, []string{"spec.authorities[0].keyless.identities[0]: no issuer"}},
		{"identity without subject", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{Issuer: "https://accounts.google.com"}}}}}}, []string{"spec.authorities[0].keyless.identities[0]: no subject"}},
		{"invalid regexp", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{{Issuer: "x", SubjectRegExp: "(unclosed"}}}}}}, []string{"spec.authorities[0].keyless.identities[0]: subjectRegExp: invalid regular expression"}},
		{"no identities", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{}}}}, []string{"spec.authorities[0].keyless.identities: at least one identity"}},
		{"unknown trust root", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{id}, TrustRootRef: "nope"}}}}, []string{"spec.authorities[0].keyless.trustRootRef: TrustRoot nope not found"}},
		{"keyless ignoring tlog", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Keyless: &v1alpha1.KeylessAuthority{Identities: []v1alpha1.Identity{id}}}}}, []string{"spec.authorities[0].insecureIgnoreTlog: applies only to key and certificate authorities"}},
		{"certificate roots and secretRef", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{Roots: caPEM, SecretRef: &v1alpha1.SecretReference{Name: "ca"}, Identities: []v1alpha1.CertificateIdentity{{Email: "a@example.com"}}}}}}, []string{"spec.authorities[0].certificate: give exactly one of roots, secretRef or configMapRef"}},
		{"certificate roots not PEM", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{Roots: "not pem", Identities: []v1alpha1.CertificateIdentity{{Email: "a@example.com"}}}}}}, []string{"spec.authorities[0].certificate.roots: not a PEM certificate"}},
		{"certificate root is a leaf", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{Roots: leafPEM, Identities: []v1alpha1.CertificateIdentity{{Email: "a@example.com"}}}}}}, []string{"spec.authorities[0].certificate.roots: certificate 1 (CN=leaf,O=Example Corp) is not a CA certificate"}},
		{"certificate without identities", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{Roots: caPEM}}}}, []string{"spec.authorities[0].certificate.identities: at least one identity is required"}},
		{"certificate identity empty", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{Roots: caPEM, Identities: []v1alpha1.CertificateIdentity{{}}}}}}, []string{"spec.authorities[0].certificate.identities[0]: no identity"}},
		{"certificate identity exact and regexp", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{Roots: caPEM, Identities: []v1alpha1.CertificateIdentity{{Email: "a@example.com", EmailRegExp: ".*"}}}}}}, []string{"spec.authorities[0].certificate.identities[0]: email and emailRegExp are both set"}},
		{"certificate Secret without ca.crt", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Certificate: &v1alpha1.CertificateAuthority{SecretRef: &v1alpha1.SecretReference{Name: "cosign-key", Namespace: "signet-system"}, Identities: []v1alpha1.CertificateIdentity{{Email: "a@example.com"}}}}}}, []string{`spec.authorities[0].certificate.secretRef.key: Secret cosign-key has no key "ca.crt"`}},
		{"notation without trust store", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Notation: &v1alpha1.NotationAuthority{TrustedIdentities: []string{"*"}}}}}, []string{"spec.authorities[0].notation: no CA or signing authority certificate"}},
		{"notation identity malformed", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Notation: &v1alpha1.NotationAuthority{CertificateAuthorities: caPEM, TrustedIdentities: []string{"CN=release"}}}}}, []string{"spec.authorities[0].notation.trustedIdentities[0]:"}},
		{"notation wildcard with others", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Notation: &v1alpha1.NotationAuthority{CertificateAuthorities: caPEM, TrustedIdentities: []string{"*", "x509.subject: CN=release"}}}}}, []string{`spec.authorities[0].notation.trustedIdentities: "*" must be the only identity`}},
		{"notation level", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Notation: &v1alpha1.NotationAuthority{CertificateAuthorities: caPEM, TrustedIdentities: []string{"*"}, VerificationLevel: "lenient"}}}}, []string{`spec.authorities[0].notation.verificationLevel: "lenient" is not one of strict, permissive, audit`}},
		{"notation with a transparency log setting", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{InsecureIgnoreTlog: true, Notation: &v1alpha1.NotationAuthority{CertificateAuthorities: caPEM, TrustedIdentities: []string{"*"}}}}}, []string{"spec.authorities[0]: insecureIgnoreTlog and insecureIgnoreSCT do not apply to notation authorities"}},
		{"bad CEL", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: keyAuth.Key, Attestations: []v1alpha1.Attestation{{PredicateType: "https://slsa.dev/provenance/v1", Conditions: []string{"predicate.builder.id =="}}}}}}, []string{"spec.authorities[0].attestations[0].conditions[0]"}},
		{"CEL that is not a bool", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: keyAuth.Key, Attestations: []v1alpha1.Attestation{{PredicateType: "p", Conditions: []string{`"yes"`}}}}}}, []string{"spec.authorities[0].attestations[0].conditions[0]", "want a bool"}},
		{"attestation without predicate type", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: keyAuth.Key, Attestations: []v1alpha1.Attestation{{}}}}}, []string{"spec.authorities[0].attestations[0].predicateType: required"}},
		{"key data not a key", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{Data: "hello"}}}}, []string{"spec.authorities[0].key.data: not a PEM public key"}},
		{"RSA key too small", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{Data: smallRSAKey(t)}}}}, []string{"spec.authorities[0].key.data", "too small"}},
		{"secret value not a key", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "not-keys", Namespace: "signet"}}}}}, []string{"spec.authorities[0].key.secretRef", `key "password": not a PEM public key`}},
		{"secretRef key names one entry", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "mixed", Namespace: "signet", Key: "cosign.pub"}}}}}, nil},
		{"secretRef key missing", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "keys", Namespace: "signet", Key: "nope.pub"}}}}}, []string{`spec.authorities[0].key.secretRef.key: Secret keys has no key "nope.pub"`}},
		{"key trust root", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{Data: key, TrustRootRef: "airgap"}}}}, nil},
		{"key unknown trust root", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{Data: key, TrustRootRef: "nope"}}}}, []string{"spec.authorities[0].key.trustRootRef: TrustRoot nope not found"}},
		{"signed identity repo-digest-or-exact", v1alpha1.ImagePolicySpec{Images: images, SignedIdentity: "matchRepoDigestOrExact", Authorities: []v1alpha1.Authority{keyAuth}}, nil},
		{"missing secret", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "gone", Namespace: "signet"}}}}}, []string{"spec.authorities[0].key.secretRef: Secret signet/gone not found"}},
		{"threshold too high", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{keyAuth}, Threshold: ptr(int32(2))}, []string{"spec.threshold: 2, but the policy has 1 authorities"}},
		{"bad mode", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{keyAuth}, Mode: "audit"}, []string{`spec.mode: "audit" is not one of enforce, warn`}},
		{"duplicate authority names", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{keyAuth, keyAuth}}, []string{`spec.authorities[1].name: "ci" is used by another authority`}},
		{"source with tag", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Key: keyAuth.Key, Source: &v1alpha1.Source{OCI: "registry.example.org/sigs:v1"}}}}, []string{"spec.authorities[0].source.oci", "without tag"}},
		{"bad selector", v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{keyAuth}, Match: &v1alpha1.MatchResources{NamespaceSelector: selectorWith("env", "Among")}}, []string{"spec.match.namespaceSelector", `unknown operator "Among"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: tc.spec}, res)
			if len(tc.want) == 0 {
				if p.Err != nil {
					t.Fatalf("want valid, got %v", p.Err)
				}
				if p.Verifier == nil {
					t.Fatal("valid policy without a verifier")
				}
				return
			}
			if p.Err == nil {
				t.Fatalf("want invalid (%v), got valid", tc.want)
			}
			if p.Verifier != nil {
				t.Error("an invalid policy must not verify anything")
			}
			msg := p.Err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not say %q", msg, w)
				}
			}
			if !strings.HasPrefix(msg, "ClusterImagePolicy p is invalid: ") {
				t.Errorf("error %q does not name the policy", msg)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestCombine covers the combination rules: AND across policies, warn mode,
// onError, digest require, unmatched images.
func TestCombine(t *testing.T) {
	pass := &verify.Result{Verified: true}
	fail := &verify.Result{Err: errors.New("denied by policy p: authority ci: no signature found")}
	undecided := verify.AsUndecided(errors.New("registry unreachable"))
	// A result whose attestation conditions stopped at the deadline.
	stopped := &verify.Result{Err: verify.AsUndecided(fmt.Errorf("policy p: authority ci: attestation slsa: evaluating condition %q: %w", "c", context.DeadlineExceeded))}
	pol := func(name, mode, onError, digest string) *Policy {
		c := &compiler{}
		p := &Policy{Object: Object{Kind: KindClusterImagePolicy, Name: name, Spec: v1alpha1.ImagePolicySpec{Mode: mode, OnError: onError, Digest: digest}}}
		p.settings = c.settings(mode, onError, digest, "", "")
		if len(c.errs) > 0 {
			t.Fatalf("settings of %s: %v", name, c.errs[0])
		}
		return p
	}
	broken := pol("broken", "", "", "")
	imagePolicy := pol("team", "", "", "")
	imagePolicy.Object.Kind, imagePolicy.Object.Namespace = KindImagePolicy, "team-a"
	broken.Err = &InvalidError{Object: "ClusterImagePolicy broken", Errors: []*FieldError{{Path: "spec.images", Reason: "required"}}}
	for _, tc := range []struct {
		name      string
		unmatched Action
		// noPolicy: the snapshot holds no ClusterImagePolicy at all.
		noPolicy  bool
		hasDigest bool
		// reason is the unmatched verdict's reason, when set.
		reason   string
		outcomes []Outcome
		allowed  bool
		pin      bool
		denials  []string
		warnings []string
		// effects are each outcome's Effect, then the unmatched one ("" when
		// a ClusterImagePolicy matched).
		effects []Effect
	}{
		{name: "one passing policy pins", outcomes: []Outcome{{Policy: pol("a", "", "", ""), Result: pass}}, allowed: true, pin: true, effects: []Effect{EffectPass, ""}},
		{name: "digest none does not pin", outcomes: []Outcome{{Policy: pol("a", "", "", "none"), Result: pass}}, allowed: true, effects: []Effect{EffectPass, ""}},
		{name: "AND: one failing policy denies", outcomes: []Outcome{{Policy: pol("a", "", "", ""), Result: pass}, {Policy: pol("b", "", "", ""), Result: fail}}, denials: []string{"no signature found"}, effects: []Effect{EffectPass, EffectFail, ""}},
		{name: "warn mode warns", outcomes: []Outcome{{Policy: pol("a", "warn", "", ""), Result: fail}}, allowed: true, warnings: []string{"no signature found (policy in warn mode)"}, effects: []Effect{EffectWarn, ""}},
		{name: "warn mode does not relax an enforcing policy", outcomes: []Outcome{{Policy: pol("a", "warn", "", ""), Result: fail}, {Policy: pol("b", "", "", ""), Result: fail}}, denials: []string{"no signature found"}, warnings: []string{"warn mode"}, effects: []Effect{EffectWarn, EffectFail, ""}},
		{name: "undecided denies by default", outcomes: []Outcome{{Policy: pol("a", "", "", ""), Err: undecided}}, denials: []string{"ClusterImagePolicy a: could not decide: registry unreachable"}, effects: []Effect{EffectError, ""}},
		{name: "undecided with onError warn", outcomes: []Outcome{{Policy: pol("a", "", "warn", ""), Err: undecided}}, allowed: true, warnings: []string{"could not decide"}, effects: []Effect{EffectError, ""}},
		{name: "undecided with onError allow", outcomes: []Outcome{{Policy: pol("a", "", "allow", ""), Err: undecided}}, allowed: true, effects: []Effect{EffectError, ""}},
		{name: "undecided result denies by default, as undecided", outcomes: []Outcome{{Policy: pol("a", "", "", ""), Result: stopped}}, denials: []string{"ClusterImagePolicy a: could not decide: policy p: authority ci: attestation slsa: evaluating condition"}, effects: []Effect{EffectError, ""}},
		{name: "undecided result with onError warn", outcomes: []Outcome{{Policy: pol("a", "", "warn", ""), Result: stopped}}, allowed: true, warnings: []string{"could not decide"}, effects: []Effect{EffectError, ""}},
		{name: "undecided result with onError allow", outcomes: []Outcome{{Policy: pol("a", "", "allow", ""), Result: stopped}}, allowed: true, effects: []Effect{EffectError, ""}},
		{name: "digest required but absent", outcomes: []Outcome{{Policy: pol("a", "", "", "require"), Result: pass}}, denials: []string{"requires images by digest"}, effects: []Effect{EffectFail, ""}},
		{name: "digest required and present", hasDigest: true, outcomes: []Outcome{{Policy: pol("a", "", "", "require"), Result: pass}}, allowed: true, effects: []Effect{EffectPass, ""}},
		{name: "broken policy denies what it matches", outcomes: []Outcome{{Policy: broken, Err: broken.Err}}, denials: []string{"ClusterImagePolicy broken cannot be enforced"}, effects: []Effect{EffectFail, ""}},
		{name: "unmatched denies by default", denials: []string{"img did not match any image policies; unmatched images are denied (--unmatched=deny, the default)"}, effects: []Effect{EffectFail}},
		{name: "unmatched warn", unmatched: "warn", allowed: true, warnings: []string{"img did not match any image policies; admitted because signet runs with --unmatched=warn"}, effects: []Effect{EffectWarn}},
		{name: "unmatched allow", unmatched: "allow", allowed: true, reason: "img did not match any image policies; admitted because signet runs with --unmatched=allow", effects: []Effect{EffectSkip}},
		{name: "only an ImagePolicy matched", unmatched: "warn", outcomes: []Outcome{{Policy: imagePolicy, Result: pass}}, allowed: true, pin: true,
			warnings: []string{"img did not match any ClusterImagePolicy (an ImagePolicy only adds requirements to the cluster's); admitted because signet runs with --unmatched=warn"}, effects: []Effect{EffectPass, EffectWarn}},
		// No ClusterImagePolicy at all: every image is unmatched, and
		// --unmatched decides, saying so.
		{name: "no policy denies by default", noPolicy: true, denials: []string{"img did not match any image policies: no ClusterImagePolicy exists; unmatched images are denied (--unmatched=deny, the default)"}, effects: []Effect{EffectFail}},
		{name: "no policy, unmatched warn", noPolicy: true, unmatched: "warn", allowed: true,
			warnings: []string{"img did not match any image policies: no ClusterImagePolicy exists, so image policy enforcement was not applied; admitted because signet runs with --unmatched=warn"}, effects: []Effect{EffectWarn}},
		{name: "no policy, unmatched allow", noPolicy: true, unmatched: "allow", allowed: true,
			reason: "img did not match any image policies: no ClusterImagePolicy exists, so image policy enforcement was not applied; admitted because signet runs with --unmatched=allow", effects: []Effect{EffectSkip}},
		{name: "no ClusterImagePolicy, an ImagePolicy matched", noPolicy: true, outcomes: []Outcome{{Policy: imagePolicy, Result: pass}},
			denials: []string{"img did not match any ClusterImagePolicy: none exists (an ImagePolicy only adds requirements to the cluster's); unmatched images are denied"}, effects: []Effect{EffectPass, EffectFail}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A ClusterImagePolicy exists (selecting other images) unless
			// the case says none does.
			var policies []*Policy
			if !tc.noPolicy {
				policies = []*Policy{pol("elsewhere", "", "", "")}
			}
			snap, err := NewSnapshot(policies, Config{Unmatched: tc.unmatched})
			if err != nil {
				t.Fatal(err)
			}
			if want := len(policies); snap.ClusterPolicies() != want {
				t.Errorf("ClusterPolicies() = %d, want %d", snap.ClusterPolicies(), want)
			}
			v := snap.Combine("img", tc.hasDigest, tc.outcomes)
			if tc.reason != "" && v.Unmatched.Reason != tc.reason {
				t.Errorf("unmatched reason %q, want %q", v.Unmatched.Reason, tc.reason)
			}
			if v.Allowed != tc.allowed || v.Pin != tc.pin {
				t.Errorf("allowed=%v pin=%v, want %v %v (%+v)", v.Allowed, v.Pin, tc.allowed, tc.pin, v)
			}
			contains := func(list []string, want []string, what string) {
				joined := strings.Join(list, "\n")
				for _, w := range want {
					if !strings.Contains(joined, w) {
						t.Errorf("%s %q do not say %q", what, joined, w)
					}
				}
				if len(want) == 0 && len(list) > 0 {
					t.Errorf("unexpected %s: %q", what, joined)
				}
			}
			contains(v.Denials, tc.denials, "denials")
			contains(v.Warnings, tc.warnings, "warnings")
			var effects []Effect
			denies, warns := 0, 0
			for _, pv := range append(slices.Clone(v.Policies), v.Unmatched) {
				effects = append(effects, pv.Effect)
				if pv.Denies {
					denies++
				}
				if pv.Warns {
					warns++
				}
				if pv.Effect != "" && (pv.Effect == EffectPass) != (pv.Reason == "") {
					t.Errorf("effect %s with reason %q", pv.Effect, pv.Reason)
				}
			}
			if !slices.Equal(effects, tc.effects) {
				t.Errorf("effects %q, want %q", effects, tc.effects)
			}
			// Each policy's part accounts for the verdict's denials and
			// warnings, one each.
			if denies != len(v.Denials) || warns != len(v.Warnings) {
				t.Errorf("%d policies deny and %d warn; the verdict has %d denials and %d warnings", denies, warns, len(v.Denials), len(v.Warnings))
			}
		})
	}
}

func TestExempt(t *testing.T) {
	snap, err := NewSnapshot(nil, Config{ExcludedNamespaces: []string{"kube-system"}, NamespaceOptIn: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		t    Target
		want bool
	}{
		{Target{Namespace: "kube-system", NamespaceLabels: map[string]string{OptInLabel: "true"}}, true},
		{Target{Namespace: "team-a"}, true},
		{Target{Namespace: "team-a", NamespaceLabels: map[string]string{OptInLabel: "false"}}, true},
		{Target{Namespace: "team-a", NamespaceLabels: map[string]string{OptInLabel: "true"}}, false},
		{Target{}, false}, // cluster-scoped objects are always enforced
	} {
		if got, why := snap.Exempt(tc.t); got != tc.want {
			t.Errorf("%+v: exempt=%v (%s), want %v", tc.t, got, why, tc.want)
		}
	}
	if _, err := NewSnapshot(nil, Config{Unmatched: "ignore"}); err == nil {
		t.Error("an unknown unmatched setting was accepted")
	}
	_ = reference.Reference{}
}

// TestExemptOptInLabel: another opt-in label (seed 004's) replaces
// signet.dev/include, which then opts nothing in; the label must be a label
// key.
func TestExemptOptInLabel(t *testing.T) {
	const seed = "policy.sigstore.dev/include"
	snap, err := NewSnapshot(nil, Config{NamespaceOptIn: true, NamespaceOptInLabel: seed})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		labels map[string]string
		want   bool
		why    string
	}{
		{map[string]string{seed: "true"}, false, ""},
		{map[string]string{OptInLabel: "true"}, true, "namespace team-a has not opted in (label policy.sigstore.dev/include=true)"},
		{map[string]string{seed: "false"}, true, "namespace team-a has not opted in (label policy.sigstore.dev/include=true)"},
	} {
		got, why := snap.Exempt(Target{Namespace: "team-a", NamespaceLabels: tc.labels})
		if got != tc.want || why != tc.why {
			t.Errorf("%v: exempt=%v (%q), want %v (%q)", tc.labels, got, why, tc.want, tc.why)
		}
	}
	if got := snap.Config().NamespaceOptInLabel; got != seed {
		t.Errorf("NamespaceOptInLabel = %q, want %q", got, seed)
	}
	def, err := NewSnapshot(nil, Config{NamespaceOptIn: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := def.Config().NamespaceOptInLabel; got != OptInLabel {
		t.Errorf("default NamespaceOptInLabel = %q, want %q", got, OptInLabel)
	}
	for _, bad := range []string{"include=true", "-x/include", "policy.sigstore.dev/", "a/b/c"} {
		_, err := NewSnapshot(nil, Config{NamespaceOptIn: true, NamespaceOptInLabel: bad})
		if err == nil || !strings.Contains(err.Error(), "namespace opt-in label") {
			t.Errorf("label %q: err = %v, want it refused", bad, err)
		}
	}
}

// TestSignaturePullSecrets: source.signaturePullSecrets are read from
// signet's namespace for a ClusterImagePolicy ("" to the resolver) and from
// the policy's own namespace for an ImagePolicy; they need source.oci and
// must hold registry credentials.
func TestSignaturePullSecrets(t *testing.T) {
	dockercfg := map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"sigs.example.org":{"auth":"dTpw"}}}`)}
	res := fakeResolver{secrets: map[string]map[string][]byte{
		"/reader":        dockercfg,
		"team-a/reader":  {".dockerconfigjson": []byte(`{"auths":{"sigs.example.org":{"username":"team","password":"a"}}}`)},
		"/not-a-docker":  {"password": []byte("hunter2")},
		"/empty-config":  {".dockerconfigjson": []byte(`{"auths":{}}`)},
		"team-b/unused":  dockercfg,
		"/malformed-cfg": {".dockerconfigjson": []byte(`{`)},
	}}
	spec := func(oci string, secrets ...string) v1alpha1.ImagePolicySpec {
		src := &v1alpha1.Source{OCI: oci}
		for _, s := range secrets {
			src.SignaturePullSecrets = append(src.SignaturePullSecrets, v1alpha1.LocalObjectReference{Name: s})
		}
		return v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
			Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: pemKey(t)}, Source: src}},
		}
	}
	sigRepo := registry.Repository{Host: "sigs.example.org", Path: "acme/sigs"}

	p := CompileObject(t.Context(), Object{Kind: "ClusterImagePolicy", Name: "c", Spec: spec("sigs.example.org/acme/sigs", "reader")}, res)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	if got := p.SourceSecrets[sigRepo]; len(got) != 1 || string(got[0][".dockerconfigjson"]) != string(dockercfg[".dockerconfigjson"]) {
		t.Errorf("cluster policy: source secrets %v, want signet's reader", p.SourceSecrets)
	}
	p = CompileObject(t.Context(), Object{Kind: "ImagePolicy", Namespace: "team-a", Name: "n", Spec: spec("sigs.example.org/acme/sigs", "reader")}, res)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	if got := p.SourceSecrets[sigRepo]; len(got) != 1 || !strings.Contains(string(got[0][".dockerconfigjson"]), `"team"`) {
		t.Errorf("namespaced policy: source secrets %v, want team-a's own reader", p.SourceSecrets)
	}
	// A namespaced policy never reaches another namespace's Secrets.
	p = CompileObject(t.Context(), Object{Kind: "ImagePolicy", Namespace: "team-a", Name: "n", Spec: spec("sigs.example.org/acme/sigs", "unused")}, res)
	if p.Err == nil || !strings.Contains(p.Err.Error(), "spec.authorities[0].source.signaturePullSecrets[0]: Secret team-a/unused not found") {
		t.Errorf("other namespace's secret: %v", p.Err)
	}
	for _, tc := range []struct {
		oci, secret, want string
	}{
		{"", "reader", "spec.authorities[0].source.signaturePullSecrets: needs source.oci"},
		{"sigs.example.org/acme/sigs", "not-a-docker", "spec.authorities[0].source.signaturePullSecrets[0]: Secret not-a-docker: pull secret 1 has neither .dockerconfigjson nor .dockercfg"},
		{"sigs.example.org/acme/sigs", "empty-config", "spec.authorities[0].source.signaturePullSecrets[0]: Secret empty-config holds no registry credentials"},
		{"sigs.example.org/acme/sigs", "malformed-cfg", "spec.authorities[0].source.signaturePullSecrets[0]: Secret malformed-cfg: pull secret 1: .dockerconfigjson"},
	} {
		p := CompileObject(t.Context(), Object{Kind: "ClusterImagePolicy", Name: "c", Spec: spec(tc.oci, tc.secret)}, res)
		if p.Err == nil || !strings.Contains(p.Err.Error(), tc.want) {
			t.Errorf("oci %q secret %q: %v, want %q", tc.oci, tc.secret, p.Err, tc.want)
		}
	}
}

// TestHashFollowsSecretKeys: a policy's hash (the cache's key) changes when
// a key it reads from a Secret changes, not when nothing it verifies with does.
func TestHashFollowsSecretKeys(t *testing.T) {
	a, b := pemKey(t), pemKey(t)
	spec := v1alpha1.ImagePolicySpec{Images: []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", Key: &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: "keys", Namespace: "signet"}}}}}
	hash := func(key string) string {
		t.Helper()
		p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: spec},
			fakeResolver{secrets: map[string]map[string][]byte{"signet/keys": {"cosign.pub": []byte(key)}}})
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		return p.Hash
	}
	if first, again := hash(a), hash(a); first != again {
		t.Error("the same key gives different hashes")
	}
	if hash(a) == hash(b) {
		t.Error("a rotated key leaves the hash unchanged: results verified with the old key would stay cached")
	}
}

// versionedResolver serves every trust root at one version.
type versionedResolver struct{ version string }

func (versionedResolver) SecretKeys(context.Context, string, string) (map[string][]byte, error) {
	return nil, errors.New("no Secrets here")
}

func (r versionedResolver) TrustedMaterial(context.Context, string) (root.TrustedMaterial, error) {
	return WithVersion(&root.BaseTrustedMaterial{}, r.version), nil
}

// TestHashFollowsTrustMaterial: the hash of a policy that uses a trust root
// changes with that root's material; a policy that uses none keeps its hash
// (and its cached results) whatever the trust roots do.
func TestHashFollowsTrustMaterial(t *testing.T) {
	images := []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}}
	keyless := v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Name: "ci", Keyless: &v1alpha1.KeylessAuthority{
		Identities:   []v1alpha1.Identity{{Issuer: "https://token.actions.githubusercontent.com", Subject: "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"}},
		TrustRootRef: "airgap"}}}}
	keyOnly := v1alpha1.ImagePolicySpec{Images: images, Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: pemKey(t)}}}}
	hash := func(spec v1alpha1.ImagePolicySpec, version string) string {
		t.Helper()
		p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "p", Spec: spec}, versionedResolver{version})
		if p.Err != nil {
			t.Fatal(p.Err)
		}
		return p.Hash
	}
	if hash(keyless, "sha256:1") == hash(keyless, "sha256:2") {
		t.Error("a keyless policy's hash does not change with its trust root's material")
	}
	if first, again := hash(keyless, "sha256:1"), hash(keyless, "sha256:1"); first != again {
		t.Error("the same material gives different hashes")
	}
	if hash(keyOnly, "sha256:1") != hash(keyOnly, "sha256:2") {
		t.Error("a policy that uses no trust root changed hash with one")
	}
}

// TestImagePolicyKeySecretsStayInTheirNamespace: an ImagePolicy's
// key.secretRef reads its own namespace only (a namespace written there is
// refused, never honoured), and no message tells a policy author which keys
// a Secret holds.
func TestImagePolicyKeySecretsStayInTheirNamespace(t *testing.T) {
	key := pemKey(t)
	res := fakeResolver{secrets: map[string]map[string][]byte{
		"signet/keys":   {"cosign.pub": []byte(key), "ci-token": []byte("s3cr3t")},
		"team-b/keys":   {"cosign.pub": []byte(key), "deploy-password": []byte("hunter2")},
		"team-a/keys":   {"cosign.pub": []byte(key)},
		"team-a/tokens": {"registry-token": []byte("hunter2")},
	}}
	spec := func(ref v1alpha1.SecretReference) v1alpha1.ImagePolicySpec {
		return v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
			Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{SecretRef: &ref}}},
		}
	}
	for _, tc := range []struct {
		name       string
		ref        v1alpha1.SecretReference
		want       string // "" for a valid policy
		mustNotSay []string
	}{
		{"own namespace by default", v1alpha1.SecretReference{Name: "keys"}, "", nil},
		{"own namespace named", v1alpha1.SecretReference{Name: "keys", Namespace: "team-a"}, "", nil},
		{"another namespace", v1alpha1.SecretReference{Name: "keys", Namespace: "team-b", Key: "nope"},
			"spec.authorities[0].key.secretRef.namespace: an ImagePolicy reads Secrets of its own namespace only", []string{"deploy-password", "cosign.pub"}},
		{"signet's namespace", v1alpha1.SecretReference{Name: "keys", Namespace: "signet", Key: "nope"},
			"spec.authorities[0].key.secretRef.namespace: an ImagePolicy reads Secrets of its own namespace only", []string{"ci-token", "cosign.pub"}},
		{"missing key names none of the others", v1alpha1.SecretReference{Name: "tokens", Key: "cosign.pub"},
			`spec.authorities[0].key.secretRef.key: Secret tokens has no key "cosign.pub"`, []string{"registry-token", "hunter2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := CompileObject(t.Context(), Object{Kind: KindImagePolicy, Namespace: "team-a", Name: "n", Spec: spec(tc.ref)}, res)
			if tc.want == "" {
				if p.Err != nil {
					t.Fatalf("want a valid policy, got %v", p.Err)
				}
				return
			}
			if p.Err == nil || !strings.Contains(p.Err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", p.Err, tc.want)
			}
			for _, s := range tc.mustNotSay {
				if strings.Contains(p.Err.Error(), s) {
					t.Errorf("the message tells the policy's author %q: %v", s, p.Err)
				}
			}
		})
	}
	// A ClusterImagePolicy still reads where it says.
	p := CompileObject(t.Context(), Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.SecretReference{Name: "keys", Namespace: "team-b", Key: "cosign.pub"})}, res)
	if p.Err != nil {
		t.Fatalf("cluster policy reading team-b/keys: %v", p.Err)
	}
}

// TestPolicyPullSecrets: spec.pullSecrets are one named credential source
// each, read from the namespace a ClusterImagePolicy names (signet's by
// default, "" to the resolver) and from an ImagePolicy's own namespace
// only; a Secret missing or without registry credentials makes the policy
// invalid, naming the Secret and never its contents.
func TestPolicyPullSecrets(t *testing.T) {
	dockercfg := map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"auth":"dTpw"}}}`)}
	res := fakeResolver{secrets: map[string]map[string][]byte{
		"/reader":        dockercfg,
		"ops/reader":     dockercfg,
		"team-a/reader":  dockercfg,
		"/not-a-docker":  {"password": []byte("hunter2")},
		"/empty-config":  {".dockerconfigjson": []byte(`{"auths":{}}`)},
		"/malformed-cfg": {".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"auth":"hunter2`)},
	}}
	spec := func(refs ...v1alpha1.PullSecretReference) v1alpha1.ImagePolicySpec {
		return v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
			Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: pemKey(t)}}},
			PullSecrets: refs,
		}
	}
	for _, tc := range []struct {
		name    string
		obj     Object
		want    []string // source names
		invalid string
	}{
		{name: "cluster policy, signet's namespace", obj: Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.PullSecretReference{Name: "reader"})},
			want: []string{"ClusterImagePolicy c's pull secret reader"}},
		{name: "cluster policy, any namespace", obj: Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.PullSecretReference{Name: "reader"}, v1alpha1.PullSecretReference{Name: "reader", Namespace: "ops"})},
			want: []string{"ClusterImagePolicy c's pull secret reader", "ClusterImagePolicy c's pull secret ops/reader"}},
		{name: "namespaced policy, its own namespace", obj: Object{Kind: KindImagePolicy, Namespace: "team-a", Name: "n", Spec: spec(v1alpha1.PullSecretReference{Name: "reader"})},
			want: []string{"ImagePolicy team-a/n's pull secret team-a/reader"}},
		{name: "namespaced policy naming its own namespace", obj: Object{Kind: KindImagePolicy, Namespace: "team-a", Name: "n", Spec: spec(v1alpha1.PullSecretReference{Name: "reader", Namespace: "team-a"})},
			want: []string{"ImagePolicy team-a/n's pull secret team-a/reader"}},
		{name: "namespaced policy, another namespace", obj: Object{Kind: KindImagePolicy, Namespace: "team-a", Name: "n", Spec: spec(v1alpha1.PullSecretReference{Name: "reader", Namespace: "ops"})},
			invalid: `spec.pullSecrets[0].namespace: an ImagePolicy reads Secrets of its own namespace only: remove namespace "ops"`},
		{name: "missing", obj: Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.PullSecretReference{Name: "nope"})},
			invalid: "spec.pullSecrets[0]: Secret /nope not found"},
		{name: "not a pull secret", obj: Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.PullSecretReference{Name: "not-a-docker"})},
			invalid: "spec.pullSecrets[0]: Secret not-a-docker: pull secret 1 has neither .dockerconfigjson nor .dockercfg"},
		{name: "no credentials", obj: Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.PullSecretReference{Name: "empty-config"})},
			invalid: "spec.pullSecrets[0]: Secret empty-config holds no registry credentials"},
		{name: "malformed", obj: Object{Kind: KindClusterImagePolicy, Name: "c", Spec: spec(v1alpha1.PullSecretReference{Name: "malformed-cfg"})},
			invalid: "spec.pullSecrets[0]: Secret malformed-cfg: pull secret 1: .dockerconfigjson"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := CompileObject(t.Context(), tc.obj, res)
			if tc.invalid != "" {
				if p.Err == nil || !strings.Contains(p.Err.Error(), tc.invalid) {
					t.Fatalf("error %v, want %q", p.Err, tc.invalid)
				}
				if strings.Contains(p.Err.Error(), "hunter2") {
					t.Errorf("the error tells the Secret's contents: %v", p.Err)
				}
				return
			}
			if p.Err != nil {
				t.Fatal(p.Err)
			}
			var got []string
			for _, s := range p.PullSecrets {
				got = append(got, s.Name)
				if len(s.Secrets) != 1 || string(s.Secrets[0][".dockerconfigjson"]) != string(dockercfg[".dockerconfigjson"]) {
					t.Errorf("%s: Secret data %v", s.Name, s.Secrets)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
		})
	}
}
