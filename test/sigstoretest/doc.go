// Package sigstoretest is a local Sigstore for tests, offline and in memory:
//
//   - a Fulcio-like certificate authority (ECDSA P-256 root and intermediate)
//     issuing short-lived code-signing certificates for an OIDC identity, with
//     the issuer in both Fulcio issuer extensions and an SCT embedded the way
//     Fulcio does it (a precertificate with the CT poison extension is signed
//     first, the SCT is made over it with the CT log key);
//   - a Rekor-like transparency log: canonical hashedrekord and dsse v0.0.1
//     entries, signed entry timestamps (SETs), and one-leaf inclusion proofs
//     with a checkpoint signed by the log key;
//   - with WithRekorV2, a Rekor v2 (tile-based) log: hashedrekord v0.0.2
//     entries (for DSSE, over the envelope's pre-authentication encoding),
//     no SET and no integrated time, inclusion proofs in a real RFC 6962
//     tree and checkpoints as Ed25519-signed notes;
//   - an RFC 3161 timestamping authority (root and leaf with the timestamping
//     extended key usage).
//
// It writes what cosign writes: the annotations of legacy .sig and .att
// layers (SignLegacy, AttestLegacy) and Sigstore bundles v0.1 to v0.3
// (Bundle, MessageBundle), signed keylessly, by a bare key, or with a
// certificate of another CA (SignOptions.Certificate: an enterprise PKI's,
// as cosign sign --certificate signs), each logged in the local log.
// TrustedRoot and TrustedRootJSON describe the whole thing as a sigstore
// trusted root whose CA, logs and TSA are trusted from a day before New
// on; its certificates expire a day after New.
//
// sigstore-go's pkg/testing/ca is close, but its certificates carry no SCT
// and its keys are unexported. Everything here fails the test (t.Fatal) on an
// internal error; nothing is expected to.
package sigstoretest
