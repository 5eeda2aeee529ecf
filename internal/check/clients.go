package check

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"

	"github.com/signet-dev/signet/internal/registry"
)

// maxClients bounds the registry clients kept for distinct credentials.
const maxClients = 256

// Clients makes registry clients for sets of pull credentials and keeps one
// per distinct set (at most maxClients; past that the pool starts over), so
// connections and tokens are reused across decisions.
type Clients struct {
	// New makes a client whose keychain tries kc first (then whatever the
	// process's own credentials are).
	New func(kc *registry.SecretKeychain) (*registry.Client, error)

	mu sync.Mutex
	m  map[string]*registry.Client
}

// For returns the client for the credentials in data (Secret data, in
// order of precedence) and a key naming that set. No credentials is
// (nil, "", nil): use the default client.
func (c *Clients) For(data []map[string][]byte) (*registry.Client, string, error) {
	if len(data) == 0 {
		return nil, "", nil
	}
	if c == nil || c.New == nil {
		return nil, "", fmt.Errorf("registry credentials from Secrets are not available here")
	}
	key := credentialsKey(data)
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.m[key]; ok {
		return rc, key, nil
	}
	kc, err := registry.NewSecretKeychain(data...)
	if err != nil {
		return nil, "", err
	}
	rc, err := c.New(kc)
	if err != nil {
		return nil, "", err
	}
	if c.m == nil || len(c.m) >= maxClients {
		c.m = map[string]*registry.Client{}
	}
	c.m[key] = rc
	return rc, key, nil
}

// credentialsKey hashes a set of Secret data, keys sorted, lengths
// prefixed, so distinct sets never share a key.
func credentialsKey(data []map[string][]byte) string {
	h := sha256.New()
	for _, d := range data {
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(h, "%d;", len(keys))
		for _, k := range keys {
			fmt.Fprintf(h, "%d:%s%d:", len(k), k, len(d[k]))
			h.Write(d[k])
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}
