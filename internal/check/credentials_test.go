package check_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/cloudauth"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// authGate lets a request through to a registry only with the credential
// that registry wants (401 with a Basic challenge otherwise), and records
// the credential each registry was sent.
type authGate struct {
	want map[string]string // host: user:password

	mu   sync.Mutex
	sent map[string][]string // host: user:password sent, in order
}

func (g *authGate) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "http" {
		return http.DefaultTransport.RoundTrip(r) // the registries speak plain HTTP
	}
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Basic ") {
		raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(h, "Basic "))
		got = string(raw)
	}
	g.mu.Lock()
	if got != "" && (len(g.sent[r.URL.Host]) == 0 || g.sent[r.URL.Host][len(g.sent[r.URL.Host])-1] != got) {
		g.sent[r.URL.Host] = append(g.sent[r.URL.Host], got)
	}
	g.mu.Unlock()
	if got != g.want[r.URL.Host] {
		h := http.Header{}
		h.Set("WWW-Authenticate", `Basic realm="test"`)
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Body: http.NoBody, Request: r}, nil
	}
	return http.DefaultTransport.RoundTrip(r)
}

// pullSecret is the Secret data of a .dockerconfigjson for user:password
// at each host.
func pullSecret(creds map[string]string) map[string][]byte {
	var b strings.Builder
	b.WriteString(`{"auths":{`)
	i := 0
	for host, up := range creds {
		if i > 0 {
			b.WriteString(",")
		}
		i++
		b.WriteString(`"` + host + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(up)) + `"}`)
	}
	b.WriteString(`}}`)
	return map[string][]byte{".dockerconfigjson": []byte(b.String())}
}

// TestCredentialSources: credentials are tried in the seed's order
// (object, service account, matching policies', fallback), each sent only
// to the registry it names; a registry refusing one is asked with the next
// one for it; when none works, the reason names the sources tried, never
// their contents.
func TestCredentialSources(t *testing.T) {
	one := registrytest.StartInProcess(t, true)
	two := registrytest.StartInProcess(t, true)
	img := one.PushRandomImage(t, "app", "v1")
	gate := &authGate{want: map[string]string{one.Host: "one:good", two.Host: "two:good"}, sent: map[string][]string{}}

	snap := func(policySecrets ...registry.CredentialSource) *policy.Snapshot {
		s := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: one.Host + "/**"}},
			Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
		}, nil, policy.Config{})
		s.Policies()[0].PullSecrets = policySecrets
		return s
	}
	src := func(name string, creds map[string]string) registry.CredentialSource {
		return registry.CredentialSource{Name: name, Secrets: []map[string][]byte{pullSecret(creds)}}
	}
	fallback := func(s registry.CredentialSource) registry.CredentialSource { s.Fallback = true; return s }

	for _, tc := range []struct {
		name    string
		sources []registry.CredentialSource
		policy  []registry.CredentialSource
		decided bool
		sent    []string // to registry one, in order
		reason  []string // in the undecided reason
	}{
		{
			name:    "the object's credential works",
			sources: []registry.CredentialSource{src("object", map[string]string{one.Host: "one:good", two.Host: "two:good"})},
			decided: true, sent: []string{"one:good"},
		},
		{
			name: "a bad object credential falls through to the service account's",
			sources: []registry.CredentialSource{
				src("object", map[string]string{one.Host: "one:bad"}),
				src("service account", map[string]string{one.Host: "one:good"}),
			},
			decided: true, sent: []string{"one:bad", "one:good"},
		},
		{
			name: "the policy's credential after the object's and before the fallback's",
			sources: []registry.CredentialSource{
				fallback(src("fallback", map[string]string{one.Host: "one:fallback"})),
				src("object", map[string]string{one.Host: "one:bad", two.Host: "two:good"}),
			},
			policy:  []registry.CredentialSource{src("policy", map[string]string{one.Host: "one:good"})},
			decided: true, sent: []string{"one:bad", "one:good"},
		},
		{
			name: "the fallback's credential last",
			sources: []registry.CredentialSource{
				fallback(src("fallback", map[string]string{one.Host: "one:good"})),
				src("object", map[string]string{one.Host: "one:bad"}),
			},
			policy:  []registry.CredentialSource{src("policy", map[string]string{one.Host: "one:also-bad"})},
			decided: true, sent: []string{"one:bad", "one:also-bad", "one:good"},
		},
		{
			name: "another registry's credential is never sent",
			sources: []registry.CredentialSource{
				src("object", map[string]string{two.Host: "two:good"}),
			},
			reason: []string{"no pull secret names " + one.Host},
		},
		{
			name:   "no source at all: the reason says there is no credential",
			reason: []string{"registry answered 401 Unauthorized (no pull secret names " + one.Host + ")"},
		},
		{
			name:    "no source gives one: the reason says why",
			sources: []registry.CredentialSource{fallback(registry.CredentialSource{Name: "fallback", Fallback: true, Problem: "has no imagePullSecrets"})},
			reason:  []string{"(no pull secret names " + one.Host + "; fallback: has no imagePullSecrets)"},
		},
		{
			name: "none works: the reason names the sources tried",
			sources: []registry.CredentialSource{
				src("object", map[string]string{one.Host: "one:bad"}),
				src("service account", map[string]string{one.Host: "one:bad"}), // the same credential is not tried twice
				fallback(registry.CredentialSource{Name: "fallback", Fallback: true, Problem: "has no imagePullSecrets"}),
			},
			policy: []registry.CredentialSource{src("policy", map[string]string{one.Host: "one:worse", two.Host: "two:good"})},
			sent:   []string{"one:bad", "one:worse"},
			reason: []string{"credentials tried for " + one.Host + ": object, policy", "fallback: has no imagePullSecrets"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate.mu.Lock()
			gate.sent = map[string][]string{}
			gate.mu.Unlock()
			dc := &check.Decider{Clients: &check.Clients{New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
				return registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(gate), registry.WithKeychain(kc))
			}}}
			dc.Registry, _ = registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(gate))
			ds, err := dc.Decide(t.Context(), check.Request{Snapshot: snap(tc.policy...), Target: policy.Target{Namespace: "default"}, Images: []string{img.Tag}, Sources: tc.sources})
			if err != nil {
				t.Fatal(err)
			}
			d := ds[0]
			if d.Allowed {
				t.Fatalf("an unsigned image is allowed: %+v", d)
			}
			if d.Undecided == tc.decided {
				t.Fatalf("undecided %v, want %v: %v", d.Undecided, !tc.decided, d.Denials)
			}
			gate.mu.Lock()
			sent := gate.sent
			gate.mu.Unlock()
			if diff := cmp.Diff(tc.sent, sent[one.Host]); diff != "" {
				t.Errorf("credentials sent to registry one (-want +got):\n%s", diff)
			}
			if len(sent[two.Host]) > 0 {
				t.Errorf("registry two was sent %v", sent[two.Host])
			}
			for _, up := range sent[one.Host] {
				if strings.HasPrefix(up, "two:") {
					t.Errorf("registry one was sent registry two's credential %q", up)
				}
			}
			reason := strings.Join(d.Denials, "\n")
			for _, w := range tc.reason {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q does not say %q", reason, w)
				}
			}
			for _, secret := range []string{"bad", "good", "worse"} {
				if strings.Contains(reason, secret) || slices.ContainsFunc(d.Policies, func(p check.PolicyDecision) bool { return strings.Contains(p.Error, ":"+secret) }) {
					t.Errorf("reason %q tells a credential", reason)
				}
			}
		})
	}
}

// TestOwnCredentialsLast: when the registry refuses every pull secret
// naming it, it is asked once more with signet's own credentials (here a
// keychain standing for the cloud providers and the Docker config), or
// anonymously when signet has none, as the kubelet pulls.
func TestOwnCredentialsLast(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	img := reg.PushRandomImage(t, "app", "v1")
	snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}},
		Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
	}, nil, policy.Config{})
	own, err := registry.NewSecretKeychain(pullSecret(map[string]string{reg.Host: "u:own"}))
	if err != nil {
		t.Fatal(err)
	}
	sources := []registry.CredentialSource{
		{Name: "object", Secrets: []map[string][]byte{pullSecret(map[string]string{reg.Host: "u:bad"})}},
		{Name: "service account", Secrets: []map[string][]byte{pullSecret(map[string]string{reg.Host: "u:worse"})}},
	}
	for _, tc := range []struct {
		name    string
		want    string // the credential the registry takes
		decided bool
		sent    []string
		reason  string
	}{
		{name: "signet's own credential admits", want: "u:own", decided: true, sent: []string{"u:bad", "u:worse", "u:own"}},
		{name: "none works", want: "u:other", sent: []string{"u:bad", "u:worse", "u:own"},
			reason: "credentials tried for " + reg.Host + ": object, service account, then signet's own (cloud providers, Docker config) or none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gate := &authGate{want: map[string]string{reg.Host: tc.want}, sent: map[string][]string{}}
			dc := &check.Decider{Clients: &check.Clients{New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
				return registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(gate), registry.WithKeychain(authn.NewMultiKeychain(kc, own)))
			}}}
			dc.Registry, _ = registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(gate))
			ds, err := dc.Decide(t.Context(), check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{img.Tag}, Sources: sources})
			if err != nil {
				t.Fatal(err)
			}
			d := ds[0]
			if d.Allowed || d.Undecided == tc.decided {
				t.Fatalf("allowed %v undecided %v, want an unsigned image decided=%v: %v", d.Allowed, d.Undecided, tc.decided, d.Denials)
			}
			gate.mu.Lock()
			defer gate.mu.Unlock()
			if diff := cmp.Diff(tc.sent, gate.sent[reg.Host]); diff != "" {
				t.Errorf("credentials sent (-want +got):\n%s", diff)
			}
			if reason := strings.Join(d.Denials, "\n"); !strings.Contains(reason, tc.reason) {
				t.Errorf("reason %q does not say %q", reason, tc.reason)
			}
		})
	}
}

// TestCloudProviderFailureUndecided: a cloud provider that cannot give a
// credential for its registry makes the image undecided, the reason naming
// the provider and the host.
func TestCloudProviderFailureUndecided(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	img := reg.PushRandomImage(t, "app", "v1")
	snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}},
		Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
	}, nil, policy.Config{})
	cloud := cloudauth.NewKeychain(failingProvider{host: reg.Host})
	rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithKeychain(authn.NewMultiKeychain(cloud)))
	if err != nil {
		t.Fatal(err)
	}
	ds, err := (&check.Decider{Registry: rc}).Decide(t.Context(), check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{img.Tag}})
	if err != nil {
		t.Fatal(err)
	}
	d := ds[0]
	want := "test registry credentials for " + reg.Host + " (--registry-credential-providers): no identity bound"
	if d.Allowed || !d.Undecided || !strings.Contains(strings.Join(d.Denials, "\n"), want) {
		t.Fatalf("allowed %v undecided %v %q; want undecided saying %q", d.Allowed, d.Undecided, d.Denials, want)
	}
}

type failingProvider struct{ host string }

func (failingProvider) Name() string            { return "test" }
func (p failingProvider) Handles(h string) bool { return h == p.host }
func (failingProvider) Credential(context.Context, string) (authn.AuthConfig, time.Time, error) {
	return authn.AuthConfig{}, time.Time{}, errors.New("no identity bound")
}

// TestCredentialFallThroughWarm: once decided with a later credential, the
// same request is decided from the cache, without asking the registry
// again (the refused credential first included).
func TestCredentialFallThroughWarm(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	img := reg.PushRandomImage(t, "app", "v1")
	gate := &authGate{want: map[string]string{reg.Host: "u:good"}, sent: map[string][]string{}}
	snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}},
		Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
	}, nil, policy.Config{})
	dc := &check.Decider{Cache: check.NewCache(time.Hour, time.Hour, 100), ResolutionWindow: time.Hour, Clients: &check.Clients{New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
		return registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(gate), registry.WithKeychain(kc))
	}}}
	req := check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{img.Tag}, Sources: []registry.CredentialSource{
		{Name: "object", Secrets: []map[string][]byte{pullSecret(map[string]string{reg.Host: "u:bad"})}},
		{Name: "service account", Secrets: []map[string][]byte{pullSecret(map[string]string{reg.Host: "u:good"})}},
	}}
	for i := range 2 {
		gate.mu.Lock()
		gate.sent = map[string][]string{}
		gate.mu.Unlock()
		ds, err := dc.Decide(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if ds[0].Undecided || ds[0].Allowed {
			t.Fatalf("decision %d: %+v", i, ds[0])
		}
		gate.mu.Lock()
		sent := gate.sent[reg.Host]
		gate.mu.Unlock()
		want := []string{"u:bad", "u:good"}
		if i == 1 {
			want = nil
		}
		if diff := cmp.Diff(want, sent); diff != "" {
			t.Errorf("decision %d: credentials sent (-want +got):\n%s", i, diff)
		}
	}
}

// TestUnreadableCredentialSource: a source whose Secret is not a readable
// pull secret makes the request undecided, naming the source and never
// what the Secret holds.
func TestUnreadableCredentialSource(t *testing.T) {
	snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: "registry.example.org/**"}},
		Authorities: []v1alpha1.Authority{policytest.KeyAuthority(t, "k", "")},
	}, nil, policy.Config{})
	dc := &check.Decider{Clients: &check.Clients{New: func(kc *registry.SecretKeychain) (*registry.Client, error) {
		return registry.New(registry.WithKeychain(kc))
	}}}
	for _, bad := range []map[string][]byte{
		{"password": []byte("hunter2")},
		{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"auth":"hunter2`)},
		{".dockerconfigjson": []byte(`{"auths":{"registry.example.org":{"auth":"not base64 hunter2"}}}`)},
	} {
		_, err := dc.Decide(t.Context(), check.Request{Snapshot: snap, Images: []string{"registry.example.org/app:v1"}, Sources: []registry.CredentialSource{
			{Name: "pull secret app/good of the object", Secrets: []map[string][]byte{pullSecret(map[string]string{"registry.example.org": "u:p"})}},
			{Name: "pull secret app/bad of service account builder", Secrets: []map[string][]byte{bad}},
		}})
		if !check.IsUndecided(err) || !strings.Contains(err.Error(), "pull secret app/bad of service account builder") || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("got %v, want undecided naming the bad source, not its contents", err)
		}
	}
}
