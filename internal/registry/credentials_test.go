package registry

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
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

// TestSecretKeychainHostSpellings: a credential goes to its registry however
// the pull secret and the image spell the host, and never to another host.
func TestSecretKeychainHostSpellings(t *testing.T) {
	k, err := NewSecretKeychain(map[string][]byte{".dockerconfigjson": []byte(`{"auths":{
		"registry.example.org": {"username":"example","password":"e"},
		"127.0.0.1:05000": {"username":"loopback","password":"l"},
		"https://[0:0::1]:5000/v2/": {"username":"ipv6","password":"i"},
		"registry-1.docker.io": {"username":"hub","password":"h"},
		"other.example.org:443": {"username":"port443","password":"p"},
		"trailing.example.org.": {"username":"dot","password":"d"},
		"*.example.com": {"username":"glob","password":"g"}
	}}`)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ repo, user string }{
		{"registry.example.org/app", "example"},
		{"REGISTRY.example.org/app", "example"},
		{"registry.example.org.attacker.com/app", ""},
		{"attacker.com/registry.example.org", ""},
		{"registry.example.org:5000/app", ""},
		{"127.0.0.1:5000/app", "loopback"},
		{"[::1]:5000/app", "ipv6"},
		{"nginx", "hub"},
		{"index.docker.io/library/nginx", "hub"},
		// Keys naming hosts no reference has are never used.
		{"other.example.org/app", ""},
		{"trailing.example.org/app", ""},
		{"a.example.com/app", ""},
	}
	for _, tt := range tests {
		t.Run(tt.repo, func(t *testing.T) {
			repo, err := name.NewRepository(tt.repo)
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
			if diff := cmp.Diff(tt.user, cfg.Username); diff != "" {
				t.Errorf("user for %s (-want +got):\n%s", tt.repo, diff)
			}
		})
	}
}

// TestSecretKeychainSpellingsOrder: two keys of one secret naming the same
// registry give the same credential every time.
func TestSecretKeychainSpellingsOrder(t *testing.T) {
	secret := map[string][]byte{".dockercfg": []byte(`{"docker.io":{"username":"a","password":"x"},` +
		`"https://index.docker.io/v1/":{"username":"b","password":"x"},"registry-1.docker.io":{"username":"c","password":"x"}}`)}
	repo, err := name.NewRepository("nginx")
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for range 20 {
		k, err := NewSecretKeychain(secret)
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
		users = append(users, cfg.Username)
	}
	want := slices.Repeat([]string{users[0]}, len(users))
	if diff := cmp.Diff(want, users); diff != "" {
		t.Errorf("credential chosen among spellings of one registry (-want +got):\n%s", diff)
	}
}

// TestSecretKeychainAlternatives: each distinct credential for a host, in
// the order of the secrets (one per secret, the same one twice counted
// once), can be chosen for that host alone; other hosts keep the first.
func TestSecretKeychainAlternatives(t *testing.T) {
	k, err := NewSecretKeychain(
		map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"username":"a","password":"1"},"registry.example.org/v2/":{"username":"a-spelled-again","password":"1"},"other.example.org":{"username":"o","password":"1"}}}`)},
		map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"username":"a","password":"1"}}}`)},
		map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"username":"b","password":"2"},"other.example.org":{"username":"o2","password":"2"}}}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{0, 2}, k.Alternatives("registry.example.org")); diff != "" {
		t.Errorf("alternatives (-want +got):\n%s", diff)
	}
	if got := k.Count("registry.example.org"); got != 2 {
		t.Errorf("count %d, want 2", got)
	}
	user := func(kc *SecretKeychain, repo string) string {
		r, err := name.NewRepository(repo)
		if err != nil {
			t.Fatal(err)
		}
		a, err := kc.Resolve(r.Registry)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := a.Authorization()
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Username
	}
	for _, tc := range []struct {
		pick            int
		registry, other string
		evil            string
	}{
		{0, "a", "o", ""},
		{1, "b", "o", ""},
		{2, "", "o", ""}, // past the last: anonymous for that host
	} {
		kc := k.Alternative("registry.example.org", tc.pick)
		got := []string{user(kc, "registry.example.org/app"), user(kc, "other.example.org/app"), user(kc, "evil.example.org/app")}
		if diff := cmp.Diff([]string{tc.registry, tc.other, tc.evil}, got); diff != "" {
			t.Errorf("alternative %d: users for registry, other, evil (-want +got):\n%s", tc.pick, diff)
		}
	}
	if user(k, "registry.example.org/app") != "a" {
		t.Error("Alternative changed the keychain it was made from")
	}
}
