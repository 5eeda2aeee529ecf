// Package cloudauth gives registry credentials from a cloud's workload
// identity, for the registries of that cloud only: Amazon ECR (aws),
// Google Artifact Registry and Container Registry (google), Azure
// Container Registry (azure). It is opt-in (signet serve
// --registry-credential-providers); each provider answers only for its own
// registry hosts, and its tokens are kept until shortly before they expire.
package cloudauth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Provider obtains registry credentials from one cloud's identity.
type Provider interface {
	// Name is the provider's name as --registry-credential-providers
	// spells it ("aws", "google", "azure").
	Name() string
	// Handles reports whether host (a registry host as references spell
	// it, port included) is one of the provider's registries. It does no
	// I/O.
	Handles(host string) bool
	// Credential returns a credential for host and when it expires (the
	// zero time: unknown, kept for DefaultLifetime).
	Credential(ctx context.Context, host string) (authn.AuthConfig, time.Time, error)
}

// Names are the providers New knows, in the order they are consulted.
var Names = []string{"aws", "google", "azure"}

const (
	// RefreshBefore is how long before its expiry a credential is
	// replaced.
	RefreshBefore = 5 * time.Minute
	// DefaultLifetime is how long a credential without a known expiry is
	// kept.
	DefaultLifetime = 30 * time.Minute
	// fetchTimeout bounds one provider call.
	fetchTimeout = 20 * time.Second
	// maxHosts bounds the credentials kept (past it, the cache starts over).
	maxHosts = 1024
)

// Options configure the providers. Zero values are the clouds' own
// defaults; tests point them at loopback stand-ins.
type Options struct {
	// AWS configures the aws provider.
	AWS AWSOptions
	// Google configures the google provider.
	Google GoogleOptions
	// Azure configures the azure provider.
	Azure AzureOptions
}

// Error is a provider that could not give a credential for a host.
type Error struct {
	Provider string
	Host     string
	Err      error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s registry credentials for %s (--registry-credential-providers): %v", e.Provider, e.Host, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Keychain is an authn.Keychain over providers: for a host a provider
// handles it returns that provider's credential (fetched on first use and
// renewed RefreshBefore its expiry); for every other host, Anonymous, so
// the next keychain answers.
type Keychain struct {
	providers []Provider
	now       func() time.Time

	mu     sync.Mutex
	creds  map[string]*entry
	flight map[string]*call
}

type entry struct {
	cfg authn.AuthConfig
	// renew is when the credential is replaced: RefreshBefore its expiry,
	// or halfway there for one that came with less time left.
	renew time.Time
}

type call struct {
	done chan struct{}
	e    *entry
	err  error
}

var (
	_ authn.Keychain        = (*Keychain)(nil)
	_ authn.ContextKeychain = (*Keychain)(nil)
)

// New returns the keychain of the named providers (see Names). No names is
// a nil keychain (no cloud credentials).
func New(names []string, o Options) (*Keychain, error) {
	var ps []Provider
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		var p Provider
		switch n {
		case "aws":
			p = newAWS(o.AWS)
		case "google":
			p = newGoogle(o.Google)
		case "azure":
			p = newAzure(o.Azure)
		default:
			return nil, fmt.Errorf("unknown registry credential provider %q (want %s)", n, strings.Join(Names, ", "))
		}
		if slices.ContainsFunc(ps, func(q Provider) bool { return q.Name() == n }) {
			return nil, fmt.Errorf("registry credential provider %q named twice", n)
		}
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return NewKeychain(ps...), nil
}

// NewKeychain returns the keychain of providers, consulted in order.
func NewKeychain(providers ...Provider) *Keychain {
	return &Keychain{providers: providers, now: time.Now, creds: map[string]*entry{}, flight: map[string]*call{}}
}

// Provider returns the provider that handles host, or nil.
func (k *Keychain) Provider(host string) Provider {
	if k == nil {
		return nil
	}
	for _, p := range k.providers {
		if p.Handles(host) {
			return p
		}
	}
	return nil
}

// Resolve implements authn.Keychain.
func (k *Keychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain: the credential is
// fetched now (so a failing provider fails the connection, named), and the
// authenticator returned renews it when it nears expiry, for connections
// that outlive it.
func (k *Keychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	host := r.RegistryStr()
	p := k.Provider(host)
	if p == nil {
		return authn.Anonymous, nil
	}
	if _, err := k.credential(ctx, p, host); err != nil {
		return nil, err
	}
	return &authenticator{k: k, p: p, host: host}, nil
}

// credential returns the cached credential of p for host, fetching it
// (once for concurrent callers) when absent or near expiry.
func (k *Keychain) credential(ctx context.Context, p Provider, host string) (authn.AuthConfig, error) {
	key := p.Name() + "\x00" + host
	k.mu.Lock()
	if e, ok := k.creds[key]; ok && k.now().Before(e.renew) {
		k.mu.Unlock()
		return e.cfg, nil
	}
	c, ok := k.flight[key]
	if !ok {
		c = &call{done: make(chan struct{})}
		k.flight[key] = c
		go k.fetch(p, host, key, c) //nolint:gosec // G118: detached on purpose, see fetch

	}
	k.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return authn.AuthConfig{}, &Error{Provider: p.Name(), Host: host, Err: ctx.Err()}
	}
	if c.err != nil {
		return authn.AuthConfig{}, c.err
	}
	return c.e.cfg, nil
}

// fetch runs one provider call, detached from any one caller's context
// (bounded by fetchTimeout) so that a caller giving up does not fail the
// others waiting on it.
func (k *Keychain) fetch(p Provider, host, key string, c *call) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	cfg, expires, err := p.Credential(ctx, host)
	now := k.now()
	switch {
	case err != nil:
		var pe *Error
		if !errors.As(err, &pe) {
			err = &Error{Provider: p.Name(), Host: host, Err: err}
		}
		c.err = err
	case expires.IsZero():
		expires = now.Add(DefaultLifetime + RefreshBefore)
	}
	if c.err == nil {
		renew := expires.Add(-RefreshBefore)
		if renew.Before(now) {
			renew = now.Add(expires.Sub(now) / 2)
		}
		c.e = &entry{cfg: cfg, renew: renew}
	}
	k.mu.Lock()
	delete(k.flight, key)
	if c.e != nil {
		if len(k.creds) >= maxHosts {
			k.creds = map[string]*entry{}
		}
		k.creds[key] = c.e
	}
	k.mu.Unlock()
	close(c.done)
}

// authenticator gives the current credential of p for host.
type authenticator struct {
	k    *Keychain
	p    Provider
	host string
}

var _ authn.ContextAuthenticator = (*authenticator)(nil)

func (a *authenticator) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

func (a *authenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	cfg, err := a.k.credential(ctx, a.p, a.host)
	if err != nil {
		return nil, err
	}
	return &cfg, nil
}
