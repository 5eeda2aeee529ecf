package server

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/sigstore/sigstore-go/pkg/root"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
)

// filesThenCluster resolves what the --policy files' policies name: a
// Secret or TrustRoot among the files, else the cluster's.
type filesThenCluster struct {
	files   manifests.Resolver
	cluster policy.Resolver
}

var _ policy.Resolver = filesThenCluster{}

func (r filesThenCluster) SecretKeys(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	if v, err := r.files.SecretKeys(ctx, namespace, name); err == nil {
		return v, nil
	}
	return r.cluster.SecretKeys(ctx, namespace, name)
}

func (r filesThenCluster) ConfigMapData(ctx context.Context, namespace, name string) (map[string][]byte, error) {
	if v, err := r.files.ConfigMapData(ctx, namespace, name); err == nil {
		return v, nil
	}
	if cr, ok := r.cluster.(policy.ConfigMapResolver); ok {
		return cr.ConfigMapData(ctx, namespace, name)
	}
	return nil, fmt.Errorf("the ConfigMap %s/%s is not among the files given", namespace, name)
}

func (r filesThenCluster) TrustedMaterial(ctx context.Context, name string) (root.TrustedMaterial, error) {
	if _, ok := r.files.Set.TrustRoots[name]; name == "" || ok {
		return r.files.TrustedMaterial(ctx, name)
	}
	return r.cluster.TrustedMaterial(ctx, name)
}

// callerNamespaces reads namespace labels and pull secrets with the
// caller's credentials, uncached but for labels. What the caller may not
// read is said once on warn: without Namespaces, a namespace's labels are
// only kubernetes.io/metadata.name (as the API server sets it); without
// Secrets or ServiceAccounts, images are decided with local registry
// credentials only.
type callerNamespaces struct {
	client client.Reader
	warn   io.Writer

	mu                     sync.Mutex
	labels                 map[string]map[string]string
	noNamespaces, noSecret bool
}

var _ audit.Namespaces = (*callerNamespaces)(nil)

func (c *callerNamespaces) Labels(ctx context.Context, namespace string) (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.labels[namespace]; ok {
		return l, nil
	}
	var ns corev1.Namespace
	err := c.client.Get(ctx, client.ObjectKey{Name: namespace}, &ns)
	switch {
	case apierrors.IsForbidden(err):
		if !c.noNamespaces {
			c.noNamespaces = true
			fmt.Fprintf(c.warn, "warning: you may not read Namespaces (%v): policies' namespaceSelector and the opt-in label see only kubernetes.io/metadata.name\n", err)
		}
		ns.Labels = map[string]string{corev1.LabelMetadataName: namespace}
	case err != nil:
		return nil, err
	}
	if c.labels == nil {
		c.labels = map[string]map[string]string{}
	}
	c.labels[namespace] = ns.Labels
	return ns.Labels, nil
}

func (c *callerNamespaces) PullSecrets(ctx context.Context, namespace string, names []string, serviceAccount string) ([]registry.CredentialSource, error) {
	data, err := controller.ReadPullSecrets(ctx, c.client, namespace, names, serviceAccount)
	if apierrors.IsForbidden(err) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.noSecret {
			c.noSecret = true
			fmt.Fprintf(c.warn, "warning: you may not read pull secrets (%v): images are decided with your local registry credentials only; those they do not reach show as undecided\n", err)
		}
		return nil, nil
	}
	return data, err
}
