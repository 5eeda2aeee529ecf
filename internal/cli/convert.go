package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/convert"
)

type policyConvertOptions struct {
	from       string
	output     string
	allowLossy bool
	trustStore string
}

func (o *policyConvertOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.from, "from", "", "source format: "+strings.Join(convert.FormatNames(), ", "))
	f.StringVarP(&o.output, "output", "o", "yaml", "output format: yaml (notes as comments) or json (a v1 List; notes on stderr)")
	f.StringVar(&o.trustStore, "notation-trust-store", "", "with --from notation: notation's trust store directory (holding x509/<type>/<name>/), or its configuration directory")
	f.BoolVar(&o.allowLossy, "allow-lossy", false, "INSECURE: convert what signet cannot express anyway, as each warning says (a lossy conversion can admit or deny images the source would not)")
}

// Validate checks the options.
func (o *policyConvertOptions) Validate() error {
	if o.from == "" {
		return fmt.Errorf("give --from, one of %s", strings.Join(convert.FormatNames(), ", "))
	}
	if o.trustStore != "" && o.from != "notation" {
		return errors.New("--notation-trust-store goes with --from notation")
	}
	switch o.output {
	case "yaml", "json":
	default:
		return fmt.Errorf("--output must be yaml or json, not %q", o.output)
	}
	return nil
}

func newPolicyConvertCommand() *cobra.Command {
	o := &policyConvertOptions{}
	var formats strings.Builder
	for _, f := range convert.Formats() {
		fmt.Fprintf(&formats, "  %-18s %s\n", f.Name, f.Description)
	}
	cmd := &cobra.Command{
		Use:   "convert --from FORMAT FILE... [-o yaml|json] [--allow-lossy] [--notation-trust-store DIR]",
		Short: "Convert other systems' image policies into signet policies",
		Long: `convert reads policies written for another system and prints signet
ClusterImagePolicies and ImagePolicies that decide every image the way that
system does. Secrets holding the keys the policies name may be given among
the files: their public keys are then written into the policies.

What signet cannot express is refused, naming the source field; nothing is
dropped or approximated silently. --allow-lossy converts anyway and says, in
a warning per field, what was done instead. Settings that are cluster-wide
in signet (unmatched images, excluded namespaces, namespace opt-in,
registry credentials) are printed as notes naming the signet serve flag.

Formats:
` + formats.String() + `
Exit codes: 0 converted; 1 something cannot be expressed (without
--allow-lossy) or the source is invalid; 2 bad usage or unreadable files.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Validate(); err != nil {
				return WithExitCode(ExitUndecided, err)
			}
			return o.run(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	o.addFlags(cmd)
	return cmd
}

func (o *policyConvertOptions) run(ctx context.Context, files []string, stdout, stderr io.Writer) error {
	res, err := convert.Convert(ctx, o.from, files, convert.Options{AllowLossy: o.allowLossy, NotationTrustStore: o.trustStore})
	if err != nil {
		var refused *convert.RefusedError
		if errors.As(err, &refused) {
			return WithExitCode(ExitDenied, err)
		}
		if res != nil {
			// Nothing converted: the notes say what became of each
			// source (a pattern that selects nothing, ...).
			printNotes(stderr, res.Notes)
			return WithExitCode(ExitDenied, err)
		}
		return WithExitCode(ExitUndecided, err)
	}
	var out []byte
	if o.output == "json" {
		out, err = res.JSON()
	} else {
		out, err = res.YAML()
	}
	if err != nil {
		return WithExitCode(ExitUndecided, err)
	}
	printNotes(stderr, res.Notes)
	_, err = stdout.Write(out)
	return err
}

// printNotes writes a conversion's notes, lossy ones as warnings.
func printNotes(w io.Writer, notes []convert.Note) {
	for _, n := range notes {
		if n.Lossy {
			fmt.Fprintf(w, "warning: lossy: %s\n", n)
		} else {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
}
