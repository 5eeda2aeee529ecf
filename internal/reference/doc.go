// Package reference parses and normalizes container image references with
// the container runtime's grammar (github.com/distribution/reference), so
// that signet decides about the same image the runtime will pull.
//
// [Parse] returns an immutable [Reference]. Normalization:
//
//   - Docker Hub spellings are one image: "nginx", "library/nginx",
//     "docker.io/nginx", "index.docker.io/library/nginx",
//     "registry-1.docker.io/library/nginx" (the host the runtime pulls
//     docker.io images from) and "registry.hub.docker.com/library/nginx"
//     (the same registry) all have the Name "docker.io/library/nginx".
//   - Registry hosts are lower-cased: "Registry.Example.ORG:5000/app" is
//     "registry.example.org:5000/app". Repository paths must already be lower
//     case; the grammar rejects upper case there.
//
// A registry spelled differently is the same registry: [CanonicalHost] gives
// every host one spelling, and everything that names a registry (references,
// policy patterns and excludeImages, source.oci, pull-secret keys) goes
// through it. Where every runtime reaches the same server from two
// spellings, they are canonicalized; where the server reached could differ,
// the spelling is refused:
//
//   - letter case: lower-cased (DNS and TLS ignore it);
//   - leading zeros in a port: removed, "127.0.0.1:05000" is
//     "127.0.0.1:5000" (every dialer reads the port as a number);
//   - an empty port ("host:"), port 0 and ports over 65535: refused (the
//     grammar has no empty port; the others reach no server);
//   - the default ports 80 and 443 ("registry.example.org:443"): refused.
//     The server "host:443" reaches is the one "host" reaches only over
//     https; localhost and registries configured as insecure are pulled
//     over http, where "host" means port 80. And containerd (hosts.toml
//     directories "host:443" and "host_443_"), containers/image
//     (registries.conf prefixes, policy.json scopes) and the kubelet's
//     credential lookup treat "host:443" as another host than "host", so
//     canonicalizing it would decide about a registry whose mirrors,
//     credentials and node policy differ from the one the node uses;
//   - a trailing dot ("registry.example.org."): refused, as by the grammar;
//   - numeric hosts other than dotted decimal ("127.1", "0x7f.0.0.1",
//     "017700000001", "127.000.0.1"; a host is numeric when its last label
//     is a number, as in URL parsers): refused, as C resolvers read them as
//     addresses and Go's as names to look up;
//   - IPv6 literals: written as RFC 5952 says, lower case with the longest
//     run of zero groups compressed, "[0:0::1]" is "[::1]"; an IPv4-mapped
//     address ("[::ffff:7f00:1]") is the IPv4 address it connects to
//     ("127.0.0.1"). Zones and dotted IPv4 inside brackets are not in the
//     grammar;
//   - Docker Hub's hosts "index.docker.io", "registry-1.docker.io" and
//     "registry.hub.docker.com" are "docker.io" (with a port they are other
//     hosts). A one-component repository on the latter two
//     ("registry-1.docker.io/nginx") is refused: the runtime adds
//     "library/" only for docker.io and index.docker.io.
//
// Registry configuration on the nodes that is keyed by the spelling (a
// hosts.toml mirror for "registry.example.org" only) is not visible here:
// signet decides about the server the canonical spelling reaches.
//
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
// and in its String form, names the same repository in both (the host
// spelled canonically), and
// Parse(r.String()) returns the same registry, repository, tag and digest.
// Every error is an [*InvalidError] matching [ErrInvalid].
package reference
