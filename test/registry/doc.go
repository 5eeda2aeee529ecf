// Package registry holds the tests of signet's registry client
// (internal/registry) against the real components: the CNCF distribution
// registry (the referrers tag-schema fallback, htpasswd authentication) and
// images signed and attested by the real cosign CLI, started by test/harness
// from bin/. The client's tests that need only Go (hand-written hostile
// registries, the in-process one) stay next to it.
package registry
