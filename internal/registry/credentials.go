package registry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signet-dev/signet/internal/reference"
)

// SecretKeychain holds registry credentials from Kubernetes pull secrets
// (.dockerconfigjson or the older .dockercfg). Each credential is returned
// only for the registry host it names.
type SecretKeychain struct {
	auths map[string]authn.AuthConfig
}

// NewSecretKeychain parses the data of pull secrets, in order: the first
// secret naming a host wins.
func NewSecretKeychain(secrets ...map[string][]byte) (*SecretKeychain, error) {
	k := &SecretKeychain{auths: map[string]authn.AuthConfig{}}
	for i, data := range secrets {
		var entries map[string]dockerAuth
		switch {
		case data[".dockerconfigjson"] != nil:
			var cfg struct {
				Auths map[string]dockerAuth `json:"auths"`
			}
			if err := json.Unmarshal(data[".dockerconfigjson"], &cfg); err != nil {
				return nil, fmt.Errorf("pull secret %d: .dockerconfigjson: %w", i+1, err)
			}
			entries = cfg.Auths
		case data[".dockercfg"] != nil:
			if err := json.Unmarshal(data[".dockercfg"], &entries); err != nil {
				return nil, fmt.Errorf("pull secret %d: .dockercfg: %w", i+1, err)
			}
		default:
			return nil, fmt.Errorf("pull secret %d has neither .dockerconfigjson nor .dockercfg", i+1)
		}
		// Keys spelling one registry differently ("docker.io",
		// "https://index.docker.io/v1/") are taken in a fixed order, so the
		// same secret always gives the same credential.
		for _, key := range slices.Sorted(maps.Keys(entries)) {
			a := entries[key]
			host, ok := authHost(key)
			if _, seen := k.auths[host]; seen || !ok {
				continue
			}
			cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
			if a.Auth != "" && cfg.Username == "" {
				raw, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return nil, fmt.Errorf("pull secret %d: auth for %s is not base64", i+1, host)
				}
				cfg.Username, cfg.Password, _ = strings.Cut(string(raw), ":")
			}
			k.auths[host] = cfg
		}
	}
	return k, nil
}

type dockerAuth struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Auth          string `json:"auth"`
	IdentityToken string `json:"identitytoken"`
	RegistryToken string `json:"registrytoken"`
}

// authHost reduces a docker config key ("https://index.docker.io/v1/",
// "registry.example.org:5000") to its registry host spelled as references
// spell it (reference.CanonicalHost), so that a credential is found for its
// registry however either side spells it, and only for that registry. It
// reports false for a key naming no host a reference can have (a default
// port, a trailing dot, a wildcard): such a credential is never sent.
func authHost(key string) (string, bool) {
	s := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	s, _, _ = strings.Cut(s, "/")
	host, err := reference.CanonicalHost(s)
	return host, err == nil
}

// Resolve implements authn.Keychain.
func (k *SecretKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	if host, ok := authHost(target.RegistryStr()); ok {
		if a, ok := k.auths[host]; ok {
			return authn.FromConfig(a), nil
		}
	}
	return authn.Anonymous, nil
}

// Empty reports whether the keychain holds no credentials.
func (k *SecretKeychain) Empty() bool { return len(k.auths) == 0 }
