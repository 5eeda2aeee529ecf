package cloudauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

const (
	azTenant      = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	azClientID    = "5a0c1b7e-3f3e-4d0b-9c43-6d1f0f9a7c21"
	azFedToken    = "k8s-service-account-token-for-signet"
	azAccessToken = "entra-access-token-for-acr"
	azRegistry    = "myreg.azurecr.io"
)

// azureStandIn is one loopback TLS server answering for Microsoft Entra ID
// (tenant discovery, token endpoint) and for the registry's token exchange.
type azureStandIn struct {
	t      *testing.T
	srv    *httptest.Server
	client *http.Client

	requests  atomic.Int32 // every request
	exchanges atomic.Int32

	mu sync.Mutex
	// refreshExp is the exp claim of the refresh tokens issued; zero
	// omits it.
	refreshExp time.Time
	// fail, when set, is the status and body the exchange answers.
	fail     int
	failBody string
	// exchangeForm is the last exchange request's form.
	exchangeForm url.Values
}

// newAzureStandIn starts the stand-in and sets the environment of an AKS
// pod with workload identity pointed at it. Its client trusts the
// stand-in's certificate and dials it whatever the host, so that
// https://myreg.azurecr.io reaches it and nothing leaves the machine.
func newAzureStandIn(t *testing.T) *azureStandIn {
	s := &azureStandIn{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.openIDConfig)
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.token)
	mux.HandleFunc("POST /oauth2/exchange", s.exchange)
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		mux.ServeHTTP(w, r)
	}))
	cert, pool := standInCert(t)
	s.srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)

	addr := s.srv.Listener.Addr().String()
	s.client = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{RootCAs: pool},
	}}

	file := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(file, []byte(azFedToken), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AZURE_CLIENT_ID", azClientID)
	t.Setenv("AZURE_TENANT_ID", azTenant)
	t.Setenv("AZURE_FEDERATED_TOKEN_FILE", file)
	t.Setenv("AZURE_AUTHORITY_HOST", "https://"+addr+"/")
	return s
}

// standInCert is a self-signed certificate for the registry's name and the
// loopback address, and a pool trusting it.
func standInCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "azure stand-in"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{azRegistry},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func (s *azureStandIn) openIDConfig(w http.ResponseWriter, r *http.Request) {
	base := "https://" + r.Host + "/" + r.PathValue("tenant")
	writeJSON(w, map[string]string{
		"issuer":                 base + "/v2.0",
		"authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"token_endpoint":         base + "/oauth2/v2.0/token",
	})
}

// token is Entra ID's token endpoint for a client assertion: it must be the
// federated token file's content.
func (s *azureStandIn) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("token request: %v", err)
	}
	for k, want := range map[string]string{
		"grant_type":            "client_credentials",
		"client_id":             azClientID,
		"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
		"client_assertion":      azFedToken,
	} {
		if got := r.PostForm.Get(k); got != want {
			s.t.Errorf("token request %s = %q, want %q", k, got, want)
		}
	}
	if got := r.PathValue("tenant"); got != azTenant {
		s.t.Errorf("token request for tenant %q, want %q", got, azTenant)
	}
	if !strings.Contains(r.PostForm.Get("scope"), azureScope) {
		s.t.Errorf("token request scope %q, want %q", r.PostForm.Get("scope"), azureScope)
	}
	writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3600, "access_token": azAccessToken})
}

// exchange is the registry's /oauth2/exchange: it issues numbered refresh
// tokens, or fails as told.
func (s *azureStandIn) exchange(w http.ResponseWriter, r *http.Request) {
	if r.Host != azRegistry {
		s.t.Errorf("exchange request to %q, want %q", r.Host, azRegistry)
	}
	if err := r.ParseForm(); err != nil {
		s.t.Errorf("exchange request: %v", err)
	}
	n := s.exchanges.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exchangeForm = r.PostForm
	if s.fail != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.fail)
		fmt.Fprint(w, s.failBody)
		return
	}
	writeJSON(w, map[string]string{"refresh_token": refreshToken(s.refreshExp, n)})
}

// refreshToken is an unsigned JWT like ACR's, numbered n, with exp unless
// it is zero.
func refreshToken(exp time.Time, n int32) string {
	claims := map[string]any{"jti": fmt.Sprint(n), "grant_type": "refresh_token"}
	if !exp.IsZero() {
		claims["exp"] = exp.Unix()
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "RS256", "typ": "JWT"}) + "." + enc(claims) + ".c2lnbmF0dXJl"
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func TestAzureHandles(t *testing.T) {
	p := newAzure(AzureOptions{})
	for host, want := range map[string]bool{
		"myreg.azurecr.io":                 true,
		"my-reg2.azurecr.io":               true,
		"MyReg.azurecr.io":                 true,
		"myreg.azurecr.cn":                 true,
		"myreg.azurecr.us":                 true,
		"azurecr.io":                       false,
		".azurecr.io":                      false,
		"myreg.azurecr.io:443":             false,
		"x.azurecr.io.evil.com":            false,
		"a.b.azurecr.io":                   false,
		"myregazurecr.io":                  false,
		"myreg.azurecr.com":                false,
		"myreg.azurecr.de":                 false,
		"gcr.io":                           false,
		"index.docker.io":                  false,
		"myreg.westeurope.data.azurecr.io": false,
		"":                                 false,
	} {
		if got := p.Handles(host); got != want {
			t.Errorf("Handles(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestAzureWorkloadIdentity(t *testing.T) {
	s := newAzureStandIn(t)
	k, err := New([]string{"azure"}, Options{Azure: AzureOptions{HTTPClient: s.client}})
	if err != nil {
		t.Fatal(err)
	}
	auth, err := k.Resolve(name.MustParseReference(azRegistry + "/app:1").Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := auth.Authorization()
	if err != nil {
		t.Fatal(err)
	}
	want := authn.AuthConfig{Username: "00000000-0000-0000-0000-000000000000", Password: refreshToken(time.Time{}, 1)}
	if *cfg != want {
		t.Errorf("credential = %+v, want %+v", *cfg, want)
	}
	s.mu.Lock()
	form := s.exchangeForm
	s.mu.Unlock()
	for k, want := range map[string]string{
		"grant_type":   "access_token",
		"service":      azRegistry,
		"tenant":       azTenant,
		"access_token": azAccessToken,
	} {
		if got := form.Get(k); got != want {
			t.Errorf("exchange %s = %q, want %q", k, got, want)
		}
	}

	before := s.requests.Load()
	for _, host := range []string{"index.docker.io", "x.azurecr.io.evil.com", "myreg.azurecr.io:5000"} {
		reg, err := name.NewRegistry(host)
		if err != nil {
			t.Fatal(err)
		}
		auth, err := k.Resolve(reg)
		if err != nil || auth != authn.Anonymous {
			t.Errorf("Resolve(%s) = %v, %v; want Anonymous", host, auth, err)
		}
	}
	if n := s.requests.Load() - before; n != 0 {
		t.Errorf("other hosts made %d requests", n)
	}
}

// clock is a settable Keychain clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestAzureExpiry(t *testing.T) {
	s := newAzureStandIn(t)
	start := time.Now().Truncate(time.Second)
	exp := start.Add(3 * time.Hour)
	s.refreshExp = exp
	c := &clock{t: start}
	k := NewKeychain(newAzure(AzureOptions{HTTPClient: s.client}))
	k.now = c.now

	auth, err := k.Resolve(name.MustParseReference(azRegistry + "/app:1").Context())
	if err != nil {
		t.Fatal(err)
	}
	renew := exp.Add(-RefreshBefore)
	for _, step := range []struct {
		at        time.Time
		exchanges int32
	}{
		{start, 1},
		{renew.Add(-time.Second), 1},
		{renew.Add(time.Second), 2},
	} {
		c.set(step.at)
		cfg, err := auth.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if got := s.exchanges.Load(); got != step.exchanges {
			t.Errorf("at renew%+v: %d exchanges, want %d", step.at.Sub(renew), got, step.exchanges)
		}
		if want := refreshToken(exp, step.exchanges); cfg.Password != want {
			t.Errorf("at renew%+v: password is not refresh token %d", step.at.Sub(renew), step.exchanges)
		}
	}
}

func TestAzureExchangeFailure(t *testing.T) {
	s := newAzureStandIn(t)
	s.fail = http.StatusUnauthorized
	s.failBody = `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required for ` + azAccessToken + `","detail":null}]}`
	k, err := New([]string{"azure"}, Options{Azure: AzureOptions{HTTPClient: s.client}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = k.Resolve(name.MustParseReference(azRegistry + "/app:1").Context())
	var e *Error
	if !errors.As(err, &e) || e.Provider != "azure" || e.Host != azRegistry {
		t.Fatalf("error = %v, want a *cloudauth.Error of azure for %s", err, azRegistry)
	}
	msg := err.Error()
	for _, want := range []string{"401", "UNAUTHORIZED"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	for _, secret := range []string{azAccessToken, azFedToken, "authentication required"} {
		if strings.Contains(msg, secret) {
			t.Errorf("error %q quotes %q", msg, secret)
		}
	}
}

func TestJWTExpiry(t *testing.T) {
	exp := time.Unix(1900000000, 0)
	for _, c := range []struct {
		token string
		want  time.Time
	}{
		{refreshToken(exp, 1), exp},
		{refreshToken(time.Time{}, 1), time.Time{}},
		{"opaque", time.Time{}},
		{"a.!!!.c", time.Time{}},
	} {
		if got := jwtExpiry(c.token); !got.Equal(c.want) {
			t.Errorf("jwtExpiry(%q) = %v, want %v", c.token, got, c.want)
		}
	}
}
