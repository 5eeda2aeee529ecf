package server

import (
	"os"

	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/policy"
)

// clusterSettings are the flags signet serve and signet node-agent share:
// where the cluster and signet's namespace are, the default trust root, and
// the cluster-wide enforcement settings, which the two must agree on.
type clusterSettings struct {
	kubeconfig  string
	namespace   string
	trustedRoot string
	unmatched   policy.Action
	excluded    []string
	optIn       cli.NamespaceOptIn
}

func (o *clusterSettings) addFlags(f *pflag.FlagSet) { o.addFlagsNamed(f, "namespace") }

// addFlagsNamed is addFlags with signet's own namespace under the flag
// namespaceFlag (policy impact's --namespace is the namespace it reads).
func (o *clusterSettings) addFlagsNamed(f *pflag.FlagSet, namespaceFlag string) {
	f.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (default: in-cluster configuration, then $KUBECONFIG)")
	f.StringVar(&o.namespace, namespaceFlag, envOr("POD_NAMESPACE", "signet-system"), "signet's own namespace: where secretRefs without a namespace look; never enforced")
	f.StringVar(&o.trustedRoot, "trusted-root", "", "Sigstore trusted_root.json to use as the default trust root instead of the embedded public-good root")
	cli.EnumVar(f, &o.unmatched, "unmatched", policy.ActionDeny, policy.ParseAction, "what happens to an image no policy selects: deny, warn or allow")
	f.StringArrayVar(&o.excluded, "exclude-namespace", []string{"kube-system"}, "namespace never enforced (repeatable; signet's own namespace is always excluded)")
	o.optIn.AddFlags(f)
}

// validate checks the settings that can be wrong on their own.
func (o *clusterSettings) validate() error {
	return o.optIn.Validate()
}

// policyConfig is the policy configuration the settings give: signet's own
// namespace is never enforced.
func (o *clusterSettings) policyConfig() policy.Config {
	excluded := append([]string{o.namespace}, o.excluded...)
	return policy.Config{Unmatched: o.unmatched, ExcludedNamespaces: excluded, NamespaceOptIn: o.optIn.Enabled, NamespaceOptInLabel: o.optIn.Label}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// restConfig connects to --kubeconfig, else in-cluster, else $KUBECONFIG,
// with a rate limit of clientQPS.
func (o *clusterSettings) restConfig() (*rest.Config, error) {
	cfg, err := o.loadRestConfig()
	if err != nil {
		return nil, err
	}
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = clientQPS, 2*clientQPS
	}
	return cfg, nil
}

// clientQPS bounds signet's requests to the API server a second, per
// client: admission reads each admitted object's service account and pull
// secrets, so client-go's default of 5 would queue a burst of admissions
// behind one another.
const clientQPS = 50

func (o *clusterSettings) loadRestConfig() (*rest.Config, error) {
	if o.kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	}
	if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
}
