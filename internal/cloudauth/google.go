package cloudauth

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
)

// GoogleOptions configure the google provider.
type GoogleOptions struct {
	// HTTPClient makes the token requests (default: http.DefaultClient).
	// The metadata server's address comes from GCE_METADATA_HOST as
	// Google's libraries read it.
	HTTPClient *http.Client
}

// googleScope is the OAuth scope registry tokens are asked for.
const googleScope = "https://www.googleapis.com/auth/cloud-platform"

// googleProvider gives Artifact Registry and Container Registry access
// tokens from Application Default Credentials: on GKE with Workload
// Identity, the metadata server's token of the Google service account the
// Kubernetes service account is bound to; elsewhere
// GOOGLE_APPLICATION_CREDENTIALS (a service account key or a workload
// identity federation configuration).
type googleProvider struct {
	o GoogleOptions

	mu sync.Mutex
	ts oauth2.TokenSource
}

func newGoogle(o GoogleOptions) *googleProvider { return &googleProvider{o: o} }

func (g *googleProvider) Name() string { return "google" }

// Handles reports gcr.io and its regional hosts (us.gcr.io, ...) and
// Artifact Registry's Docker hosts (<location>-docker.pkg.dev), on the
// default port only.
func (g *googleProvider) Handles(host string) bool {
	return host == "gcr.io" || strings.HasSuffix(host, ".gcr.io") || strings.HasSuffix(host, "-docker.pkg.dev")
}

// Credential returns an access token as the password of the user
// oauth2accesstoken, as Google's registries take it.
func (g *googleProvider) Credential(ctx context.Context, host string) (authn.AuthConfig, time.Time, error) {
	ts, err := g.tokenSource()
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	tok, err := ts.Token()
	if err != nil {
		return authn.AuthConfig{}, time.Time{}, err
	}
	return authn.AuthConfig{Username: "oauth2accesstoken", Password: tok.AccessToken}, tok.Expiry, nil
}

// tokenSource finds the Application Default Credentials once they are
// found (a failure is tried again on the next call).
func (g *googleProvider) tokenSource() (oauth2.TokenSource, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.ts != nil {
		return g.ts, nil
	}
	// The token source keeps the context it is made with for its
	// refreshes: a long-lived one, carrying the HTTP client.
	base := context.Background()
	if g.o.HTTPClient != nil {
		base = context.WithValue(base, oauth2.HTTPClient, g.o.HTTPClient)
	}
	ts, err := google.DefaultTokenSource(base, googleScope)
	if err != nil {
		return nil, err
	}
	// Renewed before the keychain would ask for a new one.
	g.ts = oauth2.ReuseTokenSourceWithExpiry(nil, ts, RefreshBefore+time.Minute)
	return g.ts, nil
}
