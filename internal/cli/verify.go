package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/convert"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/internal/workload"
)

// maxKeyFileSize bounds a --key file.
const maxKeyFileSize = 64 << 10

type verifyOptions struct {
	keys                []string
	identity            string
	identityRegExp      string
	issuer              string
	issuerRegExp        string
	trustedRoot         string
	caRoots             string
	caIntermediates     string
	trustPolicy         string
	trustStore          string
	predicateType       string
	conditions          []string
	ignoreTlog          bool
	ignoreSCT           bool
	allowHTTP           bool
	allPlatforms        bool
	signatureRepository string
	output              string
	timeout             time.Duration
	policies            []string
	namespace           string
}

func (o *verifyOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&o.keys, "key", nil, "PEM public key file the signature must verify with (repeat for any of several keys)")
	f.StringVar(&o.identity, "certificate-identity", "", "keyless: the exact certificate identity (SAN: email or URI) of the signer")
	f.StringVar(&o.identityRegExp, "certificate-identity-regexp", "", "keyless: a regular expression the whole certificate identity must match")
	f.StringVar(&o.issuer, "certificate-oidc-issuer", "", "keyless: the exact OIDC issuer of the signer's certificate")
	f.StringVar(&o.issuerRegExp, "certificate-oidc-issuer-regexp", "", "keyless: a regular expression the whole OIDC issuer must match")
	f.StringVar(&o.caRoots, "ca-roots", "", "PEM CA root certificates `file`: trust signatures made with a certificate your own CA issued (cosign sign --certificate), to --certificate-identity[-regexp] (an email or URI SAN)")
	f.StringVar(&o.caIntermediates, "ca-intermediates", "", "with --ca-roots: PEM intermediate CA certificates `file` between a root and signing certificates (a signature's own chain is not trusted)")
	f.StringVar(&o.trustPolicy, "notation-trust-policy", "", "verify Notary Project signatures as notation verify would: notation's trustpolicy.json `file` (with --notation-trust-store); its statements become the policy, as signet policy convert --from notation writes them")
	f.StringVar(&o.trustStore, "notation-trust-store", "", "with --notation-trust-policy: notation's trust store `directory` (holding x509/<type>/<name>/), or its configuration directory")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json to trust instead of the embedded public-good root")
	f.StringVar(&o.predicateType, "type", "", "verify an attestation with this in-toto predicate type instead of a signature")
	f.StringArrayVar(&o.conditions, "condition", nil, "with --type: a CEL condition over the statement (predicateType, subject, predicate) that must hold; repeatable")
	f.BoolVar(&o.ignoreTlog, "insecure-ignore-tlog", false, "accept --key or --ca-roots signatures that are not in a transparency log")
	f.BoolVar(&o.ignoreSCT, "insecure-ignore-sct", false, "accept keyless certificates without an embedded signed certificate timestamp")
	f.BoolVar(&o.allowHTTP, "allow-http-registry", false, "talk plain HTTP to registries (loopback test registries)")
	f.BoolVar(&o.allPlatforms, "all-platforms", false, "for an image index, require every platform manifest to be signed too")
	f.StringVar(&o.signatureRepository, "signature-repository", "", "repository holding the signatures, like cosign's COSIGN_REPOSITORY (default: $COSIGN_REPOSITORY, else the image's)")
	f.StringArrayVar(&o.policies, "policy", nil, "verify against the ClusterImagePolicy/ImagePolicy objects in this `path` (a file or a directory) instead of --key or the identity flags (repeatable); the output is that of signet policy test")
	f.StringVar(&o.namespace, "namespace", "", "with --policy: the namespace whose ImagePolicies also apply")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up (exit 2) after this long")
}

func (o *verifyOptions) Validate() error {
	switch o.output {
	case "text", "json":
	default:
		return fmt.Errorf("--output must be text or json, not %q", o.output)
	}
	keyless := o.identity != "" || o.identityRegExp != "" || o.issuer != "" || o.issuerRegExp != ""
	if o.trustStore != "" && o.trustPolicy == "" {
		return errors.New("--notation-trust-store needs --notation-trust-policy")
	}
	if o.trustPolicy != "" {
		if len(o.policies) > 0 || len(o.keys) > 0 || keyless || o.caRoots != "" || o.predicateType != "" || o.ignoreTlog || o.ignoreSCT || o.signatureRepository != "" || o.allPlatforms {
			return errors.New("--notation-trust-policy says what to trust: do not combine it with --policy, --key, identity, --ca-roots, --type, --insecure-*, --signature-repository or --all-platforms flags")
		}
		return nil
	}
	if len(o.policies) > 0 {
		if len(o.keys) > 0 || keyless || o.caRoots != "" || o.predicateType != "" || o.ignoreTlog || o.ignoreSCT || o.signatureRepository != "" || o.allPlatforms {
			return errors.New("--policy says what to trust: do not combine it with --key, identity, --type, --insecure-*, --signature-repository or --all-platforms flags")
		}
		return nil
	}
	if o.namespace != "" {
		return errors.New("--namespace needs --policy")
	}
	if o.caRoots != "" || o.caIntermediates != "" {
		switch {
		case o.caRoots == "":
			return errors.New("--ca-intermediates needs --ca-roots")
		case len(o.keys) > 0:
			return errors.New("give either --key or --ca-roots, not both")
		case (o.identity == "") == (o.identityRegExp == ""):
			return errors.New("--ca-roots needs one of --certificate-identity or --certificate-identity-regexp: the email or URI your CA certified the signer as")
		case o.issuer != "" || o.issuerRegExp != "":
			return errors.New("--certificate-oidc-issuer applies to Fulcio certificates, not those of --ca-roots")
		case o.ignoreSCT:
			return errors.New("--insecure-ignore-sct applies to Fulcio certificates, not those of --ca-roots")
		case len(o.conditions) > 0 && o.predicateType == "":
			return errors.New("--condition needs --type")
		case o.timeout <= 0:
			return errors.New("--timeout must be positive")
		}
		return nil
	}
	switch {
	case len(o.keys) > 0 && keyless:
		return errors.New("give either --key or --certificate-identity/--certificate-oidc-issuer, not both")
	case len(o.keys) == 0 && !keyless:
		return errors.New("say what to trust: --key FILE, or --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]")
	case keyless && o.identity == "" && o.identityRegExp == "":
		return errors.New("keyless verification needs --certificate-identity or --certificate-identity-regexp")
	case keyless && o.issuer == "" && o.issuerRegExp == "":
		return errors.New("keyless verification needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp")
	case keyless && o.ignoreTlog:
		return errors.New("--insecure-ignore-tlog applies only to --key: keyless signatures are verified against the transparency log")
	case len(o.conditions) > 0 && o.predicateType == "":
		return errors.New("--condition needs --type")
	case o.timeout <= 0:
		return errors.New("--timeout must be positive")
	}
	return nil
}

// policy builds the one-authority policy the flags describe, reading
// signatures from sigRepo (nil: the image's repository).
func (o *verifyOptions) policy(sigRepo *registry.Repository) (*verify.Compiled, error) {
	a := verify.Authority{Name: "cli", InsecureIgnoreTlog: o.ignoreTlog, InsecureIgnoreSCT: o.ignoreSCT, SignatureRepository: sigRepo}
	for _, path := range o.keys {
		data, err := local.ReadFile(path, maxKeyFileSize)
		if err != nil {
			return nil, fmt.Errorf("--key: %w", err)
		}
		k, err := verify.ParsePublicKeyPEM(data)
		if err != nil {
			return nil, fmt.Errorf("--key %s: %w", path, err)
		}
		a.Keys = append(a.Keys, k)
	}
	switch {
	case o.caRoots != "":
		c, err := o.certificate()
		if err != nil {
			return nil, err
		}
		a.Certificate = c
	case len(o.keys) == 0:
		a.Keyless = &verify.Keyless{Identities: []verify.Identity{{
			Issuer: o.issuer, IssuerRegExp: o.issuerRegExp, Subject: o.identity, SubjectRegExp: o.identityRegExp,
		}}}
	}
	if a.Keyless != nil || !o.ignoreTlog {
		tr, err := local.TrustedRoot(o.trustedRoot)
		if err != nil {
			return nil, err
		}
		a.TrustedMaterial = tr
	}
	if o.predicateType != "" {
		a.Attestations = []verify.Attestation{{PredicateType: o.predicateType, Conditions: o.conditions}}
	}
	return verify.Compile(verify.Policy{Name: "command-line", Authorities: []verify.Authority{a}})
}

// certificate is the certificate authority of --ca-roots: the identity is
// an email or a URI SAN, as cosign verify --certificate-identity takes it.
func (o *verifyOptions) certificate() (*verify.Certificate, error) {
	read := func(flag, path string) ([]*x509.Certificate, error) {
		data, err := local.ReadFile(path, maxKeyFileSize)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", flag, err)
		}
		certs, err := verify.ParseCACertificates(data)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", flag, path, err)
		}
		return certs, nil
	}
	c := &verify.Certificate{Identities: []verify.CertIdentity{
		{Email: o.identity, EmailRegExp: o.identityRegExp},
		{URI: o.identity, URIRegExp: o.identityRegExp},
	}}
	var err error
	if c.Roots, err = read("--ca-roots", o.caRoots); err != nil {
		return nil, err
	}
	if o.caIntermediates != "" {
		if c.Intermediates, err = read("--ca-intermediates", o.caIntermediates); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// notationPolicies converts --notation-trust-policy and its trust store
// into signet policies, in a temporary directory it returns; the
// conversion's notes go to stderr.
func (o *verifyOptions) notationPolicies(ctx context.Context, stderr io.Writer) (string, error) {
	res, err := convert.Convert(ctx, "notation", []string{o.trustPolicy}, convert.Options{NotationTrustStore: o.trustStore})
	if err != nil {
		return "", fmt.Errorf("--notation-trust-policy: %w", err)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	out, err := res.YAML()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "signet-notation-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), out, 0o600); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func newVerifyCommand() *cobra.Command {
	o := &verifyOptions{}
	cmd := &cobra.Command{
		Use:   "verify IMAGE...",
		Short: "Verify that images are signed (or attested) by the keys or identities you trust",
		Long: `Verify resolves each IMAGE to a digest once, finds its signatures (cosign's
legacy .sig/.att tags and Sigstore bundles attached as OCI referrers, with the
referrers tag schema for registries without the API) and checks them against
what you trust: --key, a keyless identity (--certificate-identity[-regexp]
and --certificate-oidc-issuer[-regexp]; regular expressions match the whole
value), or certificates of your own CA (--ca-roots, --ca-intermediates, and
--certificate-identity[-regexp] for the email or URI it certified), or, for
Notary Project signatures, notation's own trust policy and trust store
(--notation-trust-policy, --notation-trust-store). With --type it checks an
attestation of that predicate type instead,
optionally with CEL --condition expressions.

Registry credentials come from the Docker config file ($DOCKER_CONFIG or
~/.docker/config.json), each sent only to its own registry.

Exit codes: 0 every image verified; 1 some image is not verified; 2 could
not decide (registry unreachable, limits exceeded, ...) or bad usage.

JSON output (-o json) is one object: {"images": [{"image", "digest",
"decision": "verified"|"denied"|"undecided", "reason", "result"}]}, where
result lists, per authority, the signatures that passed (source, format,
signer, keyFingerprint or issuer and subject, logIndex, timestamps) and why
each other candidate failed.`,
		Example: `  signet verify --key cosign.pub registry.example.org/app:v1
  signet verify --certificate-identity-regexp '^https://github.com/acme/.+$' \
      --certificate-oidc-issuer https://token.actions.githubusercontent.com ghcr.io/acme/app:v2
  signet verify --ca-roots corp-root.pem --ca-intermediates corp-codesigning-ca.pem \
      --certificate-identity release@example.com --insecure-ignore-tlog registry.example.org/app:v1
  signet verify --notation-trust-policy ~/.config/notation/trustpolicy.json \
      --notation-trust-store ~/.config/notation myregistry.azurecr.io/app:v1
  signet verify --key cosign.pub --type https://slsa.dev/provenance/v1 \
      --condition 'predicate.buildDefinition.buildType.startsWith("https://github.com/")' ghcr.io/acme/app@sha256:...`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return WithExitCode(ExitUndecided, err)
			}
			if o.trustPolicy != "" {
				dir, err := o.notationPolicies(cmd.Context(), cmd.ErrOrStderr())
				if err != nil {
					return WithExitCode(ExitUndecided, err)
				}
				defer os.RemoveAll(dir)
				o.policies = []string{dir}
			}
			if len(o.policies) > 0 {
				pt := &policyTestOptions{
					policySetOptions: policySetOptions{paths: o.policies, trustedRoot: o.trustedRoot, unmatched: policy.ActionDeny},
					images:           args, namespace: o.namespace, kind: "Pod", allowHTTP: o.allowHTTP, output: o.output, timeout: o.timeout,
					crossplaneRegistry: workload.DefaultCrossplaneRegistry, // no --resource here: no Crossplane package to resolve
				}
				if err := pt.Validate(); err != nil {
					return WithExitCode(ExitUndecided, err)
				}
				return pt.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), args)
		},
	}
	o.addFlags(cmd)
	return cmd
}

// imageOutcome is one line of output.
type imageOutcome struct {
	Image    string         `json:"image"`
	Digest   string         `json:"digest,omitempty"`
	Decision string         `json:"decision"`
	Reason   string         `json:"reason,omitempty"`
	Result   *verify.Result `json:"result,omitempty"`
}

func (o *verifyOptions) run(ctx context.Context, stdout io.Writer, images []string) error {
	refs := make([]reference.Reference, len(images))
	for i, s := range images {
		ref, err := reference.Parse(s)
		if err != nil {
			return WithExitCode(ExitUndecided, err)
		}
		refs[i] = ref
	}
	sigRepo, err := o.signatureRepositoryOf()
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	v, err := o.policy(sigRepo)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	rc, err := newRegistryClient(o.allowHTTP)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	// The flags make one policy over every image; it is decided as
	// admission and signet policy test decide (package check).
	var sources []*registry.Repository
	if sigRepo != nil {
		sources = append(sources, sigRepo)
	}
	snap, err := policy.NewSnapshot([]*policy.Policy{policy.ForEveryImage("command-line", v, o.allPlatforms, sources...)}, policy.Config{})
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	decisions, err := (&check.Decider{Registry: rc}).Decide(ctx, check.Request{Snapshot: snap, Images: images})
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	outcomes := make([]imageOutcome, len(refs))
	for i, d := range decisions {
		outcomes[i] = outcomeOf(refs[i], d)
	}

	if err := o.print(stdout, outcomes); err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	code := ExitOK
	for _, oc := range outcomes {
		switch oc.Decision {
		case "denied":
			code = ExitDenied
		case "undecided":
			if code == ExitOK {
				code = ExitUndecided
			}
		}
	}
	if code != ExitOK {
		return WithExitCode(code, errSilent)
	}
	return nil
}

// signatureRepositoryOf is where --signature-repository (or
// $COSIGN_REPOSITORY) says signatures are; nil for the image's own
// repository.
func (o *verifyOptions) signatureRepositoryOf() (*registry.Repository, error) {
	sigRepo := o.signatureRepository
	if sigRepo == "" {
		sigRepo = os.Getenv("COSIGN_REPOSITORY")
	}
	if sigRepo == "" {
		return nil, nil
	}
	ref, err := reference.Parse(sigRepo)
	if err != nil || ref.Tag() != "" || ref.Digest() != "" {
		return nil, fmt.Errorf("signature repository %q is not a repository name", sigRepo)
	}
	r := check.RepositoryOf(ref)
	return &r, nil
}

// errSilent ends a command with an exit code after it has said everything.
var errSilent = errors.New("")

// outcomeOf is what signet verify says of the decision d on ref, decided
// with the one policy its flags make.
func outcomeOf(ref reference.Reference, d check.Decision) imageOutcome {
	oc := imageOutcome{Image: ref.String()}
	if len(d.Policies) != 1 {
		// Not governed by the policy over every image: only an image that
		// cannot be parsed, and those were refused already.
		oc.Decision, oc.Reason = "undecided", strings.Join(d.Denials, "; ")
		return oc
	}
	pd := d.Policies[0]
	res := pd.Result
	if res == nil {
		oc.Decision, oc.Reason = "undecided", pd.Error
		return oc
	}
	oc.Digest = d.Digest
	oc.Result = res
	switch {
	case res.Verified:
		oc.Decision = "verified"
	case check.IsUndecided(res.Err):
		oc.Decision, oc.Reason = "undecided", res.Err.Error()
	default:
		oc.Decision, oc.Reason = "denied", res.Err.Error()
	}
	return oc
}

func (o *verifyOptions) print(w io.Writer, outcomes []imageOutcome) error {
	if o.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Images []imageOutcome `json:"images"`
		}{outcomes})
	}
	for _, oc := range outcomes {
		name := oc.Image
		if oc.Digest != "" && !strings.Contains(name, "@") {
			name += "@" + oc.Digest
		}
		switch oc.Decision {
		case "verified":
			fmt.Fprintf(w, "%s: verified\n", name)
			for _, ar := range oc.Result.Authorities {
				for _, s := range ar.Signatures {
					fmt.Fprintf(w, "  %s by %s\n    found in %s\n", what(s), s.Signer, s.Source)
					if s.LogIndex != nil {
						fmt.Fprintf(w, "    transparency log index %d\n", *s.LogIndex)
					}
					for _, ts := range s.Timestamps {
						fmt.Fprintf(w, "    %s %s\n", ts.Kind, ts.Time.Format(time.RFC3339))
					}
				}
			}
		case "denied":
			fmt.Fprintf(w, "%s: NOT verified: %s\n", name, oc.Reason)
			for _, ar := range oc.Result.Authorities {
				for _, f := range ar.Failures {
					fmt.Fprintf(w, "  %s: %s\n", f.Source, f.Reason)
				}
			}
		default:
			fmt.Fprintf(w, "%s: could not decide: %s\n", name, oc.Reason)
		}
	}
	return nil
}

func what(s verify.Signature) string {
	if s.PredicateType != "" && s.PredicateType != verify.CosignSignPredicateType {
		return "attestation " + s.PredicateType
	}
	return "signature"
}

// newRegistryClient makes a registry client whose credentials come from the
// given keychains first, then the Docker config file; allowHTTP permits
// plain-HTTP registries.
func newRegistryClient(allowHTTP bool, first ...authn.Keychain) (*registry.Client, error) {
	return local.RegistryClient(allowHTTP, nil, first...)
}
