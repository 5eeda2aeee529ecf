// Package notationtest makes real Notary Project signatures for signet's
// tests, with the Notary Project's own Go libraries (notation-go,
// notation-core-go, tspclient-go), exactly as `notation sign` makes them, and
// pushes them to a plain-HTTP loopback registry as OCI referrers of the image.
//
//	root := pkitest.NewRoot(t, "root")
//	s := notationtest.NewSigner(t, root.Intermediate(t, "ca"), pkitest.Leaf{})
//	sig := notationtest.Sign(t, img.Ref, s, notationtest.Options{Format: notationtest.COSE})
//
// Options add an expiry, an RFC 3161 timestamp from a loopback TSA
// (StartTSA) and user metadata, or make signatures a verifier must reject: a
// tampered payload, a signature over another image, an unknown critical
// attribute, a backdated or expired signature, an expired certificate.
//
// Verifier and VerifyImage run notation-go's own verifier (notation.Verify
// with verifier.New, an in-memory trust store and one trust policy) on an
// image and report which check failed: the reference signet's notation
// authority is compared against.
package notationtest
