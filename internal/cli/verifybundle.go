package cli

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
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
	tr, err := local.TrustedRoot(o.trustedRoot)
	if err != nil {
		return usage(err)
	}

	var (
		tm     root.TrustedMaterial = tr
		opts   []sgverify.VerifierOption
		idOpt  sgverify.PolicyOption
		hasLog = b.HasInclusionPromise() || b.HasInclusionProof()
	)
	tsd := b.GetVerificationMaterial().GetTimestampVerificationData()
	hasTSA := len(tsd.GetRfc3161Timestamps()) > 0
	if hasLog {
		opts = append(opts, sgverify.WithTransparencyLog(1))
	}
	if o.key != "" {
		if hasTSA {
			opts = append(opts, sgverify.WithSignedTimestamps(1))
		}
		keyData, err := local.ReadFile(o.key, maxKeyFileSize)
		if err != nil {
			return usage(fmt.Errorf("--key: %w", err))
		}
		k, err := verify.ParsePublicKeyPEM(keyData)
		if err != nil {
			return usage(fmt.Errorf("--key %s: %w", o.key, err))
		}
		sv, err := signature.LoadDefaultVerifier(k.Key)
		if err != nil {
			return usage(fmt.Errorf("--key %s: %w", o.key, err))
		}
		keyMaterial := root.NewTrustedPublicKeyMaterial(func(string) (root.TimeConstrainedVerifier, error) {
			return root.NewExpiringKey(sv, time.Time{}, time.Time{}), nil
		})
		tm = root.TrustedMaterialCollection{keyMaterial, tr}
		switch {
		case hasLog && !hasTSA:
			// The log's integrated time (a Rekor v1 SET) dates the
			// signature; a Rekor v2 entry has none and fails here.
			opts = append(opts, sgverify.WithObserverTimestamps(1))
		case !hasLog && !o.ignoreTlog:
			return failed(fmt.Errorf("bundle %s has no transparency log entry; a signature made offline verifies only with --insecure-ignore-tlog", o.bundle))
		case !hasLog && !hasTSA:
			// A key is trusted without a time window; nothing to anchor.
			opts = append(opts, sgverify.WithCurrentTime())
		}
		idOpt = sgverify.WithKey()
	} else {
		// A certificate signature is always logged, whatever the bundle
		// holds, and the certificate must be valid at a verified time: the
		// log's integrated time or an RFC 3161 timestamp.
		if !hasLog {
			opts = append(opts, sgverify.WithTransparencyLog(1))
		}
		opts = append(opts, sgverify.WithSignedCertificateTimestamps(1), sgverify.WithObserverTimestamps(1))
		id, err := sgverify.NewShortCertificateIdentity(o.issuer, "", o.identity, "")
		if err != nil {
			return usage(err)
		}
		idOpt = sgverify.WithCertificateIdentity(id)
	}
	v, err := sgverify.NewVerifier(tm, opts...)
	if err != nil {
		return failed(fmt.Errorf("bundle %s: %w", o.bundle, err))
	}

	var artifactOpt sgverify.ArtifactPolicyOption
	if hexDigest, ok := strings.CutPrefix(artifact, "sha256:"); ok {
		raw, err := hex.DecodeString(hexDigest)
		if err != nil || len(raw) != 32 {
			return usage(fmt.Errorf("%q is not a sha256 digest", artifact))
		}
		artifactOpt = sgverify.WithArtifactDigest("sha256", raw)
	} else {
		f, err := os.Open(artifact) //nolint:gosec // G304: the artifact named on the command line
		if err != nil {
			return usage(err)
		}
		defer f.Close()
		artifactOpt = sgverify.WithArtifact(io.Reader(f))
	}
	if _, err := v.Verify(&b, sgverify.NewPolicy(artifactOpt, idOpt)); err != nil {
		if msg := verify.ExplainTransparencyError(err.Error()); msg != err.Error() {
			return failed(fmt.Errorf("bundle %s does not verify: %s", o.bundle, msg))
		}
		return failed(fmt.Errorf("bundle %s does not verify: %w", o.bundle, err))
	}
	return nil
}
