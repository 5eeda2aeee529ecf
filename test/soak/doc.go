// Package soak runs a bounded mixed load through the real components for a
// set duration and checks every answer against an oracle that allows for
// propagation: `signet serve` in this process (so -race instruments it) as
// the webhook of a real API server and etcd, the distribution registry with
// cosign and keyless signatures, and a fault-injecting proxy (test/faults)
// in front of the registry for one policy.
//
// While workers admit Pods and Deployments (server-side dry run), churners
// create, update and delete a ClusterImagePolicy and a namespaced
// ImagePolicy, rotate a policy's key from one cosign key to the other while
// release images are re-signed, switch a TrustRoot between two Sigstores
// (inline trusted root and keys, deleted and created again), and switch
// registry faults on and off. Every admission has a set of acceptable
// outcomes: those of every state its policy, TrustRoot or fault could have
// been in between the moment it was sent and the moment it was answered,
// a state lasting until its successor was written plus a propagation bound
// (checked, for every change, by probes). An outcome outside that set is a
// wrong decision and fails the test; so does growth of goroutines or heap
// in use between the second and the last third of the run.
//
// The test needs bin/ (make tools) and runs for SIGNET_SOAK_DURATION (two
// minutes without it): `make test` runs it on its own under -race (its
// plain `go test ./...` line leaves it out, as it does the load test),
// `make soak` for longer. SIGNET_SOAK_RESULTS names a file for its one-line JSON summary;
// SIGNET_SOAK_PROFILES a directory for heap profiles (second.pprof when the
// second third begins, end.pprof when the load ends).
package soak
