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
		tlogObserved   = checks{tlog: true, observedTime: true}
		tlogSigned     = checks{tlog: true, signedTime: true}
		tlogSignedSET  = checks{tlog: true, signedTime: true, integratedTime: true}
		keylessChecks  = checks{tlog: true, observedTime: true, sct: true}
		keylessNoSCT   = tlogObserved
		everyShapeSame = func(c checks) [6]checks { return [6]checks{c, c, c, c, c, c} }
	)
	// What a bundle can carry: nothing, a log entry (Rekor v2: a proof),
	// a Rekor v1 entry (a SET), a timestamp, and a timestamp with each.
	carried := []shape{0, logged, logged | promised, stamped, logged | stamped, logged | promised | stamped}
	for _, tc := range []struct {
		name string
		a    *Authority
		want [6]checks // by shape, as above
	}{
		// The log's time dates the signature; a timestamp that does
		// not verify is ignored when it does.
		{"keyless", keyless, everyShapeSame(keylessChecks)},
		{"keyless, insecureIgnoreSCT", noSCT, everyShapeSame(keylessNoSCT)},
		// A timestamp the bundle carries must verify.
		{"key", key, [6]checks{tlogObserved, tlogObserved, tlogObserved, tlogSigned, tlogSigned, tlogSignedSET}},
		// A log entry the bundle carries is verified all the same.
		{"key, insecureIgnoreTlog", offline, [6]checks{{}, tlogObserved, tlogObserved, {signedTime: true}, tlogSigned, tlogSignedSET}},
		// Nothing to verify a log entry or a timestamp with.
		{"key, insecureIgnoreTlog, no trusted material", keyOnly, everyShapeSame(checks{})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got [6]checks
			for i, s := range carried {
				got[i] = checksFor(tc.a, s)
			}
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(checks{})); diff != "" {
				t.Errorf("checks by shape (-want +got):\n%s", diff)
			}
		})
	}
}
