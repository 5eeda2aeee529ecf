package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/signet-dev/signet/internal/version"
)

type versionOptions struct {
	output string
}

func (o *versionOptions) Validate() error {
	switch o.output {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("--output must be text or json, not %q", o.output)
}

func newVersionCommand() *cobra.Command {
	o := &versionOptions{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print signet's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			info := version.Get()
			if o.output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signet %s\ncommit: %s\ngo: %s\nplatform: %s\n",
				info.Version, info.Commit, info.GoVersion, info.Platform)
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	return cmd
}
