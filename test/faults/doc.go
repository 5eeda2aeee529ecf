// Package faults puts registry faults in front of the real distribution
// registry and measures what `signet serve` makes of them under load: a
// fault-injecting reverse proxy (Proxy), `signet serve` in a child process
// whose goroutines and heap are read from its /metrics after a forced
// garbage collection (Serve), and a scenario (World.Run) that sends
// concurrent AdmissionReviews during one fault and reports, for each, how
// many were answered before the webhook's timeout, what each policy's
// onError made of them, and the process's resources before and after.
//
// The faults, switched at run time (Proxy.Set): a stall before any answer,
// a stall in the middle of a body, a storm of 500/502/503, 429 with a short
// and an absurdly long Retry-After, connections reset in the middle of an
// answer, oversized manifests and referrers indexes (with and without a
// Content-Length), malformed JSON, a wrong Content-Type, content that does
// not hash to the digest it was fetched by; and, without the proxy, a
// registry host that does not resolve (under .invalid).
//
// Everything here needs bin/ (the registry and cosign); test/faults and
// bench use it. A test binary that uses Serve must call ChildMain first in
// its TestMain: the child process is the test binary itself.
package faults
