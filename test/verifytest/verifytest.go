// Package verifytest compiles verification policies and checks verification
// results in tests, in Go only: a result is verified, or it is a denial (not
// an undecided result) whose message says why and whose kinds are exactly the
// expected ones. Unit tests of internal/verify and tests of decisions under
// test/ share it.
package verifytest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/verify"
)

// Compile compiles p, failing the test if it does not compile.
func Compile(t testing.TB, p verify.Policy) *verify.Compiled {
	t.Helper()
	c, err := verify.Compile(p)
	if err != nil {
		t.Fatalf("compiling policy: %v", err)
	}
	return c
}

// WantVerified fails the test unless res is verified, without an error.
func WantVerified(t testing.TB, res verify.Result) {
	t.Helper()
	if !res.Verified || res.Err != nil {
		t.Fatalf("want verified, got %v (%+v)", res.Err, res.Authorities)
	}
}

// WantDenied fails the test unless res is a denial (verify.ErrDenied, not
// verify.ErrUndecided) of exactly the given kinds (its own and its causes',
// see verify.Codes), at least one, whose message says reason.
func WantDenied(t testing.TB, res verify.Result, reason string, kinds ...error) {
	t.Helper()
	if res.Verified {
		t.Fatalf("want denied (%s), got verified: %+v", reason, res.Authorities)
	}
	if !errors.Is(res.Err, verify.ErrDenied) || errors.Is(res.Err, verify.ErrUndecided) {
		t.Fatalf("want a denial, got %v", res.Err)
	}
	if len(kinds) == 0 {
		t.Fatal("WantDenied needs the kinds of the denial")
	}
	for _, k := range kinds {
		if !errors.Is(res.Err, k) || !errors.Is(k, verify.ErrDenied) {
			t.Fatalf("denial %q is not a denial of kind %q", res.Err, k)
		}
	}
	if want, got := verify.Codes(errors.Join(kinds...)), verify.Codes(res.Err); !slices.Equal(want, got) {
		t.Fatalf("denial %q has kinds %v, want %v", res.Err, got, want)
	}
	if !strings.Contains(res.Err.Error(), reason) {
		t.Fatalf("denial %q does not say %q", res.Err, reason)
	}
}
