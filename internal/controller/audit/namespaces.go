package audit

import (
	"context"
	"strings"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/audit"
	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/registry"
)

// namespaceReader is what the audit reads of namespaces: labels from the
// policy controller's cache (labels), pull credentials through the audit's
// own client, each set (namespace, secret names, service account) read
// once until forget: 5,000 Pods of one service account cost one read.
type namespaceReader struct {
	labels audit.Namespaces
	client client.Reader

	mu   sync.Mutex
	memo map[string]pullSecrets
}

type pullSecrets struct {
	data []registry.CredentialSource
	err  error
}

func (n *namespaceReader) Labels(ctx context.Context, namespace string) (map[string]string, error) {
	return n.labels.Labels(ctx, namespace)
}

// PullSecrets reads an object's pull credentials as admission does: its
// own, its service account's, then signet's fallback service account's
// when the controller has one.
func (n *namespaceReader) PullSecrets(ctx context.Context, namespace string, names []string, serviceAccount string) ([]registry.CredentialSource, error) {
	key := namespace + "\x00" + serviceAccount + "\x00" + strings.Join(names, "\x00")
	n.mu.Lock()
	if p, ok := n.memo[key]; ok {
		n.mu.Unlock()
		return p.data, p.err
	}
	n.mu.Unlock()
	accounts := n.client
	if c, ok := n.labels.(interface{ ServiceAccounts() client.Reader }); ok {
		accounts = c.ServiceAccounts()
	}
	data, err := controller.ReadPullSecretsFrom(ctx, accounts, n.client, namespace, names, serviceAccount)
	if c, ok := n.labels.(interface {
		FallbackPullSecrets(context.Context) (registry.CredentialSource, bool, error)
	}); ok && err == nil {
		var fb registry.CredentialSource
		var has bool
		if fb, has, err = c.FallbackPullSecrets(ctx); has && err == nil {
			data = append(data, fb)
		}
	}
	if ctx.Err() == nil {
		n.mu.Lock()
		n.memo[key] = pullSecrets{data, err}
		n.mu.Unlock()
	}
	return data, err
}

// forget drops what was read: a rotated pull secret is read again by the
// next chunk.
func (n *namespaceReader) forget() {
	n.mu.Lock()
	clear(n.memo)
	n.mu.Unlock()
}
