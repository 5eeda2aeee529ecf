package check

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/verify"
)

// TestCacheKeepsNoUndecidedResult: a result that could not be decided
// (attestation conditions stopped at the decision's deadline) is not a fact
// about the digest, so it is never cached, not even as a denial; a definite
// denial still is.
func TestCacheKeepsNoUndecidedResult(t *testing.T) {
	stopped := verify.AsUndecided(fmt.Errorf("policy p: authority ci: attestation slsa: evaluating condition %q: %w", "c", context.DeadlineExceeded))
	for _, tc := range []struct {
		name   string
		result verify.Result
		cached bool
	}{
		{"deadline", verify.Result{Policy: "p", Digest: "sha256:00", Err: stopped}, false},
		{"undecided platform", verify.Result{Policy: "p", Digest: "sha256:00", Err: fmt.Errorf("platform linux/amd64 (sha256:11): %w", stopped)}, false},
		{"denial", verify.Result{Policy: "p", Digest: "sha256:00", Err: &verify.Denial{Reason: "denied by policy p"}}, true},
		{"verified", verify.Result{Policy: "p", Digest: "sha256:00", Verified: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCache(time.Minute, time.Minute, 10)
			var k cacheKey
			c.put(k, tc.result)
			got, ok := c.get(k)
			if ok != tc.cached {
				t.Fatalf("cached = %v, want %v (%+v)", ok, tc.cached, got)
			}
			if ok && !errors.Is(got.Err, tc.result.Err) {
				t.Errorf("cached error %v, want %v", got.Err, tc.result.Err)
			}
		})
	}
}
