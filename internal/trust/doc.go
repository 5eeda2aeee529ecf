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
// Beyond the default, a trusted root comes from a TUF repository ([TUF]: a
// [Mirror] over HTTP or a serialized [Repository] unpacked in memory), from
// trusted root JSON ([NewMaterial]) or from keys given directly
// ([Keys.Material]); each is [Material] with a Version (the sha256 of its
// JSON) that caches key on. [TUF.Export] and [TUF.Restore] carry a client's
// last good state across restarts, verified again when restored.
//
// Invariants: constructors touch no network and start no goroutines;
// [TUF.Refresh] is the only I/O, runs when its caller says, and keeps the
// last good material when it fails. Expired or rolled-back TUF metadata is
// refused ([ErrMetadataExpired], [ErrRollback]); target and archive entry
// names must be clean relative paths ([ErrUnsafeName]); every read is
// bounded ([MaxTUFFileSize], [MaxRepositorySize]). Metadata is held in
// memory, never written to disk. The package keeps no package-level
// mutable state.
package trust
