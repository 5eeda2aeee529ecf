package registrytest

import (
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
)

// HostKeychain gives one credential to one registry host and nothing
// (anonymous) to any other. It records the hosts it was asked about.
type HostKeychain struct {
	// Host is the registry, "host:port", that gets Auth.
	Host string
	Auth authn.Authenticator

	mu    sync.Mutex
	asked []string
}

var _ authn.Keychain = (*HostKeychain)(nil)

// Resolve implements authn.Keychain.
func (k *HostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	k.mu.Lock()
	k.asked = append(k.asked, r.RegistryStr())
	k.mu.Unlock()
	if r.RegistryStr() == k.Host {
		return k.Auth, nil
	}
	return authn.Anonymous, nil
}

// Asked lists the hosts the keychain was asked about, in order.
func (k *HostKeychain) Asked() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]string(nil), k.asked...)
}
