package registry_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/internal/registry"
)

func TestOptions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		opts    []registry.Option
		want    registry.Limits
		wantErr string
	}{
		{name: "defaults", want: registry.DefaultLimits},
		{name: "zero fields keep their defaults", opts: []registry.Option{registry.WithLimits(registry.Limits{MaxLayers: 3})},
			want: registry.Limits{MaxManifestBytes: 4 << 20, MaxBlobBytes: 4 << 20, MaxLayers: 3, MaxReferrers: 128, MaxRedirects: 3}},
		{name: "negative limit", opts: []registry.Option{registry.WithLimits(registry.Limits{MaxBlobBytes: -1})}, wantErr: "must not be negative"},
		{name: "nil keychain", opts: []registry.Option{registry.WithKeychain(nil)}, wantErr: "keychain is nil"},
		{name: "nil transport", opts: []registry.Option{registry.WithTransport(nil)}, wantErr: "transport is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := registry.New(tc.opts...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, c.Limits()); diff != "" {
				t.Errorf("limits (-want +got):\n%s", diff)
			}
		})
	}
}

// Every request, the ping included, carries the configured User-Agent.
func TestUserAgent(t *testing.T) {
	t.Parallel()
	h := newHostile(t, true)
	var agents []string
	record := func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			h.mu.Lock()
			agents = append(agents, r.UserAgent())
			h.mu.Unlock()
			next(w, r)
		}
	}
	h.route("/v2/", record(func(http.ResponseWriter, *http.Request) {}))
	h.route("manifests/v1", record(serveJSON(registry.MediaTypeOCIManifest, []byte(`{}`))))
	c := newTLSClient(t, h.Server, registry.WithUserAgent("signet-test/1.0"))
	if _, err := c.Resolve(t.Context(), h.Repo, "v1"); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(agents) < 2 {
		t.Fatalf("%d requests recorded, want the ping and the manifest", len(agents))
	}
	for _, a := range agents {
		if !strings.HasPrefix(a, "signet-test/1.0") {
			t.Errorf("User-Agent %q, want signet-test/1.0", a)
		}
	}
}
