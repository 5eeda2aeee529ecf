package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/workload"
)

func newPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, lint, export and convert image policies; see what they would change in a cluster",
	}
	cmd.AddCommand(newPolicyTestCommand(), newPolicyLintCommand(), newPolicyExportCommand(), newPolicyConvertCommand())
	return cmd
}

// policySetOptions load and compile policies from files.
type policySetOptions struct {
	paths       []string
	trustedRoot string
	unmatched   policy.Action
	excluded    []string
	optIn       NamespaceOptIn
}

func (o *policySetOptions) addFlags(cmd *cobra.Command, withSettings bool) {
	f := cmd.Flags()
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json to use as the default trust root instead of the embedded public-good root")
	if withSettings {
		f.StringArrayVar(&o.paths, "policy", nil, "policy file or directory (YAML or JSON; repeatable); Secrets named by key.secretRef may be in the same files")
		EnumVar(f, &o.unmatched, "unmatched", policy.ActionDeny, policy.ParseAction, "what happens to an image no policy selects: deny, warn or allow")
		f.StringArrayVar(&o.excluded, "exclude-namespace", nil, "namespace that is never enforced (repeatable)")
		o.optIn.AddFlags(f)
	}
}

// validateSettings checks the cluster-wide settings of test and export.
func (o *policySetOptions) validateSettings() error {
	return o.optIn.Validate()
}

// load reads and compiles the policies; invalid policies are returned in
// the snapshot (they deny what they match) and listed in invalid.
func (o *policySetOptions) load(ctx context.Context) (snap *policy.Snapshot, set *manifests.Set, invalid []*policy.InvalidError, err error) {
	if len(o.paths) == 0 {
		return nil, nil, nil, errors.New("give at least one --policy file or directory")
	}
	set, err = manifests.Load(o.paths...)
	if err != nil {
		return nil, set, nil, err
	}
	if len(set.Policies) == 0 {
		return nil, set, nil, fmt.Errorf("no ClusterImagePolicy or ImagePolicy found in %s", strings.Join(o.paths, ", "))
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
	var compiled []*policy.Policy
	for _, obj := range set.Policies {
		p := policy.CompileObject(ctx, obj, res)
		if p.Err != nil {
			invalid = append(invalid, p.Err)
		}
		compiled = append(compiled, p)
	}
	snap, err = policy.NewSnapshot(compiled, policy.Config{Unmatched: o.unmatched, ExcludedNamespaces: o.excluded, NamespaceOptIn: o.optIn.Enabled, NamespaceOptInLabel: o.optIn.Label})
	return snap, set, invalid, err
}

type policyTestOptions struct {
	policySetOptions
	images     []string
	resources  []string
	namespace  string
	nsLabels   []string
	kind       string
	allowHTTP  bool
	output     string
	timeout    time.Duration
	labelsSeen map[string]string

	// crossplaneRegistry resolves Crossplane packages without a registry.
	crossplaneRegistry string
}

func newPolicyTestCommand() *cobra.Command {
	o := &policyTestOptions{}
	cmd := &cobra.Command{
		Use:   "test --policy FILE|DIR --image IMAGE... [--namespace NS]",
		Short: "Evaluate images against policies exactly as admission would",
		Long: `policy test evaluates each --image against the policies in the --policy files
the way signet's admission webhook would, without a cluster: which policies
matched, each authority's result, the decision, the warnings.

ImagePolicies apply only in their namespace: give --namespace (and
--namespace-label for policies with a namespaceSelector) to test them.

Exit codes: 0 every image allowed (warnings included), 1 some image denied,
2 could not decide or bad input.`,
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
	f.StringArrayVar(&o.images, "image", nil, "image reference to evaluate (repeatable)")
	f.StringArrayVar(&o.resources, "resource", nil, "object file (Pod, Deployment, CronJob, Crossplane Provider, ...) whose every image is evaluated in its namespace (repeatable)")
	f.StringVar(&o.namespace, "namespace", "", "namespace the images are admitted in")
	f.StringArrayVar(&o.nsLabels, "namespace-label", nil, "label of that namespace, KEY=VALUE (repeatable)")
	f.StringVar(&o.kind, "kind", "Pod", "kind of the admitted object (for policies with match.kinds)")
	f.StringVar(&o.crossplaneRegistry, "crossplane-registry", workload.DefaultCrossplaneRegistry, CrossplaneRegistryUsage+"; for --resource files")
	f.BoolVar(&o.allowHTTP, "allow-http-registry", false, "talk plain HTTP to registries (loopback test registries)")
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up (exit 2) after this long")
	return cmd
}

func (o *policyTestOptions) Validate() error {
	if err := o.validateSettings(); err != nil {
		return err
	}
	switch o.output {
	case "text", "json":
	default:
		return fmt.Errorf("--output must be text or json, not %q", o.output)
	}
	if len(o.images) == 0 && len(o.resources) == 0 {
		return errors.New("give at least one --image or --resource")
	}
	if err := ValidateCrossplaneRegistry(o.crossplaneRegistry); err != nil {
		return err
	}
	o.labelsSeen = map[string]string{}
	for _, kv := range o.nsLabels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("--namespace-label %q: want KEY=VALUE", kv)
		}
		o.labelsSeen[k] = v
	}
	if len(o.nsLabels) > 0 && o.namespace == "" {
		return errors.New("--namespace-label needs --namespace")
	}
	if o.namespace != "" {
		// The API server labels every namespace with its name.
		if _, set := o.labelsSeen["kubernetes.io/metadata.name"]; !set {
			o.labelsSeen["kubernetes.io/metadata.name"] = o.namespace
		}
	}
	return nil
}

func (o *policyTestOptions) run(ctx context.Context, stdout, stderr io.Writer) error {
	snap, _, invalid, err := o.load(ctx)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	for _, ie := range invalid {
		fmt.Fprintf(stderr, "warning: %v (images it selects are denied)\n", ie)
	}
	rc, err := newRegistryClient(o.allowHTTP)
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	// No cache: every image is decided afresh. Secrets among the policy
	// files supply signature pull credentials.
	dc := &check.Decider{Registry: rc, Clients: &check.Clients{
		New: func(kc *registry.SecretKeychain) (*registry.Client, error) { return newRegistryClient(o.allowHTTP, kc) },
	}}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	target := policy.Target{Namespace: o.namespace, NamespaceLabels: o.labelsSeen, Kind: o.kind}
	decisions, err := dc.Decide(ctx, check.Request{Snapshot: snap, Target: target, Images: o.images})
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	objs, err := o.loadResources()
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	for _, obj := range objs {
		req := check.Request{Snapshot: snap, Target: target}
		req.Target.Kind = obj.kind.Kind
		if obj.namespace != "" && obj.namespace != req.Target.Namespace {
			req.Target.Namespace = obj.namespace
			req.Target.NamespaceLabels = map[string]string{"kubernetes.io/metadata.name": obj.namespace}
		}
		for _, im := range obj.images {
			req.Images = append(req.Images, im.Image)
		}
		ds, err := dc.Decide(ctx, req)
		if err != nil {
			return WithExitCode(ExitUndecided, err)
		}
		for i, im := range obj.images {
			ds[i].Image = fmt.Sprintf("%s %s: %s: %s", obj.kind.Kind, obj.name, im.Path, im.Image)
		}
		decisions = append(decisions, ds...)
	}
	if err := printDecisions(stdout, o.output, decisions); err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	return decisionsExit(decisions)
}

// decisionsExit: 1 if any image is denied by policy, 2 if denied only
// because signet could not decide, 0 otherwise.
func decisionsExit(decisions []check.Decision) error {
	code := ExitOK
	for _, d := range decisions {
		if d.Allowed {
			continue
		}
		undecided := len(d.Policies) > 0
		for _, p := range d.Policies {
			if p.Error == "" || p.Invalid {
				undecided = false
			}
		}
		if undecided && code == ExitOK {
			code = ExitUndecided
		} else if !undecided {
			code = ExitDenied
		}
	}
	if code != ExitOK {
		return WithExitCode(code, errSilent)
	}
	return nil
}

func printDecisions(w io.Writer, output string, decisions []check.Decision) error {
	if output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Images []check.Decision `json:"images"`
		}{decisions})
	}
	for _, d := range decisions {
		name := d.Image
		if d.Digest != "" && !strings.Contains(name, "@") {
			name += " (" + d.Digest + ")"
		}
		verdict := "allowed"
		if !d.Allowed {
			verdict = "DENIED"
		}
		fmt.Fprintf(w, "%s: %s\n", name, verdict)
		for _, p := range d.Policies {
			state := "passed"
			switch {
			case p.Invalid:
				state = "invalid policy"
			case p.Error != "", p.Result != nil && check.IsUndecided(p.Result.Err):
				state = "could not decide"
			case p.Result != nil && !p.Result.Verified:
				state = "failed"
			}
			fmt.Fprintf(w, "  policy %s (%s): %s\n", p.Policy, p.Mode, state)
			if p.Result == nil {
				continue
			}
			for _, ar := range p.Result.Authorities {
				if ar.Passed {
					for _, s := range ar.Signatures {
						fmt.Fprintf(w, "    authority %s: passed, %s by %s\n", ar.Name, what(s), s.Signer)
					}
				} else {
					fmt.Fprintf(w, "    authority %s: %s\n", ar.Name, ar.Reason)
				}
			}
		}
		for _, r := range d.Denials {
			fmt.Fprintf(w, "  denied: %s\n", r)
		}
		for _, r := range d.Warnings {
			fmt.Fprintf(w, "  warning: %s\n", r)
		}
		if d.PinnedImage != "" {
			fmt.Fprintf(w, "  admitted as %s\n", d.PinnedImage)
		}
	}
	return nil
}

func newPolicyLintCommand() *cobra.Command {
	o := &policySetOptions{}
	cmd := &cobra.Command{
		Use:   "lint FILE|DIR...",
		Short: "Check policy files: schema and semantics, with the messages the server gives",
		Long: `lint loads every ClusterImagePolicy and ImagePolicy in the files and
directories given and reports every problem with its field path: unknown
fields, an identity without issuer or subject, an invalid regular expression
or CEL condition, a pattern that cannot match, a key that is not a public key,
a secretRef to a Secret that is not in the files.

Exit codes: 0 every policy is valid; 1 some policy is invalid; 2 the files
could not be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.paths = args
			_, set, invalid, err := o.load(cmd.Context())
			if err != nil {
				var pathErr *fs.PathError
				if errors.As(err, &pathErr) {
					return WithExitCode(ExitUndecided, err)
				}
				return WithExitCode(ExitDenied, err)
			}
			for _, ie := range invalid {
				where := set.Sources[ie.Object]
				for _, fe := range ie.Errors {
					fmt.Fprintf(cmd.OutOrStdout(), "%s: %s: %s\n", where, ie.Object, fe)
				}
			}
			if len(invalid) > 0 {
				return WithExitCode(ExitDenied, fmt.Errorf("%d of %d policies are invalid", len(invalid), len(set.Policies)))
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d policies are valid\n", len(set.Policies))
			return nil
		},
	}
	o.addFlags(cmd, false)
	return cmd
}

type resource struct {
	kind      workload.Kind
	name      string
	namespace string
	images    []workload.Image
}

// loadResources reads the --resource files and lists their images.
func (o *policyTestOptions) loadResources() ([]resource, error) {
	if len(o.resources) == 0 {
		return nil, nil
	}
	set, err := manifests.Load(o.resources...)
	if err != nil {
		return nil, err
	}
	ex, err := workload.NewExtractor(workload.CrossplaneRegistry(o.crossplaneRegistry))
	if err != nil {
		return nil, err
	}
	var out []resource
	for _, doc := range set.Others {
		group, _, _ := strings.Cut(doc.APIVersion, "/")
		if !strings.Contains(doc.APIVersion, "/") {
			group = ""
		}
		k := workload.Kind{Group: group, Kind: doc.Kind}
		var obj map[string]any
		if err := json.Unmarshal(doc.JSON, &obj); err != nil {
			return nil, fmt.Errorf("%s: %w", doc.Source, err)
		}
		if !ex.Handles(k) {
			return nil, fmt.Errorf("%s: %s holds no images signet knows how to find", doc.Source, k)
		}
		imgs, err := ex.Images(k, obj)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", doc.Source, err)
		}
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		ns, _ := meta["namespace"].(string)
		out = append(out, resource{kind: k, name: name, namespace: ns, images: imgs})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no workload objects in %s", strings.Join(o.resources, ", "))
	}
	return out, nil
}
