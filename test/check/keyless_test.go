package check_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// The keyless signers of the tests.
var (
	release = sigstoretest.Release()
	mail    = sigstoretest.Mail()
)

// keylessWorld is a registry and a local Sigstore (Fulcio, CT log, Rekor,
// TSA) whose certificates, SCTs, log entries and timestamps are real.
type keylessWorld struct {
	*world
	s *sigstoretest.Sigstore
	// expiredCA is a Sigstore whose Fulcio intermediate expired an hour ago.
	expiredCA *sigstoretest.Sigstore
}

// TestKeyless verifies keyless signatures and attestations in both storage
// formats (legacy annotations on .sig/.att layers; Sigstore bundles as OCI
// referrers, through the API or the tag schema) in every registry kind, and
// denies, with the right reason, every way a keyless signature can be wrong.
func TestKeyless(t *testing.T) {
	s := sigstoretest.New(t)
	expiredCA := sigstoretest.New(t, sigstoretest.WithIntermediateValidity(time.Now().Add(-24*time.Hour), time.Now().Add(-time.Hour)))
	for regName, start := range registries(t) {
		t.Run(regName, func(t *testing.T) {
			t.Parallel()
			w := &keylessWorld{world: newWorld(t, start(t), nil, harness.KeyPair{}, harness.KeyPair{}), s: s, expiredCA: expiredCA}
			for _, f := range harness.Formats {
				t.Run(f.String(), func(t *testing.T) { w.run(t, f) })
			}
		})
	}
}

// sign attaches a keyless signature of img in format f, made as o says.
func (w *keylessWorld) sign(t *testing.T, img registrytest.Image, f harness.Format, o sigstoretest.SignOptions) {
	t.Helper()
	repo, _, _ := strings.Cut(img.Ref, "@")
	if f == harness.Legacy {
		payload := sigstoretest.SimpleSigning(repo, img.Digest)
		w.reg.AttachLegacy(t, img, ".sig", sigstoretest.SimpleSigningMediaType, payload, w.s.SignLegacy(t, payload, o))
		return
	}
	statement := sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, repo, img.Digest)
	w.reg.AttachBundle(t, img, w.s.Bundle(t, statement, o))
}

// attest attaches a keyless in-toto attestation of img in format f.
func (w *keylessWorld) attest(t *testing.T, img registrytest.Image, f harness.Format, predicateType string, predicate any, o sigstoretest.SignOptions) {
	t.Helper()
	repo, _, _ := strings.Cut(img.Ref, "@")
	statement := sigstoretest.Statement(t, predicateType, predicate, repo, img.Digest)
	if f == harness.Legacy {
		env, ann := w.s.AttestLegacy(t, statement, o)
		w.reg.AttachLegacy(t, img, ".att", sigstoretest.DSSEMediaType, env, ann)
		return
	}
	w.reg.AttachBundle(t, img, w.s.Bundle(t, statement, o))
}

// authority trusts ids with this Sigstore's root.
func (w *keylessWorld) authority(name string, ids ...verify.Identity) verify.Authority {
	return verify.Authority{Name: name, Keyless: &verify.Keyless{Identities: ids}, TrustedMaterial: w.s.TrustedRoot()}
}

func (w *keylessWorld) policy(t *testing.T, ids ...verify.Identity) *verify.Compiled {
	return verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{w.authority("release", ids...)}})
}

var (
	releaseID = verify.Identity{Issuer: sigstoretest.GitHubIssuer, Subject: sigstoretest.ReleaseWorkflow}
	mailID    = verify.Identity{Issuer: sigstoretest.MailIssuer, Subject: sigstoretest.MailSubject}
)

func (w *keylessWorld) run(t *testing.T, f harness.Format) {
	repo := "keyless-" + f.String()
	push := func(t *testing.T, tag string) registrytest.Image { return w.reg.PushRandomImage(t, repo, tag) }

	t.Run("right identity, exact and by regular expression", func(t *testing.T) {
		img := push(t, "right")
		w.sign(t, img, f, release)
		res := w.check(t, img.Tag, w.policy(t, releaseID), check.Options{})
		verifytest.WantVerified(t, res)
		wantKeylessSignature(t, res.Authorities[0], sigstoretest.GitHubIssuer, sigstoretest.ReleaseWorkflow, 2)
		verifytest.WantVerified(t, w.check(t, img.Ref, w.policy(t, verify.Identity{
			IssuerRegExp: `https://token\.actions\.githubusercontent\.com`, SubjectRegExp: `https://github\.com/acme/.+`,
		}), check.Options{}))
	})
	t.Run("email identity without a timestamp authority", func(t *testing.T) {
		img := push(t, "email")
		o := mail
		o.NoTimestamp = true
		w.sign(t, img, f, o)
		res := w.check(t, img.Ref, w.policy(t, mailID), check.Options{})
		verifytest.WantVerified(t, res)
		// The log's integrated time is the only time of signing.
		wantKeylessSignature(t, res.Authorities[0], sigstoretest.MailIssuer, sigstoretest.MailSubject, 1)
	})
	t.Run("wrong issuer", func(t *testing.T) {
		img := push(t, "wrong-issuer")
		w.sign(t, img, f, release)
		res := w.check(t, img.Ref, w.policy(t, verify.Identity{Issuer: "https://accounts.google.com", Subject: sigstoretest.ReleaseWorkflow}), check.Options{})
		verifytest.WantDenied(t, res, "certificate identity (issuer "+sigstoretest.GitHubIssuer+", subject "+sigstoretest.ReleaseWorkflow+") does not match identities [issuer https://accounts.google.com, subject "+sigstoretest.ReleaseWorkflow+"]", verify.ErrIdentityMismatch)
	})
	t.Run("wrong subject", func(t *testing.T) {
		img := push(t, "wrong-subject")
		w.sign(t, img, f, release)
		other := "https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main"
		res := w.check(t, img.Ref, w.policy(t, verify.Identity{Issuer: sigstoretest.GitHubIssuer, Subject: other}), check.Options{})
		verifytest.WantDenied(t, res, "subject "+sigstoretest.ReleaseWorkflow+") does not match identities [issuer "+sigstoretest.GitHubIssuer+", subject "+other+"]", verify.ErrIdentityMismatch)
	})
	t.Run("subject that merely contains the expected one", func(t *testing.T) {
		img := push(t, "contains")
		evil := "https://evil.example/https://github.com/acme/x"
		w.sign(t, img, f, sigstoretest.SignOptions{Identity: evil, Issuer: sigstoretest.GitHubIssuer})
		res := w.check(t, img.Ref, w.policy(t, verify.Identity{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: "https://github.com/acme/.+"}), check.Options{})
		verifytest.WantDenied(t, res, "subject "+evil+") does not match identities [issuer "+sigstoretest.GitHubIssuer+", subject ~https://github.com/acme/.+]", verify.ErrIdentityMismatch)
	})
	t.Run("certificate expired when signed", func(t *testing.T) {
		img := push(t, "expired")
		o := release
		o.CertNotBefore, o.CertNotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-110*time.Minute)
		w.sign(t, img, f, o)
		verifytest.WantDenied(t, w.check(t, img.Ref, w.policy(t, releaseID), check.Options{}), "integrated time outside certificate validity", verify.ErrTransparencyLog)
	})
	t.Run("chain expired when signed", func(t *testing.T) {
		img := push(t, "expired-chain")
		signer := &keylessWorld{world: w.world, s: w.expiredCA}
		signer.sign(t, img, f, release)
		verifytest.WantDenied(t, w.check(t, img.Ref, signer.policy(t, releaseID), check.Options{}), "failed to verify leaf certificate: leaf certificate verification failed", verify.ErrUntrustedCertificate)
	})
	t.Run("missing SCT", func(t *testing.T) {
		img := push(t, "no-sct")
		o := release
		o.NoSCT = true
		w.sign(t, img, f, o)
		verifytest.WantDenied(t, w.check(t, img.Ref, w.policy(t, releaseID), check.Options{}), "failed to verify signed certificate timestamp", verify.ErrUntrustedCertificate)
		a := w.authority("release", releaseID)
		a.InsecureIgnoreSCT = true
		verifytest.WantVerified(t, w.check(t, img.Ref, verifytest.Compile(t, verify.Policy{Name: "no-sct", Authorities: []verify.Authority{a}}), check.Options{}))
	})
	t.Run("any of several identities", func(t *testing.T) {
		img := push(t, "several")
		w.sign(t, img, f, mail)
		res := w.check(t, img.Ref, w.policy(t, releaseID, mailID), check.Options{})
		verifytest.WantVerified(t, res)
		wantKeylessSignature(t, res.Authorities[0], sigstoretest.MailIssuer, sigstoretest.MailSubject, 2)
	})
	t.Run("Rekor SET signed by another key", func(t *testing.T) {
		img := push(t, "forged-set")
		o := release
		o.UntrustedRekorKey = true
		w.sign(t, img, f, o)
		verifytest.WantDenied(t, w.check(t, img.Ref, w.policy(t, releaseID), check.Options{}), "not enough verified log entries from transparency log", verify.ErrTransparencyLog)
	})
	t.Run("attestation with a condition", func(t *testing.T) {
		img := push(t, "attested")
		const pt = "https://slsa.dev/provenance/v1"
		w.attest(t, img, f, pt, map[string]any{"builder": map[string]any{"id": sigstoretest.ReleaseWorkflow}, "buildType": "https://example.org/ci"}, release)
		att := func(cond string) *verify.Compiled {
			a := w.authority("release", releaseID)
			a.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: pt, Conditions: []string{cond}}}
			return verifytest.Compile(t, verify.Policy{Name: "att", Authorities: []verify.Authority{a}})
		}
		res := w.check(t, img.Ref, att(`predicate.builder.id.startsWith("https://github.com/acme/")`), check.Options{})
		verifytest.WantVerified(t, res)
		timestamps := 2
		if f == harness.Legacy {
			// cosign's RFC 3161 timestamp of a legacy attestation is over
			// the envelope; internal/verify's
			// TestLegacyAttestationRFC3161Timestamp covers it.
			timestamps = anyTimestamps
		}
		sig := wantKeylessSignature(t, res.Authorities[0], sigstoretest.GitHubIssuer, sigstoretest.ReleaseWorkflow, timestamps)
		if sig.PredicateType != pt {
			t.Errorf("verified statement has predicate type %q, want %q", sig.PredicateType, pt)
		}
		verifytest.WantDenied(t, w.check(t, img.Ref, att(`predicate.buildType == "https://evil.example/ci"`), check.Options{}),
			`attestation provenance: 1 statement checked, none verified by identities [issuer `+sigstoretest.GitHubIssuer+`, subject `+sigstoretest.ReleaseWorkflow+`]: condition "predicate.buildType == \"https://evil.example/ci\"" is false`, verify.ErrConditionFailed)
		// An attestation by the right identity is not a signature.
		verifytest.WantDenied(t, w.check(t, img.Ref, w.policy(t, releaseID), check.Options{}), "no signature found", verify.ErrNoSignature)

		// Past the decision's deadline the condition is not evaluated: the
		// result is undecided (onError's business), not a denial.
		ref, err := reference.Parse(img.Ref)
		if err != nil {
			t.Fatal(err)
		}
		fetched, err := check.Fetch(t.Context(), w.rc, ref, check.Options{})
		if err != nil {
			t.Fatal(err)
		}
		expired, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
		defer cancel()
		res = check.Evaluate(expired, fetched, att(`predicate.builder.id.startsWith("https://github.com/acme/")`))
		if res.Verified || !check.IsUndecided(res.Err) || errors.Is(res.Err, verify.ErrDenied) || !errors.Is(res.Err, context.DeadlineExceeded) {
			t.Errorf("past the deadline: verified=%v, %v; want undecided, wrapping the deadline", res.Verified, res.Err)
		}
	})
	t.Run("threshold counts distinct identities", func(t *testing.T) {
		img := push(t, "threshold")
		w.sign(t, img, f, release)
		sameSigner := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
			w.authority("exact", releaseID),
			w.authority("regexp", verify.Identity{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: `https://github\.com/acme/app/.+`}),
		}})
		res := w.check(t, img.Ref, sameSigner, check.Options{})
		verifytest.WantDenied(t, res, "denied by policy two: 1 of 2 required authorities passed with distinct signers", verify.ErrThreshold)
		if !res.Authorities[0].Passed || !res.Authorities[1].Passed {
			t.Errorf("each authority alone should pass: %+v", res.Authorities)
		}

		w.sign(t, img, f, mail)
		twoSigners := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
			w.authority("release", releaseID), w.authority("mail", mailID),
		}})
		res = w.check(t, img.Ref, twoSigners, check.Options{})
		verifytest.WantVerified(t, res)
		wantKeylessSignature(t, res.Authorities[0], sigstoretest.GitHubIssuer, sigstoretest.ReleaseWorkflow, 2)
		wantKeylessSignature(t, res.Authorities[1], sigstoretest.MailIssuer, sigstoretest.MailSubject, 2)
		// The same two signatures do not meet a policy whose two
		// authorities only one of them satisfies.
		verifytest.WantDenied(t, w.check(t, img.Ref, sameSigner, check.Options{}), "1 of 2 required authorities passed with distinct signers", verify.ErrThreshold)
	})
}

// anyTimestamps asks wantKeylessSignature for the log's time and does not
// count the others.
const anyTimestamps = -1

// wantKeylessSignature checks that the authority passed with a signature
// naming the certificate identity, a log index and the verified times of
// signing (the log's integrated time, and the TSA's when there is one).
func wantKeylessSignature(t *testing.T, ar verify.AuthorityResult, issuer, subject string, timestamps int) verify.Signature {
	t.Helper()
	if !ar.Passed || len(ar.Signatures) == 0 {
		t.Fatalf("authority %s did not pass: %+v", ar.Name, ar)
	}
	sig := ar.Signatures[0]
	if sig.Issuer != issuer || sig.Subject != subject {
		t.Errorf("signature credited to issuer %q subject %q, want %q %q", sig.Issuer, sig.Subject, issuer, subject)
	}
	if want := "identity " + issuer + " " + subject; sig.Signer != want {
		t.Errorf("signer %q, want %q", sig.Signer, want)
	}
	if sig.KeyFingerprint != "" {
		t.Errorf("a keyless signature names key %s", sig.KeyFingerprint)
	}
	if sig.LogIndex == nil || *sig.LogIndex <= 1000 {
		t.Errorf("log index %v, want the local log's index", sig.LogIndex)
	}
	kinds := map[string]bool{}
	for _, ts := range sig.Timestamps {
		kinds[ts.Kind] = true
		if d := time.Since(ts.Time); d < 0 || d > 10*time.Minute {
			t.Errorf("%s timestamp %s is not the time of signing", ts.Kind, ts.Time)
		}
	}
	if (timestamps != anyTimestamps && len(sig.Timestamps) != timestamps) || !kinds["Tlog"] || (timestamps == 2 && !kinds["TimestampAuthority"]) {
		t.Errorf("timestamps %+v, want %d (the log's and the TSA's)", sig.Timestamps, timestamps)
	}
	return sig
}
