package server

import (
	"log/slog"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signet-dev/signet/internal/admission"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/registry"
)

// admissionHandler decides admission reviews against the policies: its
// registry requests are counted by metrics (by host when a policy names
// it), its results cached (--cache-ttl, --cache-negative-ttl,
// --cache-size; shared between replicas with --shared-cache), its pull secrets read from the cluster when there is one.
func (o *serveOptions) admissionHandler(log *slog.Logger, policies *policySource, metrics *serveMetrics) (*admission.Handler, error) {
	rt := metrics.transport(registry.NewTransport())
	rc, err := local.RegistryClient(o.allowHTTP, rt, o.keychains()...)
	if err != nil {
		return nil, err
	}
	cache := check.NewCache(o.cacheTTL, o.cacheNegTTL, o.cacheSize)
	if cache.Shared, err = o.sharedCache.build(log); err != nil {
		return nil, err
	}
	metrics.cache = cache
	metrics.knownHost = func(host string) bool {
		snap := policies.snapshot()
		return snap != nil && snap.KnownHost(host)
	}
	return &admission.Handler{
		Snapshot: policies.snapshot,
		Decider: &check.Decider{Registry: rc, Cache: cache, Clients: &check.Clients{
			New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
				return local.RegistryClient(o.allowHTTP, rt, o.keychains(kc)...)
			},
		}},
		Extractor:        o.extractor,
		Namespaces:       policies.namespaces,
		Credentials:      policies.credentials,
		Timeout:          o.timeout,
		Log:              log,
		Observe:          metrics.observe,
		ObserveDecisions: metrics.observeDecisions,
		BodyBudget:       o.serving.bodyBudget(),
	}, nil
}

// keychains are the credentials a registry client tries before signet's own
// Docker config: the pull secrets kc (if any), then the cloud providers
// (--registry-credential-providers), which answer only for their hosts.
func (o *serveOptions) keychains(kc ...*registry.SecretKeychain) []authn.Keychain {
	var out []authn.Keychain
	for _, k := range kc {
		out = append(out, k)
	}
	if o.cloud != nil {
		out = append(out, o.cloud)
	}
	return out
}
