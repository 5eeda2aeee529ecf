package controller

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/internal/registry"
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
// informer cache (every admitted Pod names one), Secrets read by name; then
// the fallback service account's, when there is one
// (FallbackServiceAccount).
func (c *Controller) PullSecrets(ctx context.Context, namespace string, names []string, serviceAccount string) ([]registry.CredentialSource, error) {
	sources, err := ReadPullSecretsFrom(ctx, c.cache, c.client, namespace, names, serviceAccount)
	if err != nil {
		return nil, err
	}
	fb, ok, err := c.FallbackPullSecrets(ctx)
	if err != nil || !ok {
		return sources, err
	}
	return append(sources, fb), nil
}

// FallbackPullSecrets reads the imagePullSecrets of FallbackServiceAccount
// (false when there is none).
func (c *Controller) FallbackPullSecrets(ctx context.Context) (registry.CredentialSource, bool, error) {
	if c.FallbackServiceAccount == "" {
		return registry.CredentialSource{}, false, nil
	}
	src, err := ReadFallbackPullSecrets(ctx, c.cache, c.client, c.Namespace, c.FallbackServiceAccount)
	return src, err == nil, err
}

// ServiceAccounts reads service accounts from the controller's informer
// cache (their imagePullSecrets only).
func (c *Controller) ServiceAccounts() client.Reader { return c.cache }

// ReadPullSecrets reads an object's pull credentials through r: the named
// Secrets of the namespace, then the imagePullSecrets of the service
// account, one source each. A missing Secret is skipped, as the kubelet
// does, and so is one that is not a pull secret; a missing service account
// means none.
func ReadPullSecrets(ctx context.Context, r client.Reader, namespace string, names []string, serviceAccount string) ([]registry.CredentialSource, error) {
	return ReadPullSecretsFrom(ctx, r, r, namespace, names, serviceAccount)
}

// ReadPullSecretsFrom is ReadPullSecrets with service accounts read
// through accounts and Secrets through secrets.
func ReadPullSecretsFrom(ctx context.Context, accounts, secrets client.Reader, namespace string, names []string, serviceAccount string) ([]registry.CredentialSource, error) {
	var out []registry.CredentialSource
	seen := map[string]bool{}
	read := func(name, from string) error {
		if seen[name] {
			return nil
		}
		seen[name] = true
		data, err := readPullSecret(ctx, secrets, namespace, name)
		if data != nil {
			out = append(out, registry.CredentialSource{
				Name:    fmt.Sprintf("pull secret %s/%s of %s", namespace, name, from),
				Secrets: []map[string][]byte{data},
			})
		}
		return err
	}
	for _, n := range names {
		if err := read(n, "the object"); err != nil {
			return nil, err
		}
	}
	if serviceAccount == "" {
		return out, nil
	}
	sa, err := readServiceAccount(ctx, accounts, secrets, namespace, serviceAccount)
	if err != nil || sa == nil {
		return out, err
	}
	for _, ref := range sa.ImagePullSecrets {
		if err := read(ref.Name, "service account "+serviceAccount); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadFallbackPullSecrets reads the imagePullSecrets of signet's fallback
// service account (in signet's namespace) as one source, tried after the
// matching policies' pull secrets. What keeps it from giving credentials
// (the account or a Secret missing, no imagePullSecrets) is the source's
// Problem, named in undecided reasons; an error is a failure to read.
func ReadFallbackPullSecrets(ctx context.Context, accounts, secrets client.Reader, namespace, serviceAccount string) (registry.CredentialSource, error) {
	src := registry.CredentialSource{Name: "fallback service account " + namespace + "/" + serviceAccount, Fallback: true}
	sa, err := readServiceAccount(ctx, accounts, secrets, namespace, serviceAccount)
	switch {
	case err != nil:
		return src, err
	case sa == nil:
		src.Problem = "not found"
		return src, nil
	case len(sa.ImagePullSecrets) == 0:
		src.Problem = "has no imagePullSecrets"
		return src, nil
	}
	var problems []string
	for _, ref := range sa.ImagePullSecrets {
		data, err := readPullSecret(ctx, secrets, namespace, ref.Name)
		switch {
		case err != nil:
			return src, err
		case data == nil:
			problems = append(problems, fmt.Sprintf("Secret %s is missing or not a pull secret", ref.Name))
		default:
			src.Secrets = append(src.Secrets, data)
		}
	}
	src.Problem = strings.Join(problems, ", ")
	return src, nil
}

// readServiceAccount reads a service account through accounts (asking
// direct, when accounts is a cache, for one created a moment ago); nil
// when there is none. When the cache has none and the API server cannot
// be asked (it is down, or restarting), the cache's answer stands: a
// decision made without an account's pull secrets can see less in the
// registry, never more, so it cannot admit what the secrets would not.
func readServiceAccount(ctx context.Context, accounts, direct client.Reader, namespace, name string) (*corev1.ServiceAccount, error) {
	var sa corev1.ServiceAccount
	key := client.ObjectKey{Namespace: namespace, Name: name}
	err := accounts.Get(ctx, key, &sa)
	if apierrors.IsNotFound(err) && accounts != direct {
		// Created a moment ago, not in the cache yet: ask.
		if derr := direct.Get(ctx, key, &sa); derr == nil || apierrors.IsNotFound(derr) || ctx.Err() != nil {
			err = derr
		}
	}
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("ServiceAccount %s/%s: %w", namespace, name, err)
	}
	return &sa, nil
}

// readPullSecret reads a Secret's data if it is a pull secret; nil when
// it is missing or of another type.
func readPullSecret(ctx context.Context, secrets client.Reader, namespace, name string) (map[string][]byte, error) {
	var s corev1.Secret
	err := secrets.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, &s)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading the pull secret %s/%s: %w", namespace, name, err)
	}
	if s.Type != corev1.SecretTypeDockerConfigJson && s.Type != corev1.SecretTypeDockercfg {
		return nil, nil
	}
	return s.Data, nil
}
