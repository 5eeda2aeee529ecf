// Package harness starts the real components signet's end-to-end tests run
// against, and ties each one to the lifetime of the test that started it:
//
//   - a Kubernetes API server and etcd (controller-runtime's envtest, with the
//     binaries `make tools` builds into bin/);
//   - the CNCF distribution registry on a free loopback port (it has no OCI
//     referrers API, so it exercises the referrers tag-schema fallback), as a
//     registrytest.Registry;
//   - Debian's redis-server on a free loopback port, in memory, with a
//     password (StartRedis), for the shared result cache;
//   - the cosign CLI, signing and attesting test images with generated keys in
//     its legacy (.sig/.att tags) and its bundle (OCI referrers) formats,
//     offline.
//
// Everything here needs bin/, so only tests under test/ (and bench/, examples/)
// import it; unit tests under internal/ use the Go-only registrytest,
// sigstoretest, verifytest and clitest instead.
//
// Every process is stopped and every temporary directory removed by t.Cleanup.
// A missing binary fails the test with a message saying how to build it; the
// harness never skips. The binaries are looked up in $SIGNET_BIN_DIR, or in the
// bin/ folder at the root of the repository.
package harness
