package verify_test

import (
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// TestKeyEvidenceCarriedMustVerify: image evidence signed with a key goes
// through the checks signet verify-bundle makes of a bundle (checksFor):
// an RFC 3161 timestamp the bundle carries must verify, even when a log
// entry dates the signature; under insecureIgnoreTlog, a log entry the
// bundle carries must verify when the authority has trusted material to
// verify it with. Without trusted material, as policies with
// insecureIgnoreTlog compile, only the signature is checked. Keyless
// evidence is dated by the log, and a timestamp that does not verify is
// ignored (see TestLegacyAnnotationsTampered).
func TestKeyEvidenceCarriedMustVerify(t *testing.T) {
	s, other := sigstoretest.New(t), sigstoretest.New(t)
	key := newECKey(t)
	byKey := sigstoretest.SignOptions{Key: key}
	byKeyNoTSA := sigstoretest.SignOptions{Key: key, NoTimestamp: true}
	// stamped gives ev the timestamp of another signature, by a
	// timestamp authority nobody trusts.
	stamped := func(ev, donor registry.Evidence) registry.Evidence {
		return evidence(ev.Kind, ev.MediaType, withTimestampOf(t, ev.Content, donor.Content), nil)
	}
	noLog := func(ev registry.Evidence) registry.Evidence {
		return editBundle(t, ev, func(pb *protobundle.Bundle) { pb.VerificationMaterial.TlogEntries = nil })
	}
	policy := func(a verify.Authority) *verify.Compiled {
		return verifytest.Compile(t, verify.Policy{Name: "p", Authorities: []verify.Authority{a}})
	}
	logged, ignoring, keyOnly := policy(keyAuthority(t, &key.PublicKey, s, false)), policy(keyAuthority(t, &key.PublicKey, s, true)), policy(keyAuthority(t, &key.PublicKey, nil, true))
	badTSA := stamped(signature(t, s, bundled, digest, byKey), signature(t, other, bundled, digest, byKey))
	otherLog := signature(t, other, bundled, digest, byKeyNoTSA)

	t.Run("key, a timestamp that does not verify", func(t *testing.T) {
		res := run(t, logged, signature(t, s, bundled, digest, byKey))
		verifytest.WantVerified(t, res)
		kinds := map[string]bool{}
		for _, ts := range res.Authorities[0].Signatures[0].Timestamps {
			kinds[ts.Kind] = true
		}
		if ts := res.Authorities[0].Signatures[0].Timestamps; len(ts) != 2 || !kinds["Tlog"] || !kinds["TimestampAuthority"] {
			t.Errorf("timestamps %+v, want the log's and the TSA's", ts)
		}
		verifytest.WantDenied(t, run(t, logged, badTSA), "RFC 3161 timestamp of the signature does not verify with a trusted timestamp authority: ", verify.ErrTimestamp)
	})
	t.Run("keyless, a timestamp that does not verify", func(t *testing.T) {
		ev := stamped(signature(t, s, bundled, digest, release), signature(t, other, bundled, digest, release))
		res := run(t, policy(keyless(s, "release", releaseID)), ev)
		verifytest.WantVerified(t, res)
		if ts := res.Authorities[0].Signatures[0].Timestamps; len(ts) != 1 || ts[0].Kind != "Tlog" {
			t.Errorf("timestamps %+v, want only the log's", ts)
		}
	})
	t.Run("insecureIgnoreTlog, a log entry that does not verify", func(t *testing.T) {
		verifytest.WantDenied(t, run(t, ignoring, otherLog), "the log is not in the trusted root", verify.ErrTransparencyLog)
		res := run(t, keyOnly, otherLog)
		verifytest.WantVerified(t, res)
		if sig := res.Authorities[0].Signatures[0]; sig.LogIndex != nil {
			t.Errorf("log index %d reported for an entry nothing verified", *sig.LogIndex)
		}
	})
	t.Run("insecureIgnoreTlog, a log entry that verifies", func(t *testing.T) {
		res := run(t, ignoring, signature(t, s, bundled, digest, byKeyNoTSA))
		verifytest.WantVerified(t, res)
		if sig := res.Authorities[0].Signatures[0]; sig.LogIndex == nil || len(sig.Timestamps) != 1 || sig.Timestamps[0].Kind != "Tlog" {
			t.Errorf("credited as %+v, want the log's index and time", sig)
		}
	})
	t.Run("insecureIgnoreTlog, no log entry, a timestamp that does not verify", func(t *testing.T) {
		ev := noLog(badTSA)
		verifytest.WantDenied(t, run(t, ignoring, ev), "RFC 3161 timestamp of the signature does not verify with a trusted timestamp authority: ", verify.ErrTimestamp)
		verifytest.WantVerified(t, run(t, keyOnly, ev))
		verifytest.WantVerified(t, run(t, ignoring, noLog(signature(t, s, bundled, digest, byKeyNoTSA))))
	})
}
