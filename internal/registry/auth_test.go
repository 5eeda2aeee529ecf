package registry_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/registrytest"
)

const (
	user     = "alice"
	password = "s3cret-Passw0rd"
	token    = "registry-TOKEN-s3cret"
)

// secrets are strings that must never appear in an error message.
var secrets = []string{password, token, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}

func checkRedacted(t *testing.T, err error, more ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range append(slices.Clone(secrets), more...) {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error message contains the secret %q: %v", s, err)
		}
	}
}

// requireAuth makes h a registry that wants user/password, as Basic auth or
// through a bearer token from its own token endpoint.
func requireAuth(h *hostile, scheme string) {
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	want, challenge := basic, `Basic realm="hostile"`
	if scheme == "Bearer" {
		want, challenge = "Bearer "+token, `Bearer realm="`+h.URL+`/token",service="hostile"`
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.routes["/v2/"]; !ok {
		h.routes["/v2/"] = func(http.ResponseWriter, *http.Request) {}
	}
	next := h.routes
	h.routes = map[string]http.HandlerFunc{}
	if scheme == "Bearer" {
		h.routes["/token"] = func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != basic {
				http.Error(w, "bad credentials: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]string{"token": token})
		}
	}
	for p, f := range next {
		h.routes[p] = func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != want {
				w.Header().Set("WWW-Authenticate", challenge)
				// Some registries echo what they got; the client must not.
				http.Error(w, "bad credentials: "+r.Header.Get("Authorization"), http.StatusUnauthorized)
				return
			}
			f(w, r)
		}
	}
}

// Credentials resolved for registry A go to A only: a redirect to registry B
// (a blob store, a CDN, an attacker) carries no Authorization header, with
// Basic auth and with bearer tokens. Both hosts are 127.0.0.1 on different
// ports, which only the port tells apart.
func TestCredentialsStayWithTheirRegistry(t *testing.T) {
	t.Parallel()
	manifest := manifestJSON(t, registry.ImageManifest{MediaType: registry.MediaTypeOCIManifest})
	blob := []byte("a blob served from elsewhere")
	blobDigest := sha256Digest(blob)
	for _, scheme := range []string{"Basic", "Bearer"} {
		t.Run(scheme, func(t *testing.T) {
			t.Parallel()
			a, b := newHostile(t, true), newHostile(t, true)
			b.route("manifests/v1", serveJSON(registry.MediaTypeOCIManifest, manifest))
			b.route("blobs/"+blobDigest, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(blob) })
			a.route("manifests/v1", func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, b.url("manifests/v1"), http.StatusTemporaryRedirect)
			})
			a.route("blobs/"+blobDigest, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, b.url("blobs/"+blobDigest)+"?X-Amz-Signature=presigned", http.StatusTemporaryRedirect)
			})
			requireAuth(a, scheme)
			kc := &registrytest.HostKeychain{Host: a.Repo.Host, Auth: &authn.Basic{Username: user, Password: password}}
			c := newTLSClient(t, a.Server, registry.WithKeychain(kc))

			m, err := c.Resolve(t.Context(), a.Repo, "v1")
			if err != nil {
				t.Fatal(err)
			}
			if m.Digest != sha256Digest(manifest) {
				t.Errorf("digest %s, want %s", m.Digest, sha256Digest(manifest))
			}
			got, err := c.Blob(t.Context(), a.Repo, blobDigest)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(blob) {
				t.Errorf("blob %q, want %q", got, blob)
			}
			if seen := b.authSeen(); len(seen) != 0 {
				t.Errorf("registry B received credentials meant for A: %v", seen)
			}
			if seen := a.authSeen(); len(seen[a.path("manifests/v1")]) == 0 {
				t.Errorf("registry A received no credentials (%v): the test proves nothing", seen)
			}
			for _, host := range kc.Asked() {
				if host != a.Repo.Host {
					t.Errorf("the keychain was asked for credentials for %s", host)
				}
			}
		})
	}
}

// Wrong or missing credentials fail with the registry's 401, in a message
// that names the request and carries no secret, and are not retried.
func TestWrongCredentials(t *testing.T) {
	t.Parallel()
	for _, scheme := range []string{"Basic", "Bearer"} {
		for _, tc := range []struct {
			name string
			kc   authn.Keychain
		}{
			{"wrong password", &registrytest.HostKeychain{Auth: &authn.Basic{Username: user, Password: "not-the-" + password}}},
			{"none", authn.NewMultiKeychain()},
		} {
			t.Run(scheme+" "+tc.name, func(t *testing.T) {
				t.Parallel()
				h := newHostile(t, true)
				h.route("manifests/v1", func(w http.ResponseWriter, r *http.Request) {})
				requireAuth(h, scheme)
				if kc, ok := tc.kc.(*registrytest.HostKeychain); ok {
					kc.Host = h.Repo.Host
				}
				c := newTLSClient(t, h.Server, registry.WithKeychain(tc.kc))
				_, err := c.Resolve(t.Context(), h.Repo, "v1")
				if err == nil {
					t.Fatal("succeeded with wrong credentials")
				}
				checkRedacted(t, err, "not-the-"+password, base64.StdEncoding.EncodeToString([]byte(user+":not-the-"+password)))
				var se *registry.StatusError
				if scheme == "Basic" { // bearer fails at the token server, before any manifest request
					if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized {
						t.Errorf("error %v, want a *StatusError with 401", err)
					}
				}
				if !errors.Is(err, registry.ErrUnauthorized) || errors.Is(err, registry.ErrUnreachable) {
					t.Errorf("error %v, want ErrUnauthorized", err)
				}
				// Bearer: the token server's answer, which go-containerregistry quotes.
				if !strings.Contains(err.Error(), "401") && !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(strings.ToLower(err.Error()), "unauthorized") {
					t.Errorf("error %q does not say the registry refused the credentials", err)
				}
				if n := h.count("manifests/v1"); n > 1 {
					t.Errorf("the manifest was requested %d times: a 401 is not retried", n)
				}
				h.mu.Lock()
				defer h.mu.Unlock()
				if n := h.hits["/token"]; n > 1 {
					t.Errorf("the token server was asked %d times: refused credentials are not retried", n)
				}
			})
		}
	}
}

// Tokens in redirect URLs (presigned blob URLs, credentials in userinfo) never
// reach an error message, whatever goes wrong after the redirect.
func TestErrorsAreRedacted(t *testing.T) {
	t.Parallel()
	const query = "X-Amz-Signature=QUERY-s3cret&X-Amz-Credential=CRED-s3cret"
	more := []string{"QUERY-s3cret", "CRED-s3cret", "USERINFO-s3cret"}
	digest := sha256Digest([]byte("blob"))
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, a, b *hostile, plain *hostile)
		opts  []registry.Option
	}{{
		name: "redirect to plain HTTP",
		setup: func(t *testing.T, a, b, plain *hostile) {
			a.route("blobs/"+digest, redirectTo(plain.url("blobs/"+digest)+"?"+query))
		},
	}, {
		name: "redirect to a stalled host",
		setup: func(t *testing.T, a, b, plain *hostile) {
			a.route("blobs/"+digest, redirectTo(b.url("blobs/"+digest)+"?"+query))
			b.route("blobs/"+digest, stall(""))
		},
	}, {
		name: "redirect to a host that drops the connection",
		setup: func(t *testing.T, a, b, plain *hostile) {
			a.route("blobs/"+digest, redirectTo(b.url("blobs/"+digest)+"?"+query))
			b.route("blobs/"+digest, func(w http.ResponseWriter, r *http.Request) {
				conn, _, err := w.(http.Hijacker).Hijack()
				if err == nil {
					_ = conn.Close()
				}
			})
		},
	}, {
		name: "redirect to a host that fails",
		setup: func(t *testing.T, a, b, plain *hostile) {
			a.route("blobs/"+digest, redirectTo(b.url("blobs/"+digest)+"?"+query))
			b.route("blobs/"+digest, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusForbidden) })
		},
	}, {
		name: "redirect loop with a token",
		setup: func(t *testing.T, a, b, plain *hostile) {
			a.route("blobs/"+digest, redirectTo(b.url("blobs/"+digest)+"?"+query))
			b.route("blobs/"+digest, redirectTo(a.url("blobs/"+digest)+"?"+query))
		},
	}, {
		name: "redirect to credentials in userinfo",
		setup: func(t *testing.T, a, b, plain *hostile) {
			u := strings.Replace(b.url("blobs/"+digest), "https://", "https://user:USERINFO-s3cret@", 1)
			a.route("blobs/"+digest, redirectTo(u))
			b.route("blobs/"+digest, stall(""))
		},
	}, {
		name: "redirect to a blob that is too large",
		setup: func(t *testing.T, a, b, plain *hostile) {
			a.route("blobs/"+digest, redirectTo(b.url("blobs/"+digest)+"?"+query))
			b.route("blobs/"+digest, endless([]byte("x")))
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b, plain := newHostile(t, true), newHostile(t, true), newHostile(t, false)
			tc.setup(t, a, b, plain)
			requireAuth(a, "Bearer")
			kc := &registrytest.HostKeychain{Host: a.Repo.Host, Auth: &authn.Basic{Username: user, Password: password}}
			c := newTLSClient(t, a.Server, append([]registry.Option{registry.WithKeychain(kc)}, tc.opts...)...)
			_, err := c.Blob(deadline(t, 500*time.Millisecond), a.Repo, digest)
			if err == nil {
				t.Fatal("no error")
			}
			checkRedacted(t, err, more...)
		})
	}
}

func redirectTo(u string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", u)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}
}
