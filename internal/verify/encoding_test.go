package verify_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
)

// TestEncodeResult: a result read back from its encoding decides the same
// as the original: the same fields, and errors of the same text, structure
// and kinds at every level, whatever wraps them. (Every result the other
// tests of this package make goes through wantRoundTrip too.)
func TestEncodeResult(t *testing.T) {
	logIndex := int64(42)
	deadline := &verify.Undecided{Kind: verify.ErrDeadline, Err: fmt.Errorf("evaluating condition %q: %w", "x > 1", context.DeadlineExceeded)}
	noSig := &verify.Denial{Kind: verify.ErrNoSignature, Reason: "no signature found", Causes: []*verify.Denial{{Kind: verify.ErrIdentityMismatch, Reason: "identity"}, {Kind: verify.ErrDigestMismatch, Reason: "digest"}}}
	for _, tc := range []struct {
		name string
		r    verify.Result
	}{
		{"empty", verify.Result{}},
		{"verified", verify.Result{Policy: "p", Digest: "sha256:ab", Verified: true, Threshold: 1, Authorities: []verify.AuthorityResult{{
			Name: "ci", Passed: true, Signatures: []verify.Signature{{
				Source: "legacy signature r/app@sha256:cd layer 0", Format: "legacy signature", Artifact: "sha256:cd", Signer: "key SHA256:ef",
				KeyFingerprint: "SHA256:ef", Issuer: "https://issuer", Subject: "release", PredicateType: "https://slsa.dev/provenance/v1", LogIndex: &logIndex,
				Timestamps: []verify.Timestamp{{Kind: "tlog", URI: "https://rekor", Time: time.Unix(1_700_000_000, 123).UTC()}}, Notes: []string{"n"},
			}},
		}}}},
		{"threshold denial with an undecided authority", verify.Result{Policy: "p", Digest: "sha256:ab", Threshold: 3,
			Err: &verify.Denial{Kind: verify.ErrThreshold, Reason: "denied by policy p: ...", Causes: []*verify.Denial{noSig}},
			Authorities: []verify.AuthorityResult{
				{Name: "a", Passed: true},
				{Name: "b", Reason: "no signature found", Err: noSig, Failures: []verify.Failure{
					{Source: "s1", Reason: "identity", Err: noSig.Causes[0]},
					{Source: "s2", Reason: deadline.Error(), Err: deadline},
				}},
				{Name: "c", Undecided: true, Reason: deadline.Error(), Err: deadline},
			}}},
		{"platform", verify.Result{Policy: "p", Err: fmt.Errorf("platform linux/arm64 (sha256:11): %w", noSig)}},
		{"joined", verify.Result{Policy: "p", Err: errors.Join(noSig, errors.New("plain"), fmt.Errorf("fetching: %w", registry.ErrRateLimited))}},
		{"undecided of a registry kind", verify.Result{Policy: "p", Err: &verify.Undecided{Kind: registry.ErrForbidden, Err: &registry.StatusError{URL: "https://r/v2/", StatusCode: 403}}}},
		{"a library's error matching a kind", verify.Result{Policy: "p", Err: verify.AsUndecided(fmt.Errorf("policy p: %w", timeoutError{}))}},
		{"a bare kind", verify.Result{Policy: "p", Err: verify.ErrStatic}},
	} {
		t.Run(tc.name, func(t *testing.T) { wantRoundTrip(t, tc.r) })
	}
}

// TestEncodeResultRefusesWhatItCannotSay: a kind without a name would be
// read back as something else; the result is not encoded.
func TestEncodeResultRefusesWhatItCannotSay(t *testing.T) {
	for _, r := range []verify.Result{
		{Err: &verify.Denial{Kind: errors.New("a kind of its own"), Reason: "r"}},
		{Err: &verify.Undecided{Kind: errors.New("a kind of its own"), Err: errors.New("e")}},
		{Authorities: []verify.AuthorityResult{{Failures: []verify.Failure{{Err: &verify.Denial{Causes: []*verify.Denial{nil}}}}}}},
	} {
		if b, err := verify.EncodeResult(r); err == nil {
			t.Errorf("EncodeResult(%+v) = %s, want an error", r, b)
		}
	}
	for _, data := range []string{``, `{`, `{"r":{"authorities":[{}]}}`, `{"e":{"s":"verify.NoSuchKind"}}`, `{"e":{"u":{}}}`, `{"e":{"m":"x","w":[{"m":"a"},{"m":"b"}]}}`} {
		if r, err := verify.DecodeResult([]byte(data)); err == nil {
			t.Errorf("DecodeResult(%q) = %+v, want an error", data, r)
		}
	}
}

// timeoutError is a library's error that says it is a deadline.
type timeoutError struct{}

func (timeoutError) Error() string        { return "i/o timeout" }
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// wantRoundTrip fails t unless r read back from its encoding is r, errors
// compared by shape (errorShape).
func wantRoundTrip(t *testing.T, r verify.Result) {
	t.Helper()
	data, err := verify.EncodeResult(r)
	if err != nil {
		t.Fatalf("encoding %+v: %v", r, err)
	}
	got, err := verify.DecodeResult(data)
	if err != nil {
		t.Fatalf("decoding %s: %v", data, err)
	}
	if diff := cmp.Diff(r, got, cmp.Comparer(func(a, b error) bool { return cmp.Equal(errorShape(a), errorShape(b)) })); diff != "" {
		t.Errorf("read back (-want +got):\n%s", diff)
		t.Logf("want %v\n got %v", errorShape(r.Err), errorShape(got.Err))
	}
	if diff := cmp.Diff(errorShape(r.Err), errorShape(got.Err)); diff != "" {
		t.Errorf("error read back (-want +got):\n%s", diff)
	}
}

// shape is what can be told of an error: its text, the kinds it matches,
// whether it is a *Denial or *Undecided (errors.As) with which kind, and
// the same of what it wraps or sums up.
type shape struct {
	Text      string
	Codes     []string
	Matches   []string
	DenialOf  string
	Undecided string
	Wraps     []shape
	Causes    []shape
}

var allKinds = map[string]error{
	"Denied": verify.ErrDenied, "Undecided": verify.ErrUndecided,
	"NoSignature": verify.ErrNoSignature, "NoAttestation": verify.ErrNoAttestation, "Malformed": verify.ErrMalformed,
	"BadSignature": verify.ErrBadSignature, "UntrustedCertificate": verify.ErrUntrustedCertificate,
	"IdentityMismatch": verify.ErrIdentityMismatch, "DigestMismatch": verify.ErrDigestMismatch,
	"SignedIdentity": verify.ErrSignedIdentity, "ConditionFailed": verify.ErrConditionFailed,
	"TransparencyLog": verify.ErrTransparencyLog, "Timestamp": verify.ErrTimestamp, "Static": verify.ErrStatic,
	"Threshold": verify.ErrThreshold, "NoTrustRoot": verify.ErrNoTrustRoot, "Budget": verify.ErrBudget, "Deadline": verify.ErrDeadline,
	"registry.NotFound": registry.ErrNotFound, "registry.Limit": registry.ErrLimit, "registry.DigestMismatch": registry.ErrDigestMismatch,
	"registry.Unreachable": registry.ErrUnreachable, "registry.Unauthorized": registry.ErrUnauthorized, "registry.Forbidden": registry.ErrForbidden,
	"registry.RateLimited": registry.ErrRateLimited, "registry.Malformed": registry.ErrMalformed,
	"context.Canceled": context.Canceled, "context.DeadlineExceeded": context.DeadlineExceeded,
}

func errorShape(err error) *shape {
	if err == nil {
		return nil
	}
	s := &shape{Text: err.Error(), Codes: verify.Codes(err)}
	for n, k := range allKinds {
		if errors.Is(err, k) {
			s.Matches = append(s.Matches, n)
		}
	}
	slices.Sort(s.Matches)
	var d *verify.Denial
	if errors.As(err, &d) {
		s.DenialOf = fmt.Sprint(d.Kind)
		for _, c := range d.Causes {
			s.Causes = append(s.Causes, *errorShape(c))
		}
	}
	var u *verify.Undecided
	if errors.As(err, &u) {
		s.Undecided = fmt.Sprint(u.Kind)
	}
	switch w := err.(type) { //nolint:errorlint // the node's own wrapping
	case interface{ Unwrap() error }:
		if inner := w.Unwrap(); inner != nil {
			s.Wraps = append(s.Wraps, *errorShape(inner))
		}
	case interface{ Unwrap() []error }:
		for _, inner := range w.Unwrap() {
			s.Wraps = append(s.Wraps, *errorShape(inner))
		}
	}
	return s
}
