package registry

import (
	"fmt"
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"
)

// Limits bound what the client reads from a registry. The zero value of a
// field means its default.
type Limits struct {
	// MaxManifestBytes is the largest manifest or index read. Default 4 MiB,
	// the size the OCI distribution specification asks registries to accept.
	MaxManifestBytes int64
	// MaxBlobBytes is the largest signature payload, DSSE envelope or bundle
	// read. Default 4 MiB.
	MaxBlobBytes int64
	// MaxLayers is the most layers (signatures or attestations) read from one
	// legacy .sig or .att manifest. Default 64.
	MaxLayers int
	// MaxReferrers is the most referrers of one image considered. Default 128.
	MaxReferrers int
	// MaxRedirects is the most redirects followed for one request. Default 3.
	MaxRedirects int
}

// DefaultLimits are the bounds used when none are given.
var DefaultLimits = Limits{
	MaxManifestBytes: 4 << 20,
	MaxBlobBytes:     4 << 20,
	MaxLayers:        64,
	MaxReferrers:     128,
	MaxRedirects:     3,
}

func (l Limits) withDefaults() Limits {
	if l.MaxManifestBytes <= 0 {
		l.MaxManifestBytes = DefaultLimits.MaxManifestBytes
	}
	if l.MaxBlobBytes <= 0 {
		l.MaxBlobBytes = DefaultLimits.MaxBlobBytes
	}
	if l.MaxLayers <= 0 {
		l.MaxLayers = DefaultLimits.MaxLayers
	}
	if l.MaxReferrers <= 0 {
		l.MaxReferrers = DefaultLimits.MaxReferrers
	}
	if l.MaxRedirects <= 0 {
		l.MaxRedirects = DefaultLimits.MaxRedirects
	}
	return l
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	keychain  authn.Keychain
	transport http.RoundTripper
	limits    Limits
	allowHTTP bool
	userAgent string
}

// WithKeychain resolves credentials per registry. Default: anonymous.
// Each credential is sent only to the registry the keychain returned it for.
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return fmt.Errorf("WithKeychain: keychain is nil")
		}
		o.keychain = k
		return nil
	}
}

// WithTransport sets the HTTP transport under authentication and retries.
// Default: NewTransport().
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return fmt.Errorf("WithTransport: transport is nil")
		}
		o.transport = rt
		return nil
	}
}

// WithLimits replaces DefaultLimits; zero fields keep their defaults.
func WithLimits(l Limits) Option {
	return func(o *options) error {
		if l.MaxManifestBytes < 0 || l.MaxBlobBytes < 0 || l.MaxLayers < 0 || l.MaxReferrers < 0 || l.MaxRedirects < 0 {
			return fmt.Errorf("WithLimits: limits must not be negative: %+v", l)
		}
		o.limits = l.withDefaults()
		return nil
	}
}

// InsecureAllowHTTP lets the client talk plain HTTP to registries. Anyone on
// the network path can then read credentials and change what is fetched
// (though not forge a signature). Meant for loopback test registries.
// Without it every request is HTTPS, to loopback and private addresses too
// (where go-containerregistry on its own would fall back to HTTP), and so is
// every redirect and token request.
func InsecureAllowHTTP() Option {
	return func(o *options) error {
		o.allowHTTP = true
		return nil
	}
}

// WithUserAgent sets the User-Agent sent to registries. Default "signet".
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		o.userAgent = ua
		return nil
	}
}
