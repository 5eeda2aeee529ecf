package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Labels implements admission.Namespaces from the informer cache.
func (c *Controller) Labels(ctx context.Context, name string) (map[string]string, error) {
	var ns corev1.Namespace
	if err := c.cache.Get(ctx, client.ObjectKey{Name: name}, &ns); err != nil {
		return nil, err
	}
	return ns.Labels, nil
}

// PullSecrets implements admission.Credentials: service accounts from the
// informer cache (every admitted Pod names one), Secrets read by name.
func (c *Controller) PullSecrets(ctx context.Context, namespace string, names []string, serviceAccount string) ([]map[string][]byte, error) {
	return ReadPullSecretsFrom(ctx, c.cache, c.client, namespace, names, serviceAccount)
}

// ServiceAccounts reads service accounts from the controller's informer
// cache (their imagePullSecrets only).
func (c *Controller) ServiceAccounts() client.Reader { return c.cache }

// ReadPullSecrets reads an object's pull credentials through r: the named
// Secrets of the namespace, then the imagePullSecrets of the service
// account. A missing Secret is skipped, as the kubelet does; a missing
// service account means none.
func ReadPullSecrets(ctx context.Context, r client.Reader, namespace string, names []string, serviceAccount string) ([]map[string][]byte, error) {
	return ReadPullSecretsFrom(ctx, r, r, namespace, names, serviceAccount)
}

// ReadPullSecretsFrom is ReadPullSecrets with service accounts read
// through accounts and Secrets through secrets.
func ReadPullSecretsFrom(ctx context.Context, accounts, secrets client.Reader, namespace string, names []string, serviceAccount string) ([]map[string][]byte, error) {
	if serviceAccount != "" {
		var sa corev1.ServiceAccount
		key := client.ObjectKey{Namespace: namespace, Name: serviceAccount}
		err := accounts.Get(ctx, key, &sa)
		if apierrors.IsNotFound(err) && accounts != secrets {
			// Created a moment ago, not in the cache yet: ask.
			err = secrets.Get(ctx, key, &sa)
		}
		switch {
		case err == nil:
			for _, ref := range sa.ImagePullSecrets {
				names = append(names, ref.Name)
			}
		case !apierrors.IsNotFound(err):
			return nil, fmt.Errorf("ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
		}
	}
	var out []map[string][]byte
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		var s corev1.Secret
		err := secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: n}, &s)
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return nil, fmt.Errorf("reading the pull secret %s/%s: %w", namespace, n, err)
		}
		if s.Type == corev1.SecretTypeDockerConfigJson || s.Type == corev1.SecretTypeDockercfg {
			out = append(out, s.Data)
		}
	}
	return out, nil
}
