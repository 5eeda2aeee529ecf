// Package convert holds the tests that policies converted from the other
// systems' dialects (internal/convert) decide, through signet policy test,
// as their sources say, on images signed by the real cosign CLI (from bin/,
// started by test/harness) and by a local Sigstore. The converters' tests
// that need only Go stay next to them.
package convert
