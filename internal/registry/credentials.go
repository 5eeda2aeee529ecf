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

// CredentialSource is one place pull credentials come from, named for
// messages ("imagePullSecrets of Pod ns/x", "service account ns/default"):
// the data of its Secrets, in order. Name never holds a credential.
type CredentialSource struct {
	Name    string
	Secrets []map[string][]byte
	// Fallback marks the sources tried after the matching policies'
	// pull secrets (signet's fallback service account).
	Fallback bool
	// Problem says why the source gives fewer credentials than it was
	// meant to (a missing Secret, no imagePullSecrets), for undecided
	// reasons; "" when none.
	Problem string
}

// SecretKeychain holds registry credentials from Kubernetes pull secrets
// (.dockerconfigjson or the older .dockercfg). Each credential is returned
// only for the registry host it names.
type SecretKeychain struct {
	// auths are the distinct credentials of each host, in the order of
	// the secrets; Resolve returns the first, or the one Alternative
	// chose.
	auths map[string][]secretAuth
	// host and pick: Resolve returns auths[host][pick] for host.
	host string
	pick int
}

type secretAuth struct {
	cfg    authn.AuthConfig
	secret int // index of the secret it came from
}

var _ authn.Keychain = (*SecretKeychain)(nil)

// NewSecretKeychain parses the data of pull secrets, in order: the first
// secret naming a host wins (see Alternative for the others).
func NewSecretKeychain(secrets ...map[string][]byte) (*SecretKeychain, error) {
	k := &SecretKeychain{auths: map[string][]secretAuth{}}
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
		// A secret gives each host one credential: of keys spelling one
		// registry differently ("docker.io",
		// "https://index.docker.io/v1/"), the first in a fixed order, so the
		// same secret always gives the same credential.
		given := map[string]bool{}
		for _, key := range slices.Sorted(maps.Keys(entries)) {
			a := entries[key]
			host, ok := authHost(key)
			if !ok || given[host] {
				continue
			}
			given[host] = true
			cfg := authn.AuthConfig{Username: a.Username, Password: a.Password, IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
			if a.Auth != "" && cfg.Username == "" {
				raw, err := base64.StdEncoding.DecodeString(a.Auth)
				if err != nil {
					return nil, fmt.Errorf("pull secret %d: auth for %s is not base64", i+1, host)
				}
				cfg.Username, cfg.Password, _ = strings.Cut(string(raw), ":")
			}
			if !slices.ContainsFunc(k.auths[host], func(a secretAuth) bool { return a.cfg == cfg }) {
				k.auths[host] = append(k.auths[host], secretAuth{cfg: cfg, secret: i})
			}
		}
	}
	return k, nil
}

// Alternatives returns, for each distinct credential for host in the
// order of the secrets, the index of the secret it came from.
func (k *SecretKeychain) Alternatives(host string) []int {
	h, ok := authHost(host)
	if !ok {
		return nil
	}
	out := make([]int, len(k.auths[h]))
	for i, a := range k.auths[h] {
		out[i] = a.secret
	}
	return out
}

// Count returns how many distinct credentials k holds for host.
func (k *SecretKeychain) Count(host string) int {
	h, ok := authHost(host)
	if !ok {
		return 0
	}
	return len(k.auths[h])
}

// Alternative returns a keychain that answers for host with its i-th
// distinct credential (see Alternatives) and for every other host as k
// does. i out of range answers anonymously for host.
func (k *SecretKeychain) Alternative(host string, i int) *SecretKeychain {
	h, _ := authHost(host)
	return &SecretKeychain{auths: k.auths, host: h, pick: i}
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
		i := 0
		if host == k.host {
			i = k.pick
		}
		if as := k.auths[host]; i < len(as) {
			return authn.FromConfig(as[i].cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// Empty reports whether the keychain holds no credentials.
func (k *SecretKeychain) Empty() bool { return len(k.auths) == 0 }
