// Package registrytest is the OCI registry side of signet's tests, in Go
// only: nothing here needs a binary from bin/, so unit tests under internal/
// may use all of it.
//
//   - StartInProcess serves go-containerregistry's registry from the test
//     process on a loopback port, with or without the OCI 1.1 referrers API
//     (without it, clients fall back to the referrers tag schema);
//   - a Registry, whichever implementation serves it (test/harness starts the
//     real distribution registry and returns one too), takes random images
//     and indexes (PushRandomImage, PushRandomIndex, PushImage) and evidence
//     laid out as cosign lays it out: legacy .sig/.att layers (AttachLegacy)
//     and Sigstore bundles as referrers (AttachBundle);
//   - StartTampering puts the in-process registry behind a proxy whose
//     answers a test replaces path by path, for registries that lie;
//   - HostKeychain gives a credential to one host only, and UnreachableHost
//     is a loopback address nothing listens on.
//
// It knows nothing of signet's own registry client: each test builds the
// client it needs.
//
// Every server is closed by t.Cleanup; every failure fails the test.
package registrytest
