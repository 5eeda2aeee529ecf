package registry_test

import (
	"context"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

const (
	user     = "alice"
	password = "s3cret-Passw0rd"
)

// The real distribution registry with htpasswd authentication: the right
// credentials read the image and the signatures cosign pushed with them; the
// wrong ones fail clearly.
func TestDistributionBasicAuth(t *testing.T) {
	t.Parallel()
	reg := harness.StartRegistry(t, harness.WithBasicAuth(user, password))
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	pushed := reg.PushImage(t, "app", "v1", img, remote.WithAuth(&authn.Basic{Username: user, Password: password}))

	// cosign reads the credentials from its Docker config.
	dockerConfig := t.TempDir()
	cfg := `{"auths":{"` + reg.Host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+password)) + `"}}}`
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cosign := harness.NewCosign(t).WithEnv("DOCKER_CONFIG=" + dockerConfig)
	key := cosign.GenerateKeyPair(t)
	cosign.Sign(t, pushed.Ref, key, harness.Legacy)
	cosign.Sign(t, pushed.Ref, key, harness.Bundle)

	repo := registry.Repository{Host: reg.Host, Path: "app"}
	t.Run("right credentials", func(t *testing.T) {
		t.Parallel()
		c := newClient(t, registry.WithKeychain(&registrytest.HostKeychain{Host: reg.Host, Auth: &authn.Basic{Username: user, Password: password}}))
		m, err := c.Resolve(t.Context(), repo, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if m.Digest != pushed.Digest {
			t.Errorf("digest %s, want %s", m.Digest, pushed.Digest)
		}
		ev, err := c.Evidence(t.Context(), repo, pushed.Digest, registry.EvidenceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[registry.Kind]int{}
		for _, e := range ev {
			kinds[e.Kind]++
		}
		if want := map[registry.Kind]int{registry.LegacySignature: 1, registry.SigstoreBundle: 1}; !maps.Equal(kinds, want) {
			t.Errorf("evidence kinds %v, want %v", kinds, want)
		}
	})
	for _, tc := range []struct {
		name string
		kc   authn.Keychain
	}{
		{"wrong password", &registrytest.HostKeychain{Host: reg.Host, Auth: &authn.Basic{Username: user, Password: "wrong-" + password}}},
		{"credentials for another host", &registrytest.HostKeychain{Host: "registry.example.org", Auth: &authn.Basic{Username: user, Password: password}}},
		{"no credentials", authn.NewMultiKeychain()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, registry.WithKeychain(tc.kc))
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := c.Resolve(ctx, repo, "v1")
			var se *registry.StatusError
			if !errors.As(err, &se) || se.StatusCode != http.StatusUnauthorized || !errors.Is(err, registry.ErrUnauthorized) {
				t.Fatalf("error %v, want a *StatusError with 401 (ErrUnauthorized)", err)
			}
			for _, secret := range []string{password, "wrong-" + password, base64.StdEncoding.EncodeToString([]byte(user + ":" + password))} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error message contains the secret %q: %v", secret, err)
				}
			}
			if _, err := c.Evidence(ctx, repo, pushed.Digest, registry.EvidenceOptions{}); err == nil {
				t.Error("Evidence without the right credentials reported no error (absence is not acceptance)")
			}
		})
	}
}
