package verify_test

import (
	"crypto/ecdsa"
	"strings"
	"testing"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/verifytest"
)

// v2Bundle is evidence stored as a bundle whose signature is logged in the
// Rekor v2 log: an image signature (the cosign sign predicate) or, with a
// predicate type, an attestation.
func v2Bundle(t *testing.T, s *sigstoretest.Sigstore, predicateType string, o sigstoretest.SignOptions) registry.Evidence {
	t.Helper()
	o.RekorV2 = true
	statement := sigstoretest.Statement(t, predicateType, nil, repoName, digest)
	return evidence(registry.SigstoreBundle, sigstoretest.BundleMediaType, s.Bundle(t, statement, o), nil)
}

// editBundle rewrites the bundle of ev with edit.
func editBundle(t *testing.T, ev registry.Evidence, edit func(*protobundle.Bundle)) registry.Evidence {
	t.Helper()
	var pb protobundle.Bundle
	if err := protojson.Unmarshal(ev.Content, &pb); err != nil {
		t.Fatal(err)
	}
	edit(&pb)
	raw, err := protojson.Marshal(&pb)
	if err != nil {
		t.Fatal(err)
	}
	return evidence(ev.Kind, ev.MediaType, raw, nil)
}

func logIndexOf(t *testing.T, ev registry.Evidence) int64 {
	t.Helper()
	var idx int64 = -1
	editBundle(t, ev, func(pb *protobundle.Bundle) { idx = pb.GetVerificationMaterial().GetTlogEntries()[0].GetLogIndex() })
	return idx
}

// TestRekorV2Keyless: a keyless image signature and attestation whose log
// entry is in a Rekor v2 log verify by the entry's inclusion proof and
// signed checkpoint; the only verified time is the RFC 3161 timestamp, and
// the result names it and the entry's index.
func TestRekorV2Keyless(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	signedAt := time.Now().Add(-2 * time.Hour).Truncate(time.Second)
	o := release
	o.IntegratedTime = signedAt
	sigPolicy := verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	att := keyless(s, "release", releaseID)
	att.Attestations = []verify.Attestation{{Name: "provenance", PredicateType: provenance}}
	attPolicy := verifytest.Compile(t, verify.Policy{Name: "att", Authorities: []verify.Authority{att}})

	for _, tc := range []struct {
		name          string
		predicateType string
		policy        *verify.Compiled
	}{
		{"image signature", sigstoretest.CosignSignPredicateType, sigPolicy},
		{"attestation", provenance, attPolicy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := v2Bundle(t, s, tc.predicateType, o)
			res := run(t, tc.policy, ev)
			verifytest.WantVerified(t, res)
			sig := res.Authorities[0].Signatures[0]
			if sig.Subject != sigstoretest.ReleaseWorkflow || sig.Issuer != sigstoretest.GitHubIssuer {
				t.Errorf("credited to %+v", sig)
			}
			if want := logIndexOf(t, ev); sig.LogIndex == nil || *sig.LogIndex != want {
				t.Errorf("log index %v, want %d", sig.LogIndex, want)
			}
			if len(sig.Timestamps) != 1 || sig.Timestamps[0].Kind != "TimestampAuthority" || sig.Timestamps[0].URI != sigstoretest.TSAURL || !sig.Timestamps[0].Time.Equal(signedAt) {
				t.Errorf("timestamps %+v, want only the TSA's at %s", sig.Timestamps, signedAt)
			}

			// The wrong identity is still the wrong identity.
			verifytest.WantDenied(t, run(t, verifytest.Compile(t, verify.Policy{Name: "mail", Authorities: []verify.Authority{keyless(s, "mail", mailID)}}), v2Bundle(t, s, sigstoretest.CosignSignPredicateType, o)),
				"does not match identities [issuer "+sigstoretest.MailIssuer, verify.ErrIdentityMismatch)
		})
	}
}

// TestRekorV2NeedsSignedTimestamp: a Rekor v2 entry has no integrated time
// and no SET, so without an RFC 3161 timestamp nothing dates the signature
// and the short-lived certificate cannot be checked: denied, saying so.
func TestRekorV2NeedsSignedTimestamp(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	o := release
	o.NoTimestamp = true
	p := verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	res := run(t, p, v2Bundle(t, s, sigstoretest.CosignSignPredicateType, o))
	verifytest.WantDenied(t, res, "no verified time of signing: the signature has neither a transparency log entry with an integrated time (a Rekor v1 SET) nor an RFC 3161 timestamp from a trusted timestamp authority (Rekor v2 entries require one)", verify.ErrTimestamp)
	if strings.Contains(res.Err.Error(), "threshold not met") {
		t.Errorf("denial %q repeats sigstore-go's threshold text", res.Err)
	}

	// A timestamp by an authority nobody trusts does not date it either,
	// and the denial says why the timestamp did not count.
	other := sigstoretest.New(t, sigstoretest.WithRekorV2())
	stamped := v2Bundle(t, other, sigstoretest.CosignSignPredicateType, release)
	ev := editBundle(t, v2Bundle(t, s, sigstoretest.CosignSignPredicateType, o), func(pb *protobundle.Bundle) {
		var theirs protobundle.Bundle
		if err := protojson.Unmarshal(stamped.Content, &theirs); err != nil {
			t.Fatal(err)
		}
		pb.VerificationMaterial.TimestampVerificationData = theirs.VerificationMaterial.TimestampVerificationData
	})
	res = run(t, p, ev)
	verifytest.WantDenied(t, res, "(Rekor v2 entries require one); the timestamp did not verify: ", verify.ErrTimestamp)
}

// TestRekorV2Tampered: the entry is only as good as its inclusion proof
// and checkpoint; each forged or edited part is denied.
func TestRekorV2Tampered(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	p := verifytest.Compile(t, verify.Policy{Name: "keyless", Authorities: []verify.Authority{keyless(s, "release", releaseID)}})
	forged := release
	forged.UntrustedRekorKey = true
	// A few entries first, so that proofs have several hashes.
	for range 3 {
		v2Bundle(t, s, sigstoretest.CosignSignPredicateType, release)
	}
	tlog := []error{verify.ErrTransparencyLog}
	for _, tc := range []struct {
		name   string
		ev     func(t *testing.T) registry.Evidence
		denial string
		kinds  []error
	}{
		{"checkpoint signed by another key", func(t *testing.T) registry.Evidence {
			return v2Bundle(t, s, sigstoretest.CosignSignPredicateType, forged)
		}, "unverified checkpoint signature", tlog},
		{"checkpoint root hash edited", edit(s, func(pb *protobundle.Bundle) {
			cp := pb.VerificationMaterial.TlogEntries[0].InclusionProof.Checkpoint
			lines := strings.SplitN(cp.Envelope, "\n", 4)
			lines[2] = strings.Repeat("A", len(lines[2])-1) + "="
			cp.Envelope = strings.Join(lines, "\n")
		}), "unverified checkpoint signature", tlog},
		{"checkpoint tree size edited", edit(s, func(pb *protobundle.Bundle) {
			cp := pb.VerificationMaterial.TlogEntries[0].InclusionProof.Checkpoint
			lines := strings.SplitN(cp.Envelope, "\n", 4)
			lines[1] = "1000000"
			cp.Envelope = strings.Join(lines, "\n")
		}), "unverified checkpoint signature", tlog},
		{"inclusion proof hash flipped", edit(s, func(pb *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries[0].InclusionProof.Hashes[0][0] ^= 1
		}), "transparency log inclusion proof does not lead to the root hash of the signed checkpoint", tlog},
		{"inclusion proof hash removed", edit(s, func(pb *protobundle.Bundle) {
			ip := pb.VerificationMaterial.TlogEntries[0].InclusionProof
			ip.Hashes = ip.Hashes[1:]
		}), "verifying inclusion: wrong proof size", tlog},
		{"entry moved to another index", edit(s, func(pb *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries[0].LogIndex--
		}), "transparency log inclusion proof does not lead to the root hash of the signed checkpoint", tlog},
		{"entry of another signature", func(t *testing.T) registry.Evidence {
			donor := v2Bundle(t, s, sigstoretest.CosignSignPredicateType, release)
			var theirs protobundle.Bundle
			if err := protojson.Unmarshal(donor.Content, &theirs); err != nil {
				t.Fatal(err)
			}
			return editBundle(t, v2Bundle(t, s, sigstoretest.CosignSignPredicateType, release), func(pb *protobundle.Bundle) {
				pb.VerificationMaterial.TlogEntries = theirs.VerificationMaterial.TlogEntries
			})
		}, "transparency log inclusion proof does not lead to the root hash of the signed checkpoint", tlog},
		{"no inclusion proof", edit(s, func(pb *protobundle.Bundle) {
			pb.VerificationMaterial.TlogEntries[0].InclusionProof = nil
		}), "inclusion proof missing in bundle", []error{verify.ErrNoSignature, verify.ErrMalformed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verifytest.WantDenied(t, run(t, p, tc.ev(t)), tc.denial, tc.kinds...)
		})
	}
}

func edit(s *sigstoretest.Sigstore, f func(*protobundle.Bundle)) func(t *testing.T) registry.Evidence {
	return func(t *testing.T) registry.Evidence {
		return editBundle(t, v2Bundle(t, s, sigstoretest.CosignSignPredicateType, release), f)
	}
}

// TestRekorV2Key: a key-signed image signature logged in a Rekor v2 log
// verifies with the key and the trusted root, dated by its RFC 3161
// timestamp; another key, or no timestamp, is denied.
func TestRekorV2Key(t *testing.T) {
	s := sigstoretest.New(t, sigstoretest.WithRekorV2())
	key, other := sigstoretest.NewKey(t), sigstoretest.NewKey(t)
	policy := func(k *ecdsa.PrivateKey) *verify.Compiled {
		pk, err := verify.NewPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		return verifytest.Compile(t, verify.Policy{Name: "key", Authorities: []verify.Authority{{Name: "ci", Keys: []verify.PublicKey{pk}, TrustedMaterial: s.TrustedRoot()}}})
	}
	res := run(t, policy(key), v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Key: key}))
	verifytest.WantVerified(t, res)
	if sig := res.Authorities[0].Signatures[0]; sig.KeyFingerprint == "" || sig.LogIndex == nil || len(sig.Timestamps) != 1 || sig.Timestamps[0].Kind != "TimestampAuthority" {
		t.Errorf("credited as %+v", sig)
	}
	verifytest.WantDenied(t, run(t, policy(other), v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Key: key})), "authority ci: 1 signature checked, none verified by key", verify.ErrBadSignature)
	verifytest.WantDenied(t, run(t, policy(other), v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Key: key})),
		": signature does not verify with the trusted key (wrong key or tampered payload)", verify.ErrBadSignature)
	verifytest.WantDenied(t, run(t, policy(key), v2Bundle(t, s, sigstoretest.CosignSignPredicateType, sigstoretest.SignOptions{Key: key, NoTimestamp: true})), "no verified time of signing", verify.ErrTimestamp)
}
