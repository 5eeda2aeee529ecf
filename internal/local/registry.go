package local

import (
	"net/http"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signet-dev/signet/internal/registry"
)

// RegistryClient makes a registry client whose credentials come from the
// given keychains first, then the Docker config file; rt is its HTTP
// transport (nil: registry.NewTransport()). allowHTTP permits plain-HTTP
// registries (--allow-http-registry).
func RegistryClient(allowHTTP bool, rt http.RoundTripper, first ...authn.Keychain) (*registry.Client, error) {
	kc := authn.NewMultiKeychain(append(first, authn.DefaultKeychain)...)
	opts := []registry.Option{registry.WithKeychain(kc)}
	if rt != nil {
		opts = append(opts, registry.WithTransport(rt))
	}
	if allowHTTP {
		opts = append(opts, registry.InsecureAllowHTTP())
	}
	return registry.New(opts...)
}
