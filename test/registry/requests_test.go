package registry_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

// The simple-signing payload cosign signs without annotations is known
// from the repository and the digest: its blob is not fetched. With an
// annotation (-a) it is not, and the blob is fetched.
func TestCosignPayloadNotFetched(t *testing.T) {
	t.Parallel()
	reg := registrytest.StartTampering(t)
	cosign := harness.NewCosign(t)
	key := cosign.GenerateKeyPair(t)
	c := newClient(t)

	for _, tc := range []struct {
		name    string
		extra   []string
		fetched bool
	}{
		{"plain", nil, false},
		{"annotated", []string{"-a", "team=payments"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := reg.PushRandomImage(t, "app-"+tc.name, "v1")
			cosign.Sign(t, img.Ref, key, harness.Legacy, tc.extra...)
			repo := registry.Repository{Host: reg.Host, Path: "app-" + tc.name}
			var m registry.ImageManifest
			if err := json.Unmarshal(reg.Fetch(t, "/v2/"+repo.Path+"/manifests/"+tagOf(img.Digest, ".sig")).Body.Bytes(), &m); err != nil || len(m.Layers) != 1 {
				t.Fatalf("the .sig manifest: %v, %d layers", err, len(m.Layers))
			}
			blob := "/v2/" + repo.Path + "/blobs/" + m.Layers[0].Digest
			payload := reg.Fetch(t, blob).Body.Bytes()
			var mu sync.Mutex
			fetched := false
			reg.Override(blob, func(w http.ResponseWriter, _ *http.Request) {
				mu.Lock()
				fetched = true
				mu.Unlock()
				_, _ = w.Write(payload)
			})

			ev, err := c.Evidence(t.Context(), repo, img.Digest, registry.EvidenceOptions{SkipAttestations: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(ev) != 1 || ev[0].Kind != registry.LegacySignature || !bytes.Equal(ev[0].Content, payload) {
				t.Fatalf("evidence %+v, want the .sig with the payload the registry holds:\n%s", ev, payload)
			}
			mu.Lock()
			defer mu.Unlock()
			if fetched != tc.fetched {
				t.Errorf("payload blob fetched: %v, want %v", fetched, tc.fetched)
			}
		})
	}
}
