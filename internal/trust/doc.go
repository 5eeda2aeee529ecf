// Package trust provides the trusted material signet verifies signatures
// against: Sigstore trusted roots, which name the Fulcio certificate
// authorities, Rekor transparency logs, certificate-transparency logs and
// timestamp authorities a signature may chain to.
//
// By default signet trusts the Sigstore public-good instance. Its trusted root
// is embedded in the binary ([PublicGood]): the trusted_root.json target of
// the TUF repository https://tuf-repo-cdn.sigstore.dev, byte for byte, as
// shipped in seeds.json of the npm package @sigstore/tuf.
// hack/update-trusted-root.sh refreshes it and records the package, version,
// tarball integrity and sha256 in embedded/SOURCE ([EmbeddedSource]);
// [PublicGood] refuses an embedded root whose sha256 does not match SOURCE, so
// a hand edit fails loudly. A deployment that trusts another instance, or a
// newer root than the one this binary was built with, passes its own file
// ([LoadTrustedRootFile], for --trusted-root FILE). [Describe] reports what a
// trusted root trusts and when that trust ends.
//
// Invariants: nothing here touches the network; refreshing a root over TUF
// is not this package's job. Constructors start no goroutines and the package
// keeps no mutable state: every call parses afresh and returns a trusted root
// the caller owns.
package trust
