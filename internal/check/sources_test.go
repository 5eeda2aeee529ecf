package check_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// pathRecorder records the paths of the requests it passes on.
type pathRecorder struct {
	mu    sync.Mutex
	paths []string
	next  http.RoundTripper
}

func (p *pathRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	p.mu.Lock()
	p.paths = append(p.paths, r.URL.Path)
	p.mu.Unlock()
	return p.next.RoundTrip(r)
}

// TestEvidenceOnlyWhereAuthoritiesLook: when every authority of the
// policies at hand reads its signatures from a source of its own
// (source.oci), the image's repository is asked for its manifest (to
// resolve the tag) and nothing else; with an authority that reads the
// image's repository, its signatures are looked for there too.
func TestEvidenceOnlyWhereAuthoritiesLook(t *testing.T) {
	reg := registrytest.StartInProcess(t, true)
	img := reg.PushRandomImage(t, "app", "v1")
	authority := func(name, source string) v1alpha1.Authority { return policytest.KeyAuthority(t, name, source) }
	for _, tc := range []struct {
		name        string
		authorities []v1alpha1.Authority
		imageRepo   bool // whether evidence is looked for next to the image
	}{
		{"every authority has a source", []v1alpha1.Authority{authority("elsewhere", reg.Repo("signatures"))}, false},
		{"one authority reads the image's repository", []v1alpha1.Authority{authority("elsewhere", reg.Repo("signatures")), authority("here", "")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := policytest.Snapshot(t, "p", v1alpha1.ImagePolicySpec{
				Images: []v1alpha1.ImageMatcher{{Glob: reg.Host + "/**"}}, Authorities: tc.authorities,
			}, nil, policy.Config{})
			rec := &pathRecorder{next: http.DefaultTransport}
			rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(rec))
			if err != nil {
				t.Fatal(err)
			}
			ds, err := (&check.Decider{Registry: rc}).Decide(t.Context(), check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default"}, Images: []string{img.Tag}})
			if err != nil {
				t.Fatal(err)
			}
			if ds[0].Allowed || ds[0].Digest != img.Digest {
				t.Fatalf("unsigned image: allowed %v, digest %s: %+v", ds[0].Allowed, ds[0].Digest, ds[0])
			}
			var inImageRepo, inSource int
			for _, path := range rec.paths {
				switch {
				case strings.HasPrefix(path, "/v2/app/manifests/v1"):
				case strings.HasPrefix(path, "/v2/app/"):
					inImageRepo++
				case strings.HasPrefix(path, "/v2/signatures/"):
					inSource++
				}
			}
			if inSource == 0 || (inImageRepo > 0) != tc.imageRepo {
				t.Fatalf("%d evidence requests to the image's repository, %d to the source; want image's repository read: %v (%v)", inImageRepo, inSource, tc.imageRepo, rec.paths)
			}
		})
	}
}
