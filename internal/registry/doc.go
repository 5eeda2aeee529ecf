// Package registry fetches images and the evidence about them (signatures,
// attestations, Sigstore bundles) from OCI registries, within bounds.
//
// Invariants:
//   - A tag is resolved by fetching the manifest and hashing its bytes; a
//     manifest fetched by digest is checked against that digest. Registry
//     headers such as Docker-Content-Digest are never trusted.
//   - Everything read from a registry is bounded (see Limits): manifest and blob
//     sizes, after any transparent decompression; the number of layers,
//     signatures and referrers; redirects. Exceeding a bound is an error, never
//     a silent truncation.
//   - Every call runs under the caller's context. Idempotent requests are retried
//     on 429 and 5xx answers with backoff, within that deadline.
//   - Credentials are sent only to the registry they were resolved for, never to
//     a host a redirect points at. Error messages carry neither credentials nor
//     the query strings of URLs (presigned redirect targets).
//   - Plain HTTP is used only when the client was built with InsecureAllowHTTP.
//   - Failures are of kinds matched with errors.Is (ErrUnreachable,
//     ErrUnauthorized, ErrForbidden, ErrRateLimited, ErrNotFound, ErrLimit,
//     ErrMalformed, ErrDigestMismatch), which leave the messages as they are.
//
// The package knows storage formats, not cryptography: it returns Evidence,
// the raw bytes and annotations of each candidate, for package verify to judge.
package registry
