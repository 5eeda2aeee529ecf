// Package check holds the tests of signet's decisions (internal/check)
// against the real components: images signed and attested by the real cosign
// CLI, in the real distribution registry (referrers through the tag schema)
// and in the in-process one with and without the referrers API; keyless
// signatures from a local Sigstore in every registry kind; what a decision
// costs in registry requests, cached and single-flighted. test/harness
// starts cosign and the registry from bin/. The decider's tests that need
// only Go stay next to it.
package check
