package policy

// Key material and registry credentials a policy reads: keys given inline
// or read from Secrets (key.secretRef), and the Secrets of
// source.signaturePullSecrets. A ClusterImagePolicy reads where it says
// (default: signet's namespace); an ImagePolicy only its own namespace.

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
)

// signaturePullSecrets reads the Secrets of source.signaturePullSecrets:
// from signet's namespace for a ClusterImagePolicy, from the policy's own
// namespace for an ImagePolicy (a namespace's policy never borrows signet's
// credentials).
func (c *compiler) signaturePullSecrets(ctx context.Context, path string, src *v1alpha1.Source, repo *registry.Repository, o Object, r Resolver) []map[string][]byte {
	if src == nil || len(src.SignaturePullSecrets) == 0 {
		return nil
	}
	if repo == nil {
		c.fail(path+".signaturePullSecrets", "needs source.oci: the image's own repository is read with the admitted object's pull credentials")
		return nil
	}
	if r == nil {
		c.fail(path+".signaturePullSecrets", "secrets are not available here")
		return nil
	}
	var out []map[string][]byte
	for i, ref := range src.SignaturePullSecrets {
		spath := fmt.Sprintf("%s.signaturePullSecrets[%d]", path, i)
		data, err := r.SecretKeys(ctx, o.Namespace, ref.Name)
		if err != nil {
			c.fail(spath, "%v", err)
			continue
		}
		kc, err := registry.NewSecretKeychain(data)
		if err != nil {
			c.fail(spath, "Secret %s: %v", ref.Name, err)
			continue
		}
		if kc.Empty() {
			c.fail(spath, "Secret %s holds no registry credentials (want a kubernetes.io/dockerconfigjson Secret with .dockerconfigjson)", ref.Name)
			continue
		}
		out = append(out, data)
	}
	return out
}

// pullSecrets reads the Secrets of spec.pullSecrets: a ClusterImagePolicy
// from the namespace each names (default: signet's), an ImagePolicy from
// its own namespace only. Each is one credential source, named by the
// policy and the Secret (never its contents).
func (c *compiler) pullSecrets(ctx context.Context, refs []v1alpha1.PullSecretReference, o Object, r Resolver) []registry.CredentialSource {
	if len(refs) == 0 {
		return nil
	}
	if r == nil {
		c.fail("spec.pullSecrets", "secrets are not available here")
		return nil
	}
	var out []registry.CredentialSource
	for i, ref := range refs {
		path := fmt.Sprintf("spec.pullSecrets[%d]", i)
		ns := ref.Namespace
		if o.Kind == KindImagePolicy {
			if ns != "" && ns != o.Namespace {
				c.fail(path+".namespace", "an ImagePolicy reads Secrets of its own namespace only: remove namespace %q (the Secret is read from %s)", ns, o.Namespace)
				continue
			}
			ns = o.Namespace
		}
		name := ref.Name
		if ns != "" {
			name = ns + "/" + ref.Name
		}
		data, err := r.SecretKeys(ctx, ns, ref.Name)
		if err != nil {
			c.fail(path, "%v", err)
			continue
		}
		kc, err := registry.NewSecretKeychain(data)
		if err != nil {
			c.fail(path, "Secret %s: %v", name, err)
			continue
		}
		if kc.Empty() {
			c.fail(path, "Secret %s holds no registry credentials (want a kubernetes.io/dockerconfigjson Secret with .dockerconfigjson)", name)
			continue
		}
		out = append(out, registry.CredentialSource{
			Name:    fmt.Sprintf("%s's pull secret %s", o.ID(), name),
			Secrets: []map[string][]byte{data},
		})
	}
	return out
}

// keys parses key.data (one or more PEM blocks) or the Secret's values. A
// ClusterImagePolicy reads the Secret from secretRef.namespace (default:
// signet's namespace); an ImagePolicy only from its own namespace, so a
// tenant can neither use nor learn anything about another namespace's
// Secrets. Messages name the Secret and the key asked for, never the keys a
// Secret holds.
func (c *compiler) keys(ctx context.Context, path string, k *v1alpha1.KeyAuthority, o Object, r Resolver) []verify.PublicKey {
	switch {
	case k.Data != "" && k.SecretRef != nil:
		c.fail(path, "give exactly one of data or secretRef")
		return nil
	case k.Data != "":
		keys, err := parsePEMKeys([]byte(k.Data))
		if err != nil {
			c.fail(path+".data", "%v", err)
		}
		return keys
	case k.SecretRef != nil:
		ns := k.SecretRef.Namespace
		if o.Kind == KindImagePolicy {
			if ns != "" && ns != o.Namespace {
				c.fail(path+".secretRef.namespace", "an ImagePolicy reads Secrets of its own namespace only: remove namespace %q (the Secret is read from %s)", ns, o.Namespace)
				return nil
			}
			ns = o.Namespace
		}
		if r == nil {
			c.fail(path+".secretRef", "secrets are not available here")
			return nil
		}
		values, err := r.SecretKeys(ctx, ns, k.SecretRef.Name)
		if err != nil {
			c.fail(path+".secretRef", "%v", err)
			return nil
		}
		if len(values) == 0 {
			c.fail(path+".secretRef", "Secret %s has no keys", k.SecretRef.Name)
			return nil
		}
		names := make([]string, 0, len(values))
		for n := range values {
			names = append(names, n)
		}
		sort.Strings(names)
		if k.SecretRef.Key != "" {
			if _, ok := values[k.SecretRef.Key]; !ok {
				c.fail(path+".secretRef.key", "Secret %s has no key %q", k.SecretRef.Name, k.SecretRef.Key)
				return nil
			}
			names = []string{k.SecretRef.Key}
		}
		var keys []verify.PublicKey
		for _, n := range names {
			c.secretKeys = append(c.secretKeys, values[n])
			ks, err := parsePEMKeys(values[n])
			if err != nil {
				c.fail(path+".secretRef", "Secret %s key %q: %v", k.SecretRef.Name, n, err)
				continue
			}
			keys = append(keys, ks...)
		}
		return keys
	}
	c.fail(path, "give exactly one of data or secretRef")
	return nil
}

// parsePEMKeys parses one or more PEM public keys.
func parsePEMKeys(data []byte) ([]verify.PublicKey, error) {
	var keys []verify.PublicKey
	rest := data
	for {
		block, r := pem.Decode(rest)
		if block == nil {
			break
		}
		k, err := verify.ParsePublicKeyPEM(pem.EncodeToMemory(block))
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", len(keys)+1, err)
		}
		keys = append(keys, k)
		rest = r
	}
	if len(keys) == 0 {
		return nil, errors.New("not a PEM public key")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("text after the last PEM block")
	}
	return keys, nil
}
