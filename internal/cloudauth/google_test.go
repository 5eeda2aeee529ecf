package cloudauth

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-dev/signet/internal/registry"
)

func TestGoogleHandles(t *testing.T) {
	g := newGoogle(GoogleOptions{})
	for host, want := range map[string]bool{
		"gcr.io":                      true,
		"us.gcr.io":                   true,
		"europe-west1-docker.pkg.dev": true,
		"us-docker.pkg.dev":           true,
		"gcr.io:5000":                 false,
		"gcr.io.evil.example":         false,
		"evilgcr.io":                  false,
		"us-python.pkg.dev":           false,
		"docker.pkg.dev.evil.example": false,
		"index.docker.io":             false,
		"123456789012.dkr.ecr.us-east-1.amazonaws.com": false,
	} {
		if got := g.Handles(host); got != want {
			t.Errorf("Handles(%q) = %v, want %v", host, got, want)
		}
	}
}

// metadataServer is a loopback stand-in of the GKE metadata server (the
// only stand-in here: Google's token endpoint cannot be reached): it
// issues access tokens numbered from 1, each valid for lifetime.
type metadataServer struct {
	*httptest.Server
	lifetime time.Duration
	tokens   atomic.Int64
	mu       sync.Mutex
	scopes   []string
}

func startMetadata(t *testing.T, lifetime time.Duration) *metadataServer {
	m := &metadataServer{lifetime: lifetime}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Metadata-Flavor") != "Google" {
			http.Error(w, "missing Metadata-Flavor", http.StatusForbidden)
			return
		}
		switch r.URL.Path {
		case "/computeMetadata/v1/project/project-id":
			_, _ = w.Write([]byte("signet-test"))
		case "/computeMetadata/v1/instance/service-accounts/default/token":
			m.mu.Lock()
			m.scopes = append(m.scopes, r.URL.Query().Get("scopes"))
			m.mu.Unlock()
			n := m.tokens.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"access_token": "ya29.token-" + string(rune('0'+n)),
				"expires_in":   int(m.lifetime.Seconds()),
				"token_type":   "Bearer",
			})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.Close)
	// Application Default Credentials: no key file, no gcloud
	// configuration, the metadata server at m.
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("CLOUDSDK_CONFIG", home)
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(m.URL, "http://"))
	return m
}

func password(t *testing.T, a authn.Authenticator) (string, string) {
	t.Helper()
	cfg, err := authn.Authorization(t.Context(), a)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Username, cfg.Password
}

func TestGoogleWorkloadIdentity(t *testing.T) {
	// Tokens live as long as the token source's own early renewal
	// (RefreshBefore+1m, by the real clock): it would fetch anew on every
	// ask, so the keychain's cache alone keeps a token until its renewal.
	m := startMetadata(t, RefreshBefore+time.Minute)
	k, err := New([]string{"google"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k.now = func() time.Time { return now }

	res := resource("europe-west1-docker.pkg.dev")
	a, err := k.Resolve(res)
	if err != nil {
		t.Fatal(err)
	}
	if user, pw := password(t, a); user != "oauth2accesstoken" || pw != "ya29.token-1" {
		t.Fatalf("credential = %s/%s, want oauth2accesstoken/ya29.token-1", user, pw)
	}
	if got := m.scopes; len(got) != 1 || got[0] != googleScope {
		t.Errorf("scopes asked = %q, want [%s]", got, googleScope)
	}
	// Other hosts: anonymous here (the next keychain answers), no token asked.
	for _, host := range []string{"ghcr.io", "gcr.io.evil.example", "127.0.0.1:5000"} {
		if a, err := k.Resolve(resource(host)); err != nil || a != authn.Anonymous {
			t.Errorf("Resolve(%s) = %v, %v; want Anonymous", host, a, err)
		}
	}
	// Cached until RefreshBefore its expiry (every host of the provider
	// is asked for once).
	now = now.Add(time.Minute)
	if _, pw := password(t, a); pw != "ya29.token-1" {
		t.Errorf("before renewal: password %s, want the first token", pw)
	}
	if n := m.tokens.Load(); n != 1 {
		t.Fatalf("%d tokens issued before renewal, want 1", n)
	}
	// Past it, the same authenticator (a long-lived connection) gives a
	// new token.
	now = now.Add(time.Minute)
	if _, pw := password(t, a); pw != "ya29.token-2" {
		t.Errorf("after renewal: password %s, want the second token", pw)
	}
}

func TestGoogleFailureNamesProvider(t *testing.T) {
	m := startMetadata(t, time.Hour)
	m.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no identity bound", http.StatusNotFound)
	})
	k, err := New([]string{"google"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Resolve(resource("gcr.io"))
	var ce *Error
	if !errors.As(err, &ce) || ce.Provider != "google" || ce.Host != "gcr.io" {
		t.Fatalf("error %v, want a google *Error for gcr.io", err)
	}
	if !strings.Contains(err.Error(), "google registry credentials for gcr.io") {
		t.Errorf("error %q does not name the provider and host", err)
	}
}

func TestNewRefusesUnknownProviders(t *testing.T) {
	for _, names := range [][]string{{"gcp"}, {"google", "google"}} {
		if _, err := New(names, Options{}); err == nil {
			t.Errorf("New(%q) accepted", names)
		}
	}
	if k, err := New(nil, Options{}); err != nil || k != nil {
		t.Errorf("New(nil) = %v, %v; want nil, nil", k, err)
	}
}

// TestOnlyItsRegistryGetsTheToken connects signet's registry client, with
// the cloud keychain, to two registries behind one loopback TLS server: a
// Google host gets the provider's token, another host never does.
func TestOnlyItsRegistryGetsTheToken(t *testing.T) {
	startMetadata(t, time.Hour)
	k, err := New([]string{"google"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seen = map[string][]string{} // host -> Authorization headers
	)
	reg := ggcrregistry.New()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.Host] = append(seen[r.Host], r.Header.Get("Authorization"))
		mu.Unlock()
		if r.URL.Path == "/v2/" && r.Header.Get("Authorization") == "" && r.Host == "us-docker.pkg.dev" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	rt := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "example.com"},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, srv.Listener.Addr().String())
		},
	}
	rc, err := registry.New(registry.WithKeychain(authn.NewMultiKeychain(k)), registry.WithTransport(rt))
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"us-docker.pkg.dev", "registry.example.com"} {
		_, err := rc.Resolve(t.Context(), registry.Repository{Host: host, Path: "proj/app"}, "v1")
		if !errors.Is(err, registry.ErrNotFound) {
			t.Fatalf("%s: %v, want not found (the server must have been reached)", host, err)
		}
	}
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("oauth2accesstoken:ya29.token-1"))
	mu.Lock()
	defer mu.Unlock()
	if got := seen["us-docker.pkg.dev"]; len(got) == 0 || got[len(got)-1] != want {
		t.Errorf("us-docker.pkg.dev saw %q, want its last request to carry the token", got)
	}
	if len(seen["registry.example.com"]) == 0 {
		t.Fatal("registry.example.com was never reached")
	}
	for _, h := range seen["registry.example.com"] {
		if h != "" {
			t.Errorf("registry.example.com received Authorization %q", h)
		}
	}
}

func resource(host string) authn.Resource { return fakeResource(host) }

type fakeResource string

func (r fakeResource) String() string      { return string(r) }
func (r fakeResource) RegistryStr() string { return string(r) }
