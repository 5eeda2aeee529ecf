package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// The image of the tests.
const (
	repoName   = "registry.example/acme/app"
	provenance = "https://slsa.dev/provenance/v1"
)

var (
	// The keyless signers of the tests, and their identities.
	release   = sigstoretest.Release()
	mail      = sigstoretest.Mail()
	releaseID = verify.Identity{Issuer: sigstoretest.GitHubIssuer, Subject: sigstoretest.ReleaseWorkflow}
	mailID    = verify.Identity{Issuer: sigstoretest.MailIssuer, Subject: sigstoretest.MailSubject}
	imageRepo = registry.Repository{Host: "registry.example", Path: "acme/app"}
)

// format is how evidence is stored: legacy cosign layers or bundles.
type format string

const (
	legacy  format = "legacy"
	bundled format = "bundle"
)

var formats = []format{legacy, bundled}

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

var (
	digest      = digestOf("the image")
	otherDigest = digestOf("another image")
)

// signature is keyless evidence that digest is signed, as o says, stored in f.
func signature(t *testing.T, s *sigstoretest.Sigstore, f format, digest string, o sigstoretest.SignOptions) registry.Evidence {
	t.Helper()
	if f == legacy {
		payload := sigstoretest.SimpleSigning(repoName, digest)
		return evidence(registry.LegacySignature, sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, o))
	}
	statement := sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, repoName, digest)
	return evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.Bundle(t, statement, o), nil)
}

// attestation is a keyless in-toto attestation of digest stored in f.
func attestation(t *testing.T, s *sigstoretest.Sigstore, f format, digest, predicateType string, predicate any, o sigstoretest.SignOptions) registry.Evidence {
	t.Helper()
	statement := sigstoretest.Statement(t, predicateType, predicate, repoName, digest)
	if f == legacy {
		env, ann := s.AttestLegacy(t, statement, o)
		return evidence(registry.LegacyAttestation, sigstoretest.DSSEMediaType, env, ann)
	}
	return evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.Bundle(t, statement, o), nil)
}

func evidence(kind registry.Kind, mediaType string, content []byte, ann map[string]string) registry.Evidence {
	return registry.Evidence{
		Kind: kind, Repository: imageRepo, Manifest: digestOf(string(content)),
		MediaType: mediaType, Content: content, Annotations: ann,
	}
}

func keyless(s *sigstoretest.Sigstore, name string, ids ...verify.Identity) verify.Authority {
	return verify.Authority{Name: name, Keyless: &verify.Keyless{Identities: ids}, TrustedMaterial: s.TrustedRoot()}
}

func run(t *testing.T, p *verify.Compiled, ev ...registry.Evidence) verify.Result {
	t.Helper()
	return runWith(t, t.Context(), p, ev...)
}

func runWith(t *testing.T, ctx context.Context, p *verify.Compiled, ev ...registry.Evidence) verify.Result {
	t.Helper()
	ref, err := reference.Parse(repoName + "@" + digest)
	if err != nil {
		t.Fatal(err)
	}
	res := p.Verify(ctx, verify.Request{Image: ref, Digest: digest, Evidence: ev, ImageRepository: &imageRepo})
	// Every result a test here makes is read back exactly from its
	// encoding (the shared cache's; see TestEncodeResult).
	wantRoundTrip(t, res)
	return res
}

// TestKeylessSignatures runs every keyless signature case on evidence in
// both storage formats, built directly (no registry).
func TestKeylessSignatures(t *testing.T) {
	s := sigstoretest.New(t)
	other := sigstoretest.New(t) // a Sigstore nobody trusts
	policy := func(t *testing.T, ids ...verify.Identity) *verify.Compiled {
		return verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", ids...)}})
	}
	expired := release
	expired.CertNotBefore, expired.CertNotAfter = time.Now().Add(-2*time.Hour), time.Now().Add(-110*time.Minute)
	notYetValid := release
	notYetValid.CertNotBefore = time.Now().Add(time.Hour)
	noSCT := release
	noSCT.NoSCT = true
	forgedSET := release
	forgedSET.UntrustedRekorKey = true
	evil := sigstoretest.SignOptions{Identity: "https://evil.example/https://github.com/acme/x", Issuer: sigstoretest.GitHubIssuer}
	evilIssuer := sigstoretest.SignOptions{Identity: sigstoretest.ReleaseWorkflow, Issuer: "https://token.actions.githubusercontent.com.evil.example"}

	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			for _, tc := range []struct {
				name     string
				evidence func(t *testing.T) []registry.Evidence
				policy   *verify.Compiled
				kind     error  // nil: verified
				denial   string // what the denial says
			}{
				{"exact identity", sign(s, f, digest, release), policy(t, releaseID), nil, ""},
				{"regular expressions", sign(s, f, digest, release),
					policy(t, verify.Identity{IssuerRegExp: `https://token\.actions\.githubusercontent\.com`, SubjectRegExp: `https://github\.com/acme/.+`}), nil, ""},
				{"email identity", sign(s, f, digest, mail), policy(t, mailID), nil, ""},
				{"any of several identities", sign(s, f, digest, mail), policy(t, releaseID, mailID), nil, ""},
				{"wrong issuer", sign(s, f, digest, release),
					policy(t, verify.Identity{Issuer: "https://accounts.google.com", Subject: sigstoretest.ReleaseWorkflow}), verify.ErrIdentityMismatch,
					"certificate identity (issuer " + sigstoretest.GitHubIssuer + ", subject " + sigstoretest.ReleaseWorkflow + ") does not match identities [issuer https://accounts.google.com, subject " + sigstoretest.ReleaseWorkflow + "]"},
				{"wrong subject", sign(s, f, digest, mail), policy(t, releaseID), verify.ErrIdentityMismatch,
					"certificate identity (issuer " + sigstoretest.MailIssuer + ", subject " + sigstoretest.MailSubject + ") does not match identities"},
				{"subject regexp matches the whole subject", sign(s, f, digest, evil),
					policy(t, verify.Identity{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: "https://github.com/acme/.+"}), verify.ErrIdentityMismatch,
					"subject https://evil.example/https://github.com/acme/x) does not match identities [issuer " + sigstoretest.GitHubIssuer + ", subject ~https://github.com/acme/.+]"},
				{"issuer regexp matches the whole issuer", sign(s, f, digest, evilIssuer),
					policy(t, verify.Identity{IssuerRegExp: `https://token\.actions\.githubusercontent\.com`, Subject: sigstoretest.ReleaseWorkflow}), verify.ErrIdentityMismatch,
					"certificate identity (issuer https://token.actions.githubusercontent.com.evil.example, subject " + sigstoretest.ReleaseWorkflow + ") does not match"},
				{"certificate expired when signed", sign(s, f, digest, expired), policy(t, releaseID), verify.ErrTransparencyLog, "integrated time outside certificate validity"},
				{"certificate not yet valid when signed", sign(s, f, digest, notYetValid), policy(t, releaseID), verify.ErrTransparencyLog, "integrated time outside certificate validity"},
				{"no SCT", sign(s, f, digest, noSCT), policy(t, releaseID), verify.ErrUntrustedCertificate, "failed to verify signed certificate timestamp"},
				{"Rekor SET by another key", sign(s, f, digest, forgedSET), policy(t, releaseID), verify.ErrTransparencyLog, "no entry of a transparency log in the trusted root verified"},
				{"signed by an untrusted Sigstore", sign(other, f, digest, release), policy(t, releaseID), verify.ErrTransparencyLog, "no entry of a transparency log in the trusted root verified"},
				{"signature of another image", sign(s, f, otherDigest, release), policy(t, releaseID), verify.ErrDigestMismatch, "(copied from another image?)"},
				{"no evidence", func(*testing.T) []registry.Evidence { return nil }, policy(t, releaseID), verify.ErrNoSignature, "authority release: no signature found"},
				{"an attestation is not a signature", func(t *testing.T) []registry.Evidence {
					return []registry.Evidence{attestation(t, s, f, digest, provenance, nil, release)}
				}, policy(t, releaseID), verify.ErrNoSignature, "authority release: no signature found"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					res := run(t, tc.policy, tc.evidence(t)...)
					if tc.kind != nil {
						verifytest.WantDenied(t, res, "denied by policy keyless: authority release: ", tc.kind)
						verifytest.WantDenied(t, res, tc.denial, tc.kind)
						if ar := res.Authorities[0]; !errors.Is(ar.Err, tc.kind) || len(ar.Failures) > 0 && !errors.Is(ar.Failures[0].Err, tc.kind) {
							t.Errorf("authority %s: %v, failures %+v; want %q", ar.Name, ar.Err, ar.Failures, tc.kind)
						}
						return
					}
					verifytest.WantVerified(t, res)
				})
			}
		})
	}
}

func sign(s *sigstoretest.Sigstore, f format, digest string, o sigstoretest.SignOptions) func(t *testing.T) []registry.Evidence {
	return func(t *testing.T) []registry.Evidence { return []registry.Evidence{signature(t, s, f, digest, o)} }
}

// TestKeylessResult: a passing keyless signature is described by its
// storage, its certificate identity, its log index and its verified times.
func TestKeylessResult(t *testing.T) {
	s := sigstoretest.New(t)
	signedAt := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	for _, f := range formats {
		for _, tsa := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s, TSA %t", f, tsa), func(t *testing.T) {
				o := release
				o.IntegratedTime, o.NoTimestamp = signedAt, !tsa
				ev := signature(t, s, f, digest, o)
				res := run(t, verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}}), ev)
				verifytest.WantVerified(t, res)
				if res.Digest != digest || len(res.Authorities) != 1 || len(res.Authorities[0].Signatures) != 1 {
					t.Fatalf("result %+v", res)
				}
				sig := res.Authorities[0].Signatures[0]
				if sig.Issuer != sigstoretest.GitHubIssuer || sig.Subject != sigstoretest.ReleaseWorkflow || sig.Signer != "identity "+sigstoretest.GitHubIssuer+" "+sigstoretest.ReleaseWorkflow || sig.KeyFingerprint != "" {
					t.Errorf("signature credited to %+v", sig)
				}
				if sig.Format != ev.Kind.String() || sig.Artifact != ev.Manifest || sig.Source != ev.Source() {
					t.Errorf("signature source %q format %q artifact %q, want %q %q %q", sig.Source, sig.Format, sig.Artifact, ev.Source(), ev.Kind, ev.Manifest)
				}
				if sig.LogIndex == nil || *sig.LogIndex <= 1000 {
					t.Errorf("log index %v", sig.LogIndex)
				}
				want := map[string]string{"Tlog": sigstoretest.RekorURL}
				if tsa {
					want["TimestampAuthority"] = sigstoretest.TSAURL
				}
				if len(sig.Timestamps) != len(want) {
					t.Errorf("timestamps %+v, want %v", sig.Timestamps, want)
				}
				for _, ts := range sig.Timestamps {
					if uri, ok := want[ts.Kind]; !ok || ts.URI != uri || !ts.Time.Equal(signedAt) {
						t.Errorf("timestamp %+v, want one of %v at %s", ts, want, signedAt)
					}
				}
			})
		}
	}
}

// TestKeylessChainExpiredAtSigning: a leaf valid when it signed, issued by
// an intermediate that had expired by then, is denied.
func TestKeylessChainExpiredAtSigning(t *testing.T) {
	now := time.Now()
	s := sigstoretest.New(t, sigstoretest.WithIntermediateValidity(now.Add(-24*time.Hour), now.Add(-time.Hour)))
	p := verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			verifytest.WantDenied(t, run(t, p, signature(t, s, f, digest, release)), "failed to verify leaf certificate: leaf certificate verification failed", verify.ErrUntrustedCertificate)
		})
	}
}

func TestKeylessInsecureIgnoreSCT(t *testing.T) {
	s := sigstoretest.New(t)
	o := release
	o.NoSCT = true
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			a := keyless(s, "release", releaseID)
			a.InsecureIgnoreSCT = true
			verifytest.WantVerified(t, run(t, verifytest.Compile(t, verify.Policy{Authorities: []verify.Authority{a}}), signature(t, s, f, digest, o)))
		})
	}
}

// TestKeylessThreshold: N of M authorities counts distinct identities.
func TestKeylessThreshold(t *testing.T) {
	s := sigstoretest.New(t)
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			byRelease, byMail := signature(t, s, f, digest, release), signature(t, s, f, digest, mail)
			// Another certificate for the same identity is the same signer.
			again := signature(t, s, f, digest, release)
			sameIdentity := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
				keyless(s, "exact", releaseID),
				keyless(s, "regexp", verify.Identity{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: `https://github\.com/acme/app/.+`}),
			}})
			res := run(t, sameIdentity, byRelease, again, byMail)
			verifytest.WantDenied(t, res, "denied by policy two: 1 of 2 required authorities passed with distinct signers", verify.ErrThreshold)
			if !res.Authorities[0].Passed || !res.Authorities[1].Passed {
				t.Errorf("each authority alone passes: %+v", res.Authorities)
			}
			if n := len(res.Authorities[0].Signatures); n != 1 {
				t.Errorf("%d signatures for one signer, want 1", n)
			}

			twoIdentities := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
				keyless(s, "release", releaseID), keyless(s, "mail", mailID),
			}})
			verifytest.WantVerified(t, run(t, twoIdentities, byRelease, byMail))
			verifytest.WantDenied(t, run(t, twoIdentities, byRelease, again), "authority mail: 2 signatures checked, none verified by identities [issuer "+sigstoretest.MailIssuer+", subject "+sigstoretest.MailSubject+"]",
				verify.ErrThreshold, verify.ErrIdentityMismatch)

			// One authority accepting both identities can be credited to
			// either, so the other takes the second signer.
			either := verifytest.Compile(t, verify.Policy{Name: "two", Threshold: 2, Authorities: []verify.Authority{
				keyless(s, "either", releaseID, mailID), keyless(s, "release", releaseID),
			}})
			verifytest.WantVerified(t, run(t, either, byRelease, byMail))
		})
	}
}

// TestKeylessAttestations: in-toto statements by a keyless signer, with
// CEL conditions.
func TestKeylessAttestations(t *testing.T) {
	s := sigstoretest.New(t)
	predicate := map[string]any{"builder": map[string]any{"id": sigstoretest.ReleaseWorkflow}, "buildType": "https://example.org/ci"}
	policy := func(t *testing.T, id verify.Identity, cond ...string) *verify.Compiled {
		a := keyless(s, "release", id)
		a.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: provenance, Conditions: cond}}
		return verifytest.Compile(t, verify.Policy{Name: "att", Authorities: []verify.Authority{a}})
	}
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			att := attestation(t, s, f, digest, provenance, predicate, release)
			res := run(t, policy(t, releaseID, `predicate.builder.id.startsWith("https://github.com/acme/")`, `subject.exists(s, s.name == "`+repoName+`")`), att)
			verifytest.WantVerified(t, res)
			if sig := res.Authorities[0].Signatures[0]; sig.PredicateType != provenance || sig.Subject != sigstoretest.ReleaseWorkflow || sig.LogIndex == nil {
				t.Errorf("attestation credited as %+v", sig)
			}
			verifytest.WantDenied(t, run(t, policy(t, releaseID, `predicate.buildType == "https://evil.example/ci"`), att),
				`attestation provenance: 1 statement checked, none verified by identities [issuer `+sigstoretest.GitHubIssuer+`, subject `+sigstoretest.ReleaseWorkflow+`]: condition "predicate.buildType == \"https://evil.example/ci\"" is false`, verify.ErrConditionFailed)
			verifytest.WantDenied(t, run(t, policy(t, mailID), att), "certificate identity (issuer "+sigstoretest.GitHubIssuer+", subject "+sigstoretest.ReleaseWorkflow+") does not match identities [issuer "+sigstoretest.MailIssuer, verify.ErrIdentityMismatch)
			verifytest.WantDenied(t, run(t, policy(t, releaseID), attestation(t, s, f, otherDigest, provenance, predicate, release)), "signed statement is for another digest (copied from another image?)", verify.ErrDigestMismatch)
			verifytest.WantDenied(t, run(t, policy(t, releaseID), attestation(t, s, f, digest, "https://example.org/other", predicate, release)), "attestation provenance: no statement found", verify.ErrNoAttestation)
			// A signature is not an attestation.
			verifytest.WantDenied(t, run(t, policy(t, releaseID), signature(t, s, f, digest, release)), "attestation provenance: no statement found", verify.ErrNoAttestation)
			o := release
			o.NoSCT = true
			verifytest.WantDenied(t, run(t, policy(t, releaseID), attestation(t, s, f, digest, provenance, predicate, o)), "failed to verify signed certificate timestamp", verify.ErrUntrustedCertificate)
		})
	}
}

// TestAttestationConditionsAtDeadline: past the decision's deadline, an
// authority whose attestation conditions could not be evaluated is
// undecided: never passed, and not denied either. The result is undecided
// when such authorities could make up the threshold, and decided by the
// others otherwise.
func TestAttestationConditionsAtDeadline(t *testing.T) {
	s := sigstoretest.New(t)
	predicate := map[string]any{"builder": map[string]any{"id": sigstoretest.ReleaseWorkflow}}
	att := attestation(t, s, bundled, digest, provenance, predicate, release)
	byMail := signature(t, s, bundled, digest, mail)
	provenanceBy := keyless(s, "provenance", releaseID)
	provenanceBy.Attestations = []verify.Attestation{{PredicateType: provenance, Conditions: []string{`predicate.builder.id == "` + sigstoretest.ReleaseWorkflow + `"`}}}
	provenanceAll := provenanceBy
	provenanceAll.Attestations = []verify.Attestation{{PredicateType: provenance, Conditions: provenanceBy.Attestations[0].Conditions, All: true}}
	signedBy := keyless(s, "mail", mailID)

	expired, cancel := context.WithDeadline(t.Context(), time.Unix(0, 0))
	defer cancel()
	outcome := func(res verify.Result) string {
		switch {
		case res.Verified:
			return "verified"
		case errors.Is(res.Err, verify.ErrUndecided) && !errors.Is(res.Err, verify.ErrDenied):
			return "undecided"
		case errors.Is(res.Err, verify.ErrDenied):
			return "denied"
		}
		return fmt.Sprintf("neither verified, denied nor undecided: %v", res.Err)
	}
	for _, tc := range []struct {
		name        string
		ctx         context.Context
		authorities []verify.Authority
		threshold   int
		evidence    []registry.Evidence
		want        string
	}{
		{"before the deadline", t.Context(), []verify.Authority{provenanceBy}, 1, []registry.Evidence{att}, "verified"},
		{"past the deadline", expired, []verify.Authority{provenanceBy}, 1, []registry.Evidence{att}, "undecided"},
		{"past the deadline, match all", expired, []verify.Authority{provenanceAll}, 1, []registry.Evidence{att}, "undecided"},
		{"another authority passes", expired, []verify.Authority{provenanceBy, signedBy}, 1, []registry.Evidence{att, byMail}, "verified"},
		{"the undecided one could make up the threshold", expired, []verify.Authority{provenanceBy, signedBy}, 2, []registry.Evidence{att, byMail}, "undecided"},
		{"the threshold cannot be met", expired, []verify.Authority{provenanceBy, signedBy}, 2, []registry.Evidence{att}, "denied"},
		{"no statement at all", expired, []verify.Authority{provenanceBy}, 1, []registry.Evidence{byMail}, "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := verifytest.Compile(t, verify.Policy{Name: "att", Authorities: tc.authorities, Threshold: tc.threshold})
			res := runWith(t, tc.ctx, p, tc.evidence...)
			if got := outcome(res); got != tc.want {
				t.Fatalf("%s, want %s: %v (%+v)", got, tc.want, res.Err, res.Authorities)
			}
			if tc.want == "undecided" {
				if !errors.Is(res.Err, verify.ErrDeadline) || !errors.Is(res.Err, context.DeadlineExceeded) {
					t.Errorf("undecided result is not of kind ErrDeadline wrapping the deadline: %v", res.Err)
				}
				if ar := res.Authorities[0]; !errors.Is(ar.Err, verify.ErrDeadline) {
					t.Errorf("authority error %v, want ErrDeadline", ar.Err)
				}
				if ar := res.Authorities[0]; !ar.Undecided || ar.Passed || !strings.Contains(ar.Reason, "could not decide") {
					t.Errorf("authority result %+v, want undecided with a reason", ar)
				}
			}
		})
	}
}

// TestConditionBudget: the conditions of one verification share a budget
// (verify.CELBudget): once it is spent, the statements left are not
// evaluated, and an attestation no statement met is undecided with a
// reason naming the budget. Many large statements cost a bounded amount of
// work, rather than all the work until the deadline on every admission.
func TestConditionBudget(t *testing.T) {
	s := sigstoretest.New(t)
	// predicate.l.all(x, x == 1) costs 5 per element (see
	// TestRealisticConditionsWithinCostLimit), so each statement costs
	// about 5*n and the budget covers about 20 of them.
	const n, statements, perElement = 99_000, 24, 5
	l := make([]int, n)
	for i := range l {
		l[i] = 1
	}
	var ev []registry.Evidence
	for range statements {
		ev = append(ev, attestation(t, s, bundled, digest, provenance, map[string]any{"l": l, "ok": false}, release))
	}
	a := keyless(s, "provenance", releaseID)
	a.Attestations = []verify.Attestation{{PredicateType: provenance, Conditions: []string{`predicate.l.all(x, x == 1) && predicate.ok`}}}
	res := run(t, verifytest.Compile(t, verify.Policy{Name: "budget", Authorities: []verify.Authority{a}}), ev...)
	budget := fmt.Sprintf("over the budget of %d", verify.CELBudget)
	if res.Verified || !errors.Is(res.Err, verify.ErrBudget) || !errors.Is(res.Err, verify.ErrUndecided) || errors.Is(res.Err, verify.ErrDenied) || !strings.Contains(res.Err.Error(), budget) {
		t.Fatalf("verified=%v, %v; want undecided of kind ErrBudget, naming the budget", res.Verified, res.Err)
	}
	if !res.Authorities[0].Undecided {
		t.Errorf("authority not undecided: %+v", res.Authorities[0].Reason)
	}

	refused := 0
	for _, f := range res.Authorities[0].Failures {
		switch {
		case errors.Is(f.Err, verify.ErrBudget):
			refused++
		case !errors.Is(f.Err, verify.ErrConditionFailed):
			t.Errorf("%s: %s", f.Source, f.Reason)
		}
	}
	evaluated := statements - refused
	if most := verify.CELBudget/(perElement*n) + 1; refused == 0 || evaluated > most {
		t.Errorf("%d statements evaluated, %d refused; want at most %d evaluated (the budget %d at %d per statement)", evaluated, refused, most, verify.CELBudget, perElement*n)
	}
}

// TestLegacyAttestationRFC3161Timestamp: cosign's RFC 3161 timestamp on a
// legacy attestation is over the layer content (the DSSE envelope JSON), not
// over the signature as in a bundle (cosign's VerifyRFC3161Timestamp: "For
// attestations, the Base64Signature is not set, therefore we rely on the
// signed payload"). It must be verified as such and reported.
func TestLegacyAttestationRFC3161Timestamp(t *testing.T) {
	s := sigstoretest.New(t)
	a := keyless(s, "release", releaseID)
	a.Attestations = []verify.Attestation{{PredicateType: provenance}}
	res := run(t, verifytest.Compile(t, verify.Policy{Authorities: []verify.Authority{a}}), attestation(t, s, legacy, digest, provenance, nil, release))
	verifytest.WantVerified(t, res)
	var kinds []string
	for _, ts := range res.Authorities[0].Signatures[0].Timestamps {
		kinds = append(kinds, ts.Kind)
	}
	if len(kinds) != 2 {
		t.Errorf("verified timestamps %v, want the log's and the TSA's", kinds)
	}
}

// TestLegacyAttestationTimestampSwapped: a timestamp taken from another
// attestation does not stamp this envelope.
func TestLegacyAttestationTimestampSwapped(t *testing.T) {
	s := sigstoretest.New(t)
	a := keyless(s, "release", releaseID)
	a.Attestations = []verify.Attestation{{PredicateType: provenance}}
	policy := verifytest.Compile(t, verify.Policy{Authorities: []verify.Authority{a}})
	ev := attestation(t, s, legacy, digest, provenance, nil, release)
	other := attestation(t, s, legacy, digest, provenance, map[string]string{"other": "statement"}, release)
	ev.Annotations[sigstoretest.AnnotationRFC3161] = other.Annotations[sigstoretest.AnnotationRFC3161]
	verifytest.WantDenied(t, run(t, policy, ev), "RFC 3161 timestamp of the attestation does not verify with a trusted timestamp authority", verify.ErrTimestamp)
}

// TestLegacyAnnotationsTampered: the unsigned annotations of a legacy
// layer are checked against each other and the trust root.
func TestLegacyAnnotationsTampered(t *testing.T) {
	s := sigstoretest.New(t)
	policy := verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	donor := signature(t, s, legacy, digest, release) // another signature by the same identity
	for _, tc := range []struct {
		name   string
		mutate func(ann map[string]string)
		denial string
	}{
		{"certificate of another signature", func(ann map[string]string) {
			ann[sigstoretest.AnnotationCertificate] = donor.Annotations[sigstoretest.AnnotationCertificate]
		}, "transparency log certificate does not match"},
		{"Rekor entry of another signature", func(ann map[string]string) {
			ann[sigstoretest.AnnotationBundle] = donor.Annotations[sigstoretest.AnnotationBundle]
		}, "transparency log signature does not match"},
		{"no Rekor entry", func(ann map[string]string) { delete(ann, sigstoretest.AnnotationBundle) }, "no entry of a transparency log in the trusted root verified"},
		{"a TSA timestamp does not replace the log", func(ann map[string]string) {
			delete(ann, sigstoretest.AnnotationBundle)
		}, "no entry of a transparency log in the trusted root verified"},
		{"no certificate", func(ann map[string]string) { delete(ann, sigstoretest.AnnotationCertificate) }, "transparency log certificate does not match"},
		{"signature of another payload", func(ann map[string]string) {
			ann[sigstoretest.AnnotationSignature] = donor.Annotations[sigstoretest.AnnotationSignature]
		}, "transparency log signature does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := signature(t, s, legacy, digest, release)
			tc.mutate(ev.Annotations)
			verifytest.WantDenied(t, run(t, policy, ev), tc.denial, verify.ErrTransparencyLog)
		})
	}
	t.Run("timestamp of another signature is not reported", func(t *testing.T) {
		ev := signature(t, s, legacy, digest, release)
		ev.Annotations[sigstoretest.AnnotationRFC3161] = donor.Annotations[sigstoretest.AnnotationRFC3161]
		res := run(t, policy, ev)
		verifytest.WantVerified(t, res)
		if ts := res.Authorities[0].Signatures[0].Timestamps; len(ts) != 1 || ts[0].Kind != "Tlog" {
			t.Errorf("timestamps %+v, want only the log's", ts)
		}
	})
	t.Run("the chain annotation is not trusted", func(t *testing.T) {
		// A chain from another Sigstore in the annotation does not make its
		// certificates trusted.
		other := sigstoretest.New(t)
		ev := signature(t, other, legacy, digest, release)
		ev.Annotations[sigstoretest.AnnotationBundle] = donor.Annotations[sigstoretest.AnnotationBundle]
		verifytest.WantDenied(t, run(t, policy, ev), "transparency log", verify.ErrTransparencyLog)
	})
}

// TestMalformedEvidenceReason: evidence that cannot be used at all is not
// "no signature": the denial says a signature was found and why it was
// unusable (failureReason's "no usable signature found (...)").
func TestMalformedEvidenceReason(t *testing.T) {
	s := sigstoretest.New(t)
	policy := verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	notPEM := signature(t, s, legacy, digest, release)
	notPEM.Annotations[sigstoretest.AnnotationCertificate] = "garbage"
	for _, tc := range []struct {
		name   string
		ev     registry.Evidence
		reason string
	}{
		{"message-signature bundle", evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.MessageBundle(t, []byte(digest), release), nil),
			"bundle holds a message signature, which cannot bind an image digest"},
		{"certificate annotation not PEM", notPEM, "certificate annotation is not a PEM certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := run(t, policy, tc.ev)
			if f := res.Authorities[0].Failures; len(f) != 1 || !errors.Is(f[0].Err, verify.ErrMalformed) || !strings.HasPrefix(f[0].Reason, tc.reason) {
				t.Errorf("failures %+v, want one of malformed evidence saying %q", f, tc.reason)
			}
			verifytest.WantDenied(t, res, "authority release: no usable signature found ("+tc.ev.Source()+": "+tc.reason, verify.ErrNoSignature, verify.ErrMalformed)
		})
	}
}

// TestKeylessSignedIdentity: the docker-reference (legacy) or subject name
// (bundle) the keyless signer wrote is checked on request.
func TestKeylessSignedIdentity(t *testing.T) {
	s := sigstoretest.New(t)
	for _, f := range formats {
		t.Run(string(f), func(t *testing.T) {
			p := verifytest.Compile(t, verify.Policy{Name: "keyless", SignedIdentity: verify.MatchRepository, Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
			verifytest.WantVerified(t, run(t, p, signature(t, s, f, digest, release)))
			var ev registry.Evidence
			if f == legacy {
				payload := sigstoretest.SimpleSigning("registry.example/acme/other", digest)
				ev = evidence(registry.LegacySignature, sigstoretest.SimpleSigningMediaType, payload, s.SignLegacy(t, payload, release))
			} else {
				statement := sigstoretest.Statement(t, sigstoretest.CosignSignPredicateType, nil, "registry.example/acme/other", digest)
				ev = evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.Bundle(t, statement, release), nil)
			}
			verifytest.WantDenied(t, run(t, p, ev), "signed for repository registry.example/acme/other, not "+repoName, verify.ErrSignedIdentity)
		})
	}
}

func TestCompileKeyless(t *testing.T) {
	s := sigstoretest.New(t)
	for _, tc := range []struct {
		name string
		a    verify.Authority
		want string
	}{
		{"no trust root", verify.Authority{Keyless: &verify.Keyless{Identities: []verify.Identity{releaseID}}}, "keyless: no trust root"},
		{"no trust root for the log", verify.Authority{Keys: []verify.PublicKey{{}}},
			"key: a trust root is needed to verify transparency log entries (or set insecureIgnoreTlog for signatures made without a log)"},
		{"no identity", keyless(s, "a"), "keyless.identities: at least one identity is required"},
		{"no tlog", func() verify.Authority { a := keyless(s, "a", releaseID); a.InsecureIgnoreTlog = true; return a }(),
			"insecureIgnoreTlog: only key-based signatures may be accepted without a transparency log"},
		{"issuer twice", keyless(s, "a", verify.Identity{Issuer: sigstoretest.GitHubIssuer, IssuerRegExp: ".*", Subject: sigstoretest.ReleaseWorkflow}), "issuer and issuerRegExp are both set"},
		{"no subject", keyless(s, "a", verify.Identity{Issuer: sigstoretest.GitHubIssuer}), "no subject"},
		{"bad regexp", keyless(s, "a", verify.Identity{Issuer: sigstoretest.GitHubIssuer, SubjectRegExp: "("}), "subjectRegExp: invalid regular expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify.Compile(verify.Policy{Authorities: []verify.Authority{tc.a}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error saying %q, got %v", tc.want, err)
			}
			if noRoot := strings.HasPrefix(tc.name, "no trust root"); errors.Is(err, verify.ErrNoTrustRoot) != noRoot {
				t.Errorf("errors.Is(%q, ErrNoTrustRoot) is %v", err, !noRoot)
			}
		})
	}
}
