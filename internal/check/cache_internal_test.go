package check

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/signet-dev/signet/internal/verify"
)

// TestCacheKeepsResultsIntact: what the cache returns equals what was put,
// though it is stored compacted; the result put is not changed; expiry
// follows the lifetimes.
func TestCacheKeepsResultsIntact(t *testing.T) {
	logIndex := int64(7)
	result := func() verify.Result {
		return verify.Result{Policy: "p", Image: "r.example/app:v1", Digest: "sha256:ab", Verified: true, Threshold: 1,
			Authorities: []verify.AuthorityResult{{Name: "ci", Passed: true, Signatures: []verify.Signature{{
				Source: "legacy signature r.example/app@sha256:cd layer 0", Format: "legacy signature", Artifact: "sha256:cd", Signer: "key SHA256:ef",
				KeyFingerprint: "SHA256:ef", Issuer: "https://issuer", Subject: "release", LogIndex: &logIndex,
				Timestamps: []verify.Timestamp{{Kind: "tlog", URI: "https://rekor", Time: time.Unix(1, 0).UTC()}},
			}}}, {Name: "other", Reason: "no signature found", Failures: []verify.Failure{{Source: "s", Reason: "r"}}}},
		}
	}
	now := time.Unix(1000, 0)
	c := NewCache(time.Minute, time.Second, 10)
	c.now = func() time.Time { return now }
	put := result()
	c.put(cacheKey{digest: "sha256:ab", subject: "r/app", policy: "h", trust: "t"}, put)
	denied := verify.Result{Policy: "p", Digest: "sha256:00", Err: errors.New("denied")}
	c.put(cacheKey{digest: "sha256:00", subject: "r/app", policy: "h", trust: "t"}, denied)
	if diff := cmp.Diff(result(), put); diff != "" {
		t.Errorf("the result put changed (-before +after):\n%s", diff)
	}
	got, ok := c.get(cacheKey{digest: "sha256:ab", subject: "r/app", policy: "h", trust: "t"})
	if !ok {
		t.Fatal("not cached")
	}
	// The cache keeps facts about the digest; the reader fills in the
	// reference it asked about.
	want := result()
	want.Image = ""
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cached result (-want +got):\n%s", diff)
	}
	if got, ok := c.get(cacheKey{digest: "sha256:00", subject: "r/app", policy: "h", trust: "t"}); !ok || got.Err == nil {
		t.Errorf("denial not cached: %+v %v", got, ok)
	} else if diff := cmp.Diff(denied, got, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("cached denial (-want +got):\n%s", diff)
	}
	now = now.Add(2 * time.Second)
	if _, ok := c.get(cacheKey{digest: "sha256:00", subject: "r/app", policy: "h", trust: "t"}); ok {
		t.Error("a denial outlived the negative lifetime")
	}
	if _, ok := c.get(cacheKey{digest: "sha256:ab", subject: "r/app", policy: "h", trust: "t"}); !ok {
		t.Error("a verified result expired before the positive lifetime")
	}
	now = now.Add(time.Minute)
	if _, ok := c.get(cacheKey{digest: "sha256:ab", subject: "r/app", policy: "h", trust: "t"}); ok {
		t.Error("a verified result outlived the positive lifetime")
	}
}
