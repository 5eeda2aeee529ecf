// Package realsigs verifies signatures and attestations that the Sigstore
// public-good instance (Fulcio and Rekor of sigstore.dev) made for real
// images, as other projects recorded them among their test fixtures. Every
// other keyless test verifies evidence that signet's own test Sigstore
// (test/sigstoretest) forged; these prove that signet reads what cosign
// really wrote and that the embedded public-good trusted root
// (internal/trust.PublicGood) verifies it, offline, years after the
// short-lived certificates expired (their validity is checked at the time
// the log integrated the entry).
//
// Each fixture lives in testdata/<name>/ with a README.md naming its source
// (repository, path, commit), the image and the identity that signed it.
// The tests replay the recorded evidence into the in-process registry
// (test/registrytest) as cosign stores it and decide through internal/check,
// like every face of signet does. They need only Go.
//
// A legacy attestation whose Rekor entry is intoto v0.0.1 (what cosign
// wrote for attestations before v2.2.3) is not verifiable today:
// sigstore-go does not parse that entry type, and the evidence is denied as
// malformed. TestLegacyAttestationKeyless records it. Since v2.2.3 cosign
// logs attestations as dsse v0.0.1 entries, which verify:
// TestLegacyAttestationKeylessDSSE.
package realsigs
