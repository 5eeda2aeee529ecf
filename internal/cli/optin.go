package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/signet-dev/signet/internal/policy"
)

// NamespaceOptIn holds --namespace-opt-in and --namespace-opt-in-label, the
// same for every command that takes the cluster-wide settings (signet serve,
// node-agent, policy test and export).
type NamespaceOptIn struct {
	// Enabled enforces only the namespaces labelled Label=true.
	Enabled bool
	// Label is the namespace label key that opts a namespace in;
	// policy.OptInLabel (signet.dev/include) when empty, the flag's default.
	Label string
}

// AddFlags registers the two flags on f.
func (o *NamespaceOptIn) AddFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.Enabled, "namespace-opt-in", false, "enforce only namespaces labelled --namespace-opt-in-label=true")
	f.StringVar(&o.Label, "namespace-opt-in-label", policy.OptInLabel,
		"label key that opts a namespace in under --namespace-opt-in (value true); policy.sigstore.dev/include enforces the namespaces policy-controller does")
}

// Validate checks that the label is a Kubernetes label key, and given only
// with --namespace-opt-in.
func (o *NamespaceOptIn) Validate() error {
	if o.Label == "" || o.Label == policy.OptInLabel {
		return nil
	}
	if err := policy.ValidateLabelKey(o.Label); err != nil {
		return fmt.Errorf("--namespace-opt-in-label %q is not a label key: %w", o.Label, err)
	}
	if !o.Enabled {
		return errors.New("--namespace-opt-in-label needs --namespace-opt-in: without it every namespace not excluded is enforced, whatever its labels")
	}
	return nil
}
