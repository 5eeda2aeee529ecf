// Package reference parses and normalizes container image references with
// the container runtime's grammar (github.com/distribution/reference), so
// that signet decides about the same image the runtime will pull.
//
// [Parse] returns an immutable [Reference]. Normalization:
//
//   - Docker Hub spellings are one image: "nginx", "library/nginx",
//     "docker.io/nginx" and "index.docker.io/library/nginx" all have the Name
//     "docker.io/library/nginx". "registry-1.docker.io" is left as written,
//     as the runtime leaves it; a policy that wants it must name it.
//   - Registry hosts are lower-cased: "Registry.Example.ORG:5000/app" is
//     "registry.example.org:5000/app". Repository paths must already be lower
//     case; the grammar rejects upper case there.
//   - There is no default tag in the value: without tag and digest, Tag is ""
//     and [Reference.Identifier] says "latest", which is what the runtime pulls.
//   - A digest is authoritative. With both tag and digest the image is the
//     digest; the tag is kept for display and for pinning patches.
//
// Parse rejects everything the runtime's parser rejects, and, where the
// runtime would accept a string but signet and the runtime could disagree
// about which image it names, a little more:
//
//   - digests other than lower-case sha256 (64 hex characters) or sha512
//     (128 hex characters);
//   - normalized names (registry/repository) over 255 characters, as CRI-O
//     counts them (containerd counts the repository path only);
//   - mixed-case Docker Hub hosts such as "Docker.IO/nginx": the runtime does
//     not treat them as Docker Hub, and lower-casing would change the image;
//   - single-label hosts recognized only by their upper-case letters, such as
//     "MyRegistry/app": lower-cased, they would be a Docker Hub namespace.
//
// Invariants: Parse does no I/O and has no state. Every Reference it returns
// has a lower-case Name, is accepted by the runtime's parser both as written
// and in its String form, names the same repository in both, and
// Parse(r.String()) returns the same registry, repository, tag and digest.
// Every error is an [*InvalidError] matching [ErrInvalid].
package reference
