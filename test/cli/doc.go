// Package cli holds the tests of signet's commands against the real
// components: signet verify and signet policy test on images the real cosign
// CLI signed in the real distribution registry, and the built signet and
// signet-server binaries running each other. The commands' tests that need
// only Go stay next to them in internal/cli.
package cli
