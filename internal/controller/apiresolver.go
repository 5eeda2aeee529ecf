package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/trustspec"
)

// APIResolver resolves what policies name by reading the API, uncached,
// for those that do not run signet serve's controller (the node agent,
// signet policy impact): Secrets, and TrustRoots whose material is given
// in the object or a ConfigMap of signet's namespace: keys, trustedRoot
// and repository (TUF verified in memory), resolved with trustspec.Resolve
// as signet serve resolves them. It does not fetch TUF mirrors: a remote
// TrustRoot is read from the state signet serve's leader saves of it
// (SavedRemote), verified from its initial root; until that exists,
// policies naming it do not compile. Resolved material is cached by the
// resourceVersions it was read at. Safe for concurrent use.
type APIResolver struct {
	Client client.Reader
	// Namespace is signet's own: where secretRefs without a namespace and
	// TrustRoot ConfigMaps look.
	Namespace string
	// Trust returns the default trusted material.
	Trust func() (root.TrustedMaterial, error)

	mu    sync.Mutex
	cache map[string]trustCached
}

var _ policy.Resolver = (*APIResolver)(nil)

// SecretKeys implements policy.Resolver with ReadSecret.
func (r *APIResolver) SecretKeys(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return ReadSecret(ctx, r.Client, r.Namespace, namespace, name)
}

// ConfigMapData implements policy.ConfigMapResolver with ReadConfigMap.
func (r *APIResolver) ConfigMapData(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	return ReadConfigMap(ctx, r.Client, r.Namespace, namespace, name)
}

// TrustedMaterial implements policy.Resolver: the default root for "",
// else the TrustRoot name read through the API.
func (r *APIResolver) TrustedMaterial(ctx context.Context, name string) (root.TrustedMaterial, error) {
	if name == "" {
		if r.Trust == nil {
			return nil, errors.New("no default trust root")
		}
		return r.Trust()
	}
	var tr v1alpha1.TrustRoot
	if err := r.Client.Get(ctx, client.ObjectKey{Name: name}, &tr); err != nil {
		return nil, fmt.Errorf("reading the TrustRoot %s: %w", name, err)
	}
	spec := tr.Spec
	version := tr.ResourceVersion
	what := "TrustRoot " + name
	switch {
	case spec.Remote != nil:
		saved, cmVersion, err := SavedRemote(ctx, r.Client, r.Namespace, &tr)
		if err != nil {
			return nil, err
		}
		spec = saved
		version += "/" + cmVersion
		what += " (as signet serve saved it)"
	case spec.TrustedRoot != nil && spec.TrustedRoot.ConfigMapRef != nil:
		ref := spec.TrustedRoot.ConfigMapRef
		var cm corev1.ConfigMap
		if err := r.Client.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: ref.Name}, &cm); err != nil {
			return nil, fmt.Errorf("TrustRoot %s: reading the ConfigMap %s/%s: %w", name, r.Namespace, ref.Name, err)
		}
		key := ref.Key
		if key == "" {
			key = "trusted_root.json"
		}
		data, ok := cm.Data[key]
		if !ok {
			return nil, fmt.Errorf("TrustRoot %s: the ConfigMap %s/%s has no key %q", name, r.Namespace, ref.Name, key)
		}
		spec = v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: data}}
		version += "/" + cm.ResourceVersion
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if c, ok := r.cache[name]; ok && c.version == version {
		return c.material, nil
	}
	m, err := trustspec.Resolve(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if r.cache == nil {
		r.cache = map[string]trustCached{}
	}
	r.cache[name] = trustCached{version: version, material: m.TrustedRoot}
	return m.TrustedRoot, nil
}

// trustCached is a TrustRoot's resolved material and the resourceVersion
// (and ConfigMap's) it was resolved from.
type trustCached struct {
	version  string
	material root.TrustedMaterial
}
