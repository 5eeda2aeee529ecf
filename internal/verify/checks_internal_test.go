package verify

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sigstore/sigstore-go/pkg/root"
)

// TestChecksFor is the table of which of sigstore-go's checks an
// authority requires of a bundle, by what the bundle carries: the same
// for image evidence and artifacts.
func TestChecksFor(t *testing.T) {
	tm := &root.TrustedRoot{}
	keyless := &Authority{Keyless: &Keyless{}, TrustedMaterial: tm}
	noSCT := &Authority{Keyless: &Keyless{}, TrustedMaterial: tm, InsecureIgnoreSCT: true}
	key := &Authority{Keys: []PublicKey{{}}, TrustedMaterial: tm}
	offline := &Authority{Keys: []PublicKey{{}}, TrustedMaterial: tm, InsecureIgnoreTlog: true}
	keyOnly := &Authority{Keys: []PublicKey{{}}, InsecureIgnoreTlog: true}
	var (
		tlogObserved = checks{tlog: true, observedTime: true}
		tlogSigned   = checks{tlog: true, signedTime: true}
		keylessWant  = checks{tlog: true, observedTime: true, sct: true}
	)
	for _, tc := range []struct {
		name string
		a    *Authority
		want [shapes]checks // by shape: nothing, logged, stamped, logged|stamped
	}{
		// The log's time dates the signature; a timestamp that does
		// not verify is ignored when it does.
		{"keyless", keyless, [shapes]checks{keylessWant, keylessWant, keylessWant, keylessWant}},
		{"keyless, insecureIgnoreSCT", noSCT, [shapes]checks{tlogObserved, tlogObserved, tlogObserved, tlogObserved}},
		// A timestamp the bundle carries must verify.
		{"key", key, [shapes]checks{tlogObserved, tlogObserved, tlogSigned, tlogSigned}},
		// A log entry the bundle carries is verified all the same.
		{"key, insecureIgnoreTlog", offline, [shapes]checks{{}, tlogObserved, {signedTime: true}, tlogSigned}},
		// Nothing to verify a log entry or a timestamp with.
		{"key, insecureIgnoreTlog, no trusted material", keyOnly, [shapes]checks{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [shapes]checks
			for s := range shape(shapes) {
				got[s] = checksFor(tc.a, s)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(checks{})); diff != "" {
				t.Errorf("checks by shape (-want +got):\n%s", diff)
			}
		})
	}
}
