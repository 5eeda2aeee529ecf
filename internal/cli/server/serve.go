package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/signet-dev/signet/internal/cli"
	"github.com/signet-dev/signet/internal/cloudauth"
	"github.com/signet-dev/signet/internal/workload"
)

// serveOptions are signet serve's flags. Validate checks them and keeps
// what it parsed (level, extractor) for run (wiring.go).
type serveOptions struct {
	logLevel       string
	listen         string
	metricsListen  string
	tlsCertDir     string
	tlsHosts       []string
	caOut          string
	policies       string
	validatingName string
	mutatingName   string
	allowHTTP      bool
	timeout        time.Duration
	cacheTTL       time.Duration
	cacheNegTTL    time.Duration
	cacheSize      int
	auditInterval  time.Duration
	enableHTTP2    bool
	imageFields    []string
	crossplaneReg  string
	fallbackSA     string
	cloudNames     []string
	cloud          *cloudauth.Keychain
	tlsSecret      string
	certValidity   time.Duration
	shutdownDelay  time.Duration
	tuf            tufOptions
	serving        servingOptions
	sharedCache    sharedCacheOptions
	clusterSettings

	// Parsed by Validate.
	level     slog.Level
	extractor *workload.Extractor
}

func newServeCommand() *cobra.Command {
	o := &serveOptions{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook (validate and mutate) with its policy controller",
		Long: `serve runs signet's admission webhook over HTTPS:

  /validate  ValidatingAdmissionWebhook: deny images that do not meet policy
  /mutate    MutatingAdmissionWebhook: pin tags to the verified digest
  /healthz   alive
  /readyz    ready once policies (and trust roots) are loaded
  /metrics   Prometheus metrics (with --metrics-listen, on that plain-HTTP
             address only)

Policies come from the cluster (ClusterImagePolicy and ImagePolicy objects,
watched; in-cluster configuration or --kubeconfig) or, with --policies DIR,
from files, without a cluster.

Without --tls-cert-dir, serve makes its own CA and serving certificate for
--tls-host names, writes the CA to --ca-out if given, and injects it into the
webhook configurations named by --validating-webhook / --mutating-webhook.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
			if err := o.run(cmd.Context(), cmd.ErrOrStderr()); err != nil {
				return cli.WithExitCode(cli.ExitUndecided, err)
			}
			return nil
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// AddFlags registers serve's flags on cmd.
func (o *serveOptions) AddFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	o.addFlags(f)
	f.StringVar(&o.listen, "listen", ":8443", "address to serve HTTPS on")
	f.StringVar(&o.metricsListen, "metrics-listen", "", "address to serve /metrics on, in plain HTTP, instead of on the HTTPS address (default: on --listen), e.g. :9090")
	f.StringVar(&o.tlsCertDir, "tls-cert-dir", "", "directory with tls.crt and tls.key (default: a self-generated certificate)")
	f.StringArrayVar(&o.tlsHosts, "tls-host", []string{"localhost", "127.0.0.1", "signet-webhook.signet-system.svc"}, "DNS name or IP of the self-generated certificate (repeatable)")
	f.StringVar(&o.tlsSecret, "tls-secret", "", "keep the self-generated certificate in this Secret of --namespace, shared by every replica and rotated before expiry (needs a cluster)")
	f.DurationVar(&o.certValidity, "cert-validity", 365*24*time.Hour, "validity of self-generated certificates; with --tls-secret they are rotated after two thirds of it")
	f.StringVar(&o.caOut, "ca-out", "", "write the self-generated CA certificate (PEM) to this file")
	f.StringVar(&o.policies, "policies", "", "load policies from this file or directory instead of the cluster")
	f.StringVar(&o.validatingName, "validating-webhook", "", "ValidatingWebhookConfiguration to inject the self-generated CA into")
	f.StringVar(&o.mutatingName, "mutating-webhook", "", "MutatingWebhookConfiguration to inject the self-generated CA into")
	o.tuf.AddFlags(f)
	o.serving.AddFlags(f)
	o.sharedCache.AddFlags(f)
	f.BoolVar(&o.allowHTTP, "allow-http-registry", false, "talk plain HTTP to registries (loopback test registries)")
	f.StringVar(&o.logLevel, "log-level", "info", "debug (also every plain allow), info (denials, warnings, changes), warn or error")
	f.DurationVar(&o.timeout, "decision-timeout", 20*time.Second, "deadline of one admission decision; keep it below the webhook's timeoutSeconds")
	f.DurationVar(&o.cacheTTL, "cache-ttl", 10*time.Minute, "how long a verified result is reused")
	f.DurationVar(&o.cacheNegTTL, "cache-negative-ttl", 30*time.Second, "how long a definite denial is reused")
	f.IntVar(&o.cacheSize, "cache-size", 100000, "most cached results")
	f.DurationVar(&o.auditInterval, "audit-interval", time.Hour, "time between full audits of what runs in the cluster (the leader writes PolicyReports, Events and metrics; changed policies and workloads are audited as they change); 0 turns the audit off. Needs cluster policies")
	f.StringArrayVar(&o.imageFields, "image-field", nil, "declare the image fields of another kind, KIND.GROUP=PATH[,PATH...] where a path like spec.steps[].image walks lists, e.g. Task.tekton.dev=spec.steps[].image (repeatable; add the kind to the webhook rules too)")
	f.StringVar(&o.crossplaneReg, "crossplane-registry", workload.DefaultCrossplaneRegistry, cli.CrossplaneRegistryUsage)
	f.StringVar(&o.fallbackSA, "fallback-service-account", "", "a service account in --namespace whose imagePullSecrets are tried for registries after the object's, its service account's and the matching policies' pull secrets (Tanzu's image-policy-registry-credentials); default none. Needs cluster policies")
	f.StringSliceVar(&o.cloudNames, "registry-credential-providers", nil, "pull from cloud registries with the pod's cloud identity, for those registries' hosts only: aws (Amazon ECR), google (Artifact Registry, GCR), azure (ACR); comma-separated, default none. Tried after the pull secrets that name the registry, before signet's own Docker config")
	f.DurationVar(&o.shutdownDelay, "shutdown-delay", 5*time.Second, "told to stop (SIGTERM), go on serving this long with /readyz answering 503, so the Service's endpoints drop this replica before it stops accepting; then requests in flight get --decision-timeout plus 2s to finish. Keep delay + decision timeout + 2s below the pod's terminationGracePeriodSeconds")
	f.BoolVar(&o.enableHTTP2, "enable-http2", false, "serve HTTP/2 (off by default: HTTP/2 rapid-reset and stream exhaustion attacks)")
}

// Validate checks the flags, before anything starts.
func (o *serveOptions) Validate() error {
	if err := o.validate(); err != nil {
		return err
	}
	if err := o.level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", o.logLevel)
	}
	if err := o.tuf.Validate(o.trustedRoot); err != nil {
		return err
	}
	if err := o.serving.Validate(); err != nil {
		return err
	}
	if o.metricsListen != "" {
		if _, _, err := net.SplitHostPort(o.metricsListen); err != nil {
			return fmt.Errorf("--metrics-listen %q: want HOST:PORT or :PORT: %w", o.metricsListen, err)
		}
		if o.metricsListen == o.listen {
			return fmt.Errorf("--metrics-listen %s is --listen's address: give another port, or leave --metrics-listen out to serve /metrics there", o.metricsListen)
		}
	}
	if o.timeout <= 0 || o.timeout > 29*time.Second {
		return errors.New("--decision-timeout must be positive and below 30s, the longest webhook timeout")
	}
	if o.shutdownDelay < 0 || o.shutdownDelay > time.Minute {
		return errors.New("--shutdown-delay must be between 0 and 1m")
	}
	if err := o.sharedCache.Validate(o.timeout); err != nil {
		return err
	}
	if o.tlsSecret != "" && o.tlsCertDir != "" {
		return errors.New("give --tls-secret or --tls-cert-dir, not both")
	}
	if o.auditInterval < 0 {
		return errors.New("--audit-interval must not be negative (0 turns the audit off)")
	}
	if o.fallbackSA != "" {
		if o.policies != "" {
			return errors.New("--fallback-service-account needs cluster policies: leave out --policies")
		}
		if errs := validation.IsDNS1123Subdomain(o.fallbackSA); len(errs) > 0 {
			return fmt.Errorf("--fallback-service-account %q is not a service account name: %s", o.fallbackSA, strings.Join(errs, "; "))
		}
	}
	cloud, err := cloudauth.New(o.cloudNames, cloudauth.Options{})
	if err != nil {
		return fmt.Errorf("--registry-credential-providers: %w", err)
	}
	o.cloud = cloud
	if o.certValidity < 3*time.Second {
		return errors.New("--cert-validity is too short")
	}
	if err := cli.ValidateCrossplaneRegistry(o.crossplaneReg); err != nil {
		return err
	}
	if o.policies != "" && (o.validatingName != "" || o.mutatingName != "" || o.tlsSecret != "") && o.kubeconfig == "" {
		return errors.New("--validating-webhook/--mutating-webhook need a cluster: give --kubeconfig")
	}
	o.extractor, err = newExtractor(o.imageFields, o.crossplaneReg)
	return err
}

// newExtractor reads images as --image-field and --crossplane-registry
// say (serve and policy impact).
func newExtractor(imageFields []string, crossplaneReg string) (*workload.Extractor, error) {
	custom, err := parseImageFields(imageFields)
	if err != nil {
		return nil, err
	}
	opts := []workload.Option{workload.CrossplaneRegistry(crossplaneReg)}
	for _, c := range custom {
		opts = append(opts, c)
	}
	return workload.NewExtractor(opts...)
}

// parseImageFields parses --image-field values: KIND.GROUP=PATH[,PATH...]
// (KIND alone for the core group).
func parseImageFields(values []string) ([]workload.Custom, error) {
	var out []workload.Custom
	for _, v := range values {
		kindGroup, paths, ok := strings.Cut(v, "=")
		if !ok || kindGroup == "" || paths == "" {
			return nil, fmt.Errorf("--image-field %q: want KIND.GROUP=PATH[,PATH...]", v)
		}
		kind, group, _ := strings.Cut(kindGroup, ".")
		out = append(out, workload.Custom{Kind: workload.Kind{Group: group, Kind: kind}, Paths: strings.Split(paths, ",")})
	}
	return out, nil
}

// needsCluster reports whether serve talks to a cluster: for its policies
// (no --policies), or to keep its certificate in a Secret or inject its CA
// into webhook configurations.
func (o *serveOptions) needsCluster() bool {
	return o.policies == "" || o.validatingName != "" || o.mutatingName != "" || o.tlsSecret != ""
}

// policiesSource names where the policies come from, for the log.
func (o *serveOptions) policiesSource() string {
	if o.policies != "" {
		return o.policies
	}
	return "cluster"
}
