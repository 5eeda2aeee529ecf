package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/verify"
)

// maxBundleFileSize bounds a --bundle file.
const maxBundleFileSize = 32 << 20

type verifyBundleOptions struct {
	bundle      string
	key         string
	identity    string
	issuer      string
	trustedRoot string
	ignoreTlog  bool
}

func (o *verifyBundleOptions) Validate() error {
	switch {
	case o.bundle == "":
		return errors.New("--bundle is required")
	case o.key != "" && (o.identity != "" || o.issuer != ""):
		return errors.New("give either --key or --certificate-identity and --certificate-oidc-issuer, not both")
	case o.key == "" && (o.identity == "" || o.issuer == ""):
		return errors.New("say what to trust: --key FILE, or both --certificate-identity and --certificate-oidc-issuer")
	}
	return nil
}

func newVerifyBundleCommand() *cobra.Command {
	o := &verifyBundleOptions{}
	cmd := &cobra.Command{
		Use:   "verify-bundle --bundle FILE (--key FILE | --certificate-identity ID --certificate-oidc-issuer URL) FILE_OR_DIGEST",
		Short: "Verify a Sigstore bundle for a file or a sha256 digest",
		Long: `verify-bundle verifies a Sigstore bundle (v0.1 to v0.3, message signature or
DSSE envelope) for the artifact FILE_OR_DIGEST: a file, or "sha256:<hex>".
The signer must be the --key given, or hold a certificate for exactly the
--certificate-identity issued by exactly the --certificate-oidc-issuer,
chained to the trusted root (the embedded Sigstore public-good root unless
--trusted-root is given), with an embedded SCT, and be logged in a
transparency log of the trusted root. Transparency log entries and RFC 3161
timestamps in the bundle are verified against the trusted root; the
signature needs a verified time of signing: a Rekor v1 entry's integrated
time or an RFC 3161 timestamp (Rekor v2 entries have no integrated time).
With --key, an RFC 3161 timestamp the bundle carries must verify even when
a log entry dates the signature, and a log entry it carries must verify
even with --insecure-ignore-tlog.

The bundle goes through the checks signet makes of image signatures
(signet verify), bound to the artifact instead of an image digest.

This is the Sigstore client conformance "verify-bundle" interface. Exit 0 only
if the bundle verifies; 1 if it does not; 2 on bad usage.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return WithExitCode(ExitUndecided, err)
			}
			if err := o.run(args[0]); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "verified")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.bundle, "bundle", "", "the Sigstore bundle (JSON) to verify")
	f.StringVar(&o.key, "key", "", "PEM public key the bundle must be signed with")
	f.StringVar(&o.identity, "certificate-identity", "", "the exact certificate identity (SAN) of the signer")
	f.StringVar(&o.issuer, "certificate-oidc-issuer", "", "the exact OIDC issuer of the signer's certificate")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json to trust instead of the embedded public-good root")
	f.BoolVar(&o.ignoreTlog, "insecure-ignore-tlog", false, "with --key: accept a bundle that has no transparency log entry (signed offline); nothing then shows when it was signed")
	return cmd
}

func (o *verifyBundleOptions) run(artifact string) error {
	usage := func(err error) error { return WithExitCode(ExitUndecided, err) }
	failed := func(err error) error { return WithExitCode(ExitDenied, err) }

	data, err := local.ReadFile(o.bundle, maxBundleFileSize)
	if err != nil {
		return usage(fmt.Errorf("--bundle: %w", err))
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		return failed(fmt.Errorf("bundle %s: %w", o.bundle, err))
	}
	p, err := o.policy()
	if err != nil {
		return usage(err)
	}
	art, done, err := openArtifact(artifact)
	if err != nil {
		return usage(err)
	}
	defer done()

	_, err = p.VerifyArtifact(&b, art)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, verify.ErrUndecided):
		return usage(fmt.Errorf("%s: %w", artifact, err))
	case o.key != "" && !o.ignoreTlog && errors.Is(err, verify.ErrTransparencyLog) && !b.HasInclusionPromise() && !b.HasInclusionProof():
		return failed(fmt.Errorf("bundle %s has no transparency log entry; a signature made offline verifies only with --insecure-ignore-tlog", o.bundle))
	}
	return failed(fmt.Errorf("bundle %s does not verify: %w", o.bundle, err))
}

// policy is the one-authority policy the flags describe: the key, or the
// exact identity and issuer, with the trusted root.
func (o *verifyBundleOptions) policy() (*verify.Compiled, error) {
	tr, err := local.TrustedRoot(o.trustedRoot)
	if err != nil {
		return nil, err
	}
	a := verify.Authority{Name: "verify-bundle", TrustedMaterial: tr}
	if o.key != "" {
		keyData, err := local.ReadFile(o.key, maxKeyFileSize)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		k, err := verify.ParsePublicKeyPEM(keyData)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", o.key, err)
		}
		a.Keys = []verify.PublicKey{k}
		// A keyless signature is always logged: the flag is for keys.
		a.InsecureIgnoreTlog = o.ignoreTlog
	} else {
		a.Keyless = &verify.Keyless{Identities: []verify.Identity{{Issuer: o.issuer, Subject: o.identity}}}
	}
	return verify.Compile(verify.Policy{Name: "verify-bundle", Authorities: []verify.Authority{a}})
}

// maxArtifactInMemory bounds an artifact that is not a regular file (a
// pipe), which is read into memory to be read more than once.
const maxArtifactInMemory = 1 << 30

// openArtifact opens FILE_OR_DIGEST: "sha256:<hex>", or a file; done
// closes the file.
func openArtifact(arg string) (a verify.Artifact, done func(), err error) {
	done = func() {}
	if strings.HasPrefix(arg, "sha256:") {
		a, err = verify.ArtifactDigest(arg)
		return a, done, err
	}
	f, err := os.Open(arg) //nolint:gosec // G304: the artifact named on the command line
	if err != nil {
		return a, done, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return a, done, err
	}
	if fi.Mode().IsRegular() {
		return verify.ArtifactContent(f, fi.Size()), func() { _ = f.Close() }, nil
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxArtifactInMemory+1))
	switch {
	case err != nil:
		return a, done, fmt.Errorf("reading %s: %w", arg, err)
	case len(data) > maxArtifactInMemory:
		return a, done, fmt.Errorf("%s is not a regular file and larger than %d bytes: give a file", arg, maxArtifactInMemory)
	}
	return verify.ArtifactContent(bytes.NewReader(data), int64(len(data))), done, nil
}
