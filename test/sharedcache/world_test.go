package sharedcache

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/redis"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/policytest"
	"github.com/signet-dev/signet/test/registrytest"
)

// world is a registry behind a counting proxy, a cosign key pair, a
// redis-server, and images: signed (a Sigstore bundle), unsigned.
type world struct {
	reg    *registrytest.Registry
	proxy  *countingProxy
	redis  *harness.Redis
	cosign *harness.Cosign
	key    harness.KeyPair
	pub    []byte
	// macKey is the replicas' shared cache key.
	macKey []byte
	// signed and unsigned are tags through the proxy.
	signed, unsigned string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{reg: harness.StartRegistry(t), redis: harness.StartRedis(t), cosign: harness.NewCosign(t),
		macKey: []byte("a key of 32 bytes or more, shared by the replicas")}
	w.proxy = startCountingProxy(t, w.reg.Host)
	w.key = w.cosign.GenerateKeyPair(t)
	var err error
	if w.pub, err = os.ReadFile(w.key.Public); err != nil {
		t.Fatal(err)
	}
	signed := w.reg.PushRandomImage(t, "app", "v1")
	// One signature only: with both a legacy signature and a bundle, which
	// one a cold decision names depends on which is found first (it stops
	// reading once the policy passes), and the tests compare cold
	// decisions made by two replicas.
	w.cosign.Sign(t, signed.Ref, w.key, harness.Bundle)
	unsigned := w.reg.PushRandomImage(t, "other", "v1")
	w.signed, w.unsigned = w.proxy.via(signed.Tag), w.proxy.via(unsigned.Tag)
	return w
}

// snapshot compiles the policy (every image through the proxy, signed by
// the world's key) afresh, as each replica does.
func (w *world) snapshot(t *testing.T) *policy.Snapshot {
	t.Helper()
	return policytest.Snapshot(t, "signed", v1alpha1.ImagePolicySpec{
		Images:      []v1alpha1.ImageMatcher{{Glob: w.proxy.Host + "/**"}},
		Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: string(w.pub)}}},
	}, nil, policy.Config{TrustVersion: "embedded:test"})
}

// replica is one signet replica's Decider: a cache of its own, the shared
// tier in the world's redis-server with key.
type replica struct {
	*check.Decider
	shared *check.SharedCache
	snap   *policy.Snapshot
}

type replicaOptions struct {
	key      []byte
	timeout  time.Duration
	negative time.Duration
}

func (w *world) replica(t *testing.T, o replicaOptions) *replica {
	t.Helper()
	if o.key == nil {
		o.key = w.macKey
	}
	if o.negative == 0 {
		o.negative = time.Minute
	}
	shared, err := check.NewSharedCache(redis.New(redis.Options{Addr: w.redis.Addr, Password: w.redis.Password}), o.key, check.SharedOptions{Timeout: o.timeout})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registry.New(registry.InsecureAllowHTTP())
	if err != nil {
		t.Fatal(err)
	}
	cache := check.NewCache(time.Hour, o.negative, 1000)
	cache.Shared = shared
	return &replica{Decider: &check.Decider{Registry: rc, Cache: cache}, shared: shared, snap: w.snapshot(t)}
}

// decide decides image in a Pod of namespace default, and returns the
// decision and the evidence requests (signatures, attestations, referrers)
// the registry received meanwhile.
func (r *replica) decide(t *testing.T, w *world, image string) (check.Decision, int) {
	t.Helper()
	before := w.proxy.evidence()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	ds, err := r.Decide(ctx, check.Request{Snapshot: r.snap, Target: policy.Target{Namespace: "default", Kind: "Pod"}, Images: []string{image}})
	if err != nil || len(ds) != 1 {
		t.Fatalf("deciding %s: %v (%d decisions)", image, err, len(ds))
	}
	return ds[0], w.proxy.evidence() - before
}

// sameDecision compares decisions as admission answers them: every field,
// errors by text and kinds, and no time of a signature verified "now".
func sameDecision(t *testing.T, want, got check.Decision) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b error) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		return a.Error() == b.Error() && cmp.Equal(verify.Codes(a), verify.Codes(b))
	}), cmp.Transformer("now", func(ts verify.Timestamp) verify.Timestamp {
		if ts.Kind == "CurrentTime" {
			ts.Time = time.Time{}
		}
		return ts
	})); diff != "" {
		t.Errorf("decision (-cold +shared):\n%s", diff)
	}
}

// countingProxy forwards to a registry and counts its requests; fail,
// when it says so, answers a request with a status instead.
type countingProxy struct {
	Host string
	mu   sync.Mutex
	// paths counts requests by method and path.
	paths map[string]int
	fail  func(r *http.Request) int
}

func startCountingProxy(t *testing.T, registryHost string) *countingProxy {
	t.Helper()
	target, err := url.Parse("http://" + registryHost)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{paths: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a decision that stopped early cancels requests
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths[r.Method+" "+r.URL.Path]++
		fail := p.fail
		p.mu.Unlock()
		if fail != nil {
			if code := fail(r); code != 0 {
				http.Error(rw, "injected", code)
				return
			}
		}
		rp.ServeHTTP(rw, r)
	}))
	t.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// via is a reference of the registry's, through the proxy.
func (p *countingProxy) via(ref string) string {
	_, rest, _ := strings.Cut(ref, "/")
	return p.Host + "/" + rest
}

func (p *countingProxy) setFail(f func(r *http.Request) int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = f
}

// evidence counts the requests for evidence: legacy signature and
// attestation tags (sha256-<hex>.sig/.att), referrers, blobs.
func (p *countingProxy) evidence() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, c := range p.paths {
		if strings.Contains(k, "/manifests/sha256-") || strings.Contains(k, "/referrers/") || strings.Contains(k, "/blobs/") {
			n += c
		}
	}
	return n
}

// withShared is a new empty cache like c with the shared tier s: the
// replica as if restarted, its shared tier (and its back-off) kept.
func withShared(c *check.Cache, s *check.SharedCache) *check.Cache {
	n := check.NewCache(c.Positive, c.Negative, c.MaxEntries)
	n.Shared = s
	return n
}
