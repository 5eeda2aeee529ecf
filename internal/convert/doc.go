// Package convert translates the image-verification policies of other
// systems into signet's ClusterImagePolicy and ImagePolicy objects
// (`signet policy convert`): sigstore policy-controller, Kyverno, Tanzu
// Supply Chain Security Tools – Sign, Crossplane ImageConfig and
// containers-policy.json. One file per format; Formats lists them.
//
// Invariants:
//
//   - A conversion keeps the source system's decision on every case the
//     source's semantics define (as its code behaves, where docs and code
//     disagree). Image patterns are translated exactly, or refused.
//   - What signet cannot express is refused with a Problem naming the source
//     field. Options.AllowLossy turns each refusal into a lossy Note that
//     says what was done instead; nothing is dropped or approximated without
//     a Note.
//   - Settings that are cluster-wide in signet (unmatched images, excluded
//     namespaces, namespace opt-in, credentials) are reported as Notes naming
//     the `signet serve` flag.
//
// The package reads files and returns objects; it talks to no cluster and
// no registry.
package convert
