// Package policyjson exports signet policies as a containers-policy.json
// (the file CRI-O, podman and skopeo evaluate with go.podman.io/image's
// signature package) for one namespace, plus the registries.d entries that
// make the runtime read cosign's sha256-<digest>.sig attachments.
//
// The export is exact or it says why not. policy.json picks the single most
// specific scope for an image (repository, parent namespaces, host[:port],
// *.domain, the transport, default) and ANDs that scope's requirements;
// signet ANDs every policy whose pattern matches. So each scope the export
// writes carries the requirements of every policy whose own scope contains
// it, which is exactly signet's set of matching policies for the images
// that scope owns.
//
// What policy.json cannot say is an Issue naming the signet field: glob
// patterns that are not a host, a repository prefix, ** or *.domain/**;
// regular-expression or non-email keyless identities; attestations and
// their CEL conditions; a choice between different ways of signing; a
// threshold below the number of authorities; digest: require; signatures
// kept in another repository; any one of several keys or Rekor logs when
// Options.Runtime (default CRI-O 1.28) predates containers-image v5.33,
// which first reads keyDatas and rekorPublicKeyDatas (one key is always
// keyData). Export refuses the policy set when there is
// one; with Options.AllowLossy it applies the stricter fallback
// instead (an authority that never passes, requiring every alternative,
// reject, or a wider scope when every image it adds is already governed or
// unmatched images are allowed), and never a weaker one. Differences that
// are inherent to the runtime (it reads only legacy .sig attachments, it
// verifies the platform manifest it pulls, it does not check SCTs) are
// Notes.
//
// FailClosed is the file to use when the export is refused: reject for
// every scope the namespace's policies govern, the unmatched setting
// elsewhere.
package policyjson
