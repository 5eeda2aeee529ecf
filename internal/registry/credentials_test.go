package registry

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

func TestSecretKeychain(t *testing.T) {
	k, err := NewSecretKeychain(
		map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"https://Registry.Example.org:5000/v1/":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"username":"hub","password":"h"}}}`)},
		map[string][]byte{".dockercfg": []byte(`{"registry.example.org:5000":{"username":"later","password":"x"},"other.example.org":{"username":"o","password":"p"}}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ repo, user string }{
		{"registry.example.org:5000/app", "user"}, // first secret wins
		{"registry.example.org/app", ""},          // another port is another registry
		{"other.example.org/app", "o"},
		{"nginx", "hub"},
		{"evil.example.org/app", ""},
	} {
		repo, err := name.NewRepository(tc.repo)
		if err != nil {
			t.Fatal(err)
		}
		a, err := k.Resolve(repo.Registry)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Username != tc.user {
			t.Errorf("%s: user %q, want %q", tc.repo, cfg.Username, tc.user)
		}
		if tc.user == "" && a != authn.Anonymous {
			t.Errorf("%s: credentials for a registry no secret names", tc.repo)
		}
	}
	if _, err := NewSecretKeychain(map[string][]byte{"token": []byte("x")}); err == nil {
		t.Error("a secret without docker config was accepted")
	}
}
