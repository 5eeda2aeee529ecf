package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/policydir"
	"github.com/signet-dev/signet/internal/policyjson"
)

// Export formats.
const formatContainersPolicy = "containers-policy"

type policyExportOptions struct {
	policySetOptions
	to         string
	namespace  string
	nsLabels   []string
	output     string
	allowLossy bool
	minRuntime policyjson.Runtime
	labels     map[string]string
}

func newPolicyExportCommand() *cobra.Command {
	o := &policyExportOptions{}
	cmd := &cobra.Command{
		Use:   "export --to containers-policy --policy FILE|DIR... [--namespace NS] [-o DIR|-]",
		Short: "Export the policies of a namespace as CRI-O's containers-policy.json",
		Long: `export writes a containers-policy.json that makes CRI-O (or podman, skopeo)
enforce at pull time the signet policies that apply in --namespace: the
ClusterImagePolicies whose match selects it and that namespace's ImagePolicies.
With -o DIR it writes DIR/<namespace>.json, for CRI-O's --signature-policy-dir,
and DIR/registries.d/signet.yaml, which turns on use-sigstore-attachments for
the scopes that verify signatures (install it in /etc/containers/registries.d).
With -o - it writes the policy.json to standard output and the registries.d
snippet to standard error.

Keys from Secrets are inlined (keyData); keyless authorities become fulcio
requirements with the CAs and Rekor keys of the trusted root (--trusted-root,
or the embedded public-good root). Images no policy selects follow --unmatched.

policy.json cannot express everything signet can. Glob patterns other than a
host, a repository prefix, ** or *.domain/**, tags (a literal repository and
tag is the scope repo:tag, but images given by digest alone, which the tag
pattern selects too, are checked against the scope repo), regular-expression or URI
identities, attestations and their CEL conditions, a choice between different
ways of signing, thresholds, digest: require and signatures kept in another
repository are refused, with the field named. --allow-lossy applies a stricter
translation instead where one exists (an authority that never passes,
requiring every alternative, reject); it never makes the file weaker than
signet.

--min-runtime names the oldest runtime that will load the file: a CRI-O
version (crio-1.28) or the containers-image library version podman and skopeo
link (containers-image-5.26); default crio-1.28. containers-image rejects a
whole policy.json with a field it does not know ("Unknown key"), and every
pull then fails, so the file uses only the fields that version reads. One key
is written as keyData, which every version reads. Any one of several keys
(keyDatas) or Rekor logs (rekorPublicKeyDatas) needs containers-image 5.33
(CRI-O 1.32, podman 5.3); for an older runtime it is refused naming the field,
and --allow-lossy requires a signature by every key (entries of the newest
Rekor log only). A certificate authority is written as pki, which needs
containers-image 5.35 (CRI-O 1.34). Versions before containers-image 5.24 (CRI-O 1.27) are not
supported: they read no fulcio or rekorPublicKeyData.

CRI-O  1.27  1.28  1.29  1.30  1.31  1.32  1.33  1.34
image  5.25  5.27  5.29  5.29  5.32  5.33  5.34  5.35

Exit codes: 0 written; 1 refused (not expressible); 2 bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return WithExitCode(ExitUndecided, err)
			}
			return o.run(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd, true)
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "format to export to: "+formatContainersPolicy)
	f.StringVar(&o.namespace, "namespace", "default", "namespace whose policies are exported")
	f.StringArrayVar(&o.nsLabels, "namespace-label", nil, "label of that namespace, KEY=VALUE (repeatable), for namespaceSelectors")
	f.StringVarP(&o.output, "output", "o", "-", "directory to write <namespace>.json and registries.d/signet.yaml to, or - for standard output")
	f.BoolVar(&o.allowLossy, "allow-lossy", false, "apply a stricter translation to what policy.json cannot express, with a warning, instead of refusing")
	o.minRuntime = policyjson.DefaultRuntime
	f.Var(&o.minRuntime, "min-runtime", "oldest runtime that will load the file, crio-1.MINOR or containers-image-5.MINOR: only the policy.json fields it reads are written (several keys in one requirement need crio-1.32, pki crio-1.34)")
	return cmd
}

func (o *policyExportOptions) Validate() error {
	if err := o.validateSettings(); err != nil {
		return err
	}
	if o.to != formatContainersPolicy {
		return fmt.Errorf("--to must be %s, not %q", formatContainersPolicy, o.to)
	}
	if err := policydir.CheckNamespace(o.namespace); err != nil {
		return fmt.Errorf("--namespace: %w", err)
	}
	o.labels = map[string]string{"kubernetes.io/metadata.name": o.namespace}
	for _, kv := range o.nsLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--namespace-label %q: want KEY=VALUE", kv)
		}
		o.labels[k] = v
	}
	return nil
}

func (o *policyExportOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	snap, set, invalid, err := o.load(ctx)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	for _, ie := range invalid {
		fmt.Fprintf(stderr, "warning: %v (images it selects are rejected)\n", ie)
	}
	var tr *root.TrustedRoot
	res := manifests.Resolver{Set: set, TrustRoot: local.TrustRoot, Default: func() (root.TrustedMaterial, error) {
		if tr != nil {
			return tr, nil
		}
		var err error
		tr, err = local.TrustedRoot(o.trustedRoot)
		return tr, err
	}}
	out, err := policyjson.Export(ctx, snap.Policies(), policyjson.Options{
		Target:     policy.Target{Namespace: o.namespace, NamespaceLabels: o.labels, Kind: "Pod"},
		Config:     snap.Config(),
		Resolver:   res,
		AllowLossy: o.allowLossy,
		Runtime:    o.minRuntime,
	})
	if out != nil {
		for _, n := range out.Notes {
			fmt.Fprintf(stderr, "note: %s\n", n)
		}
		if err == nil {
			for _, is := range out.Issues {
				fmt.Fprintf(stderr, "warning: %s\n", is)
			}
		}
	}
	if errors.Is(err, policyjson.ErrNotExpressible) {
		return WithExitCode(ExitDenied, err)
	}
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	data, err := out.File.MarshalIndent()
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	regs := out.Registries.YAML()
	if o.output == "-" {
		if _, err := stdout.Write(data); err != nil {
			return WithExitCode(ExitUndecided, err)
		}
		if len(regs) > 0 {
			fmt.Fprintf(stderr, "registries.d (e.g. /etc/containers/registries.d/signet.yaml):\n%s", regs)
		}
		return nil
	}
	if err := policydir.WriteFileAtomic(filepath.Join(o.output, o.namespace+".json"), data); err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	if len(regs) > 0 {
		dir := filepath.Join(o.output, "registries.d")
		if err := os.MkdirAll(dir, 0o755); err != nil { //nolint:gosec // G301: the runtime reads it
			return WithExitCode(ExitUndecided, err)
		}
		if err := policydir.WriteFileAtomic(filepath.Join(dir, "signet.yaml"), regs); err != nil {
			return WithExitCode(ExitUndecided, err)
		}
	}
	return nil
}
