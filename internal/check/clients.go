package check

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
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
	// kcs are the parsed keychains of the sets in m, by credentialsKey.
	kcs map[string]*registry.SecretKeychain
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
	rc, err := c.attempt(data, key, "", 0)
	if err != nil {
		return nil, "", err
	}
	return rc, key, nil
}

// keychain returns the parsed keychain of data, whose credentialsKey is
// key.
func (c *Clients) keychain(data []map[string][]byte, key string) (*registry.SecretKeychain, error) {
	if c == nil || c.New == nil {
		return nil, fmt.Errorf("registry credentials from Secrets are not available here")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keychainLocked(data, key)
}

func (c *Clients) keychainLocked(data []map[string][]byte, key string) (*registry.SecretKeychain, error) {
	if kc, ok := c.kcs[key]; ok {
		return kc, nil
	}
	kc, err := registry.NewSecretKeychain(data...)
	if err != nil {
		return nil, err
	}
	if c.kcs == nil || len(c.kcs) >= maxClients {
		c.kcs = map[string]*registry.SecretKeychain{}
	}
	c.kcs[key] = kc
	return kc, nil
}

// attempt returns the client for data (whose credentialsKey is key) that
// answers host with its i-th distinct credential (registry.SecretKeychain
// Alternative); attempt 0 is For's client.
func (c *Clients) attempt(data []map[string][]byte, key, host string, i int) (*registry.Client, error) {
	if c == nil || c.New == nil {
		return nil, fmt.Errorf("registry credentials from Secrets are not available here")
	}
	ckey := key
	if i > 0 {
		ckey = attemptKey(key, host, i)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rc, ok := c.m[ckey]; ok {
		return rc, nil
	}
	kc, err := c.keychainLocked(data, key)
	if err != nil {
		return nil, err
	}
	if i > 0 {
		kc = kc.Alternative(host, i)
	}
	rc, err := c.New(kc)
	if err != nil {
		return nil, err
	}
	if c.m == nil || len(c.m) >= maxClients {
		c.m = map[string]*registry.Client{}
	}
	c.m[ckey] = rc
	return rc, nil
}

// attemptKey names the credentials of attempt i > 0 for host of the set
// whose credentialsKey is key.
func attemptKey(key, host string, i int) string {
	return key + "\x00" + host + "\x00" + strconv.Itoa(i)
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
