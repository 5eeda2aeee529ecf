package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/test/faults"
)

// memoryChildEnv makes the test binary run memoryChild instead of the tests.
const memoryChildEnv = "SIGNET_BENCH_MEMORY_CHILD"

func TestMain(m *testing.M) {
	if code, ok := faults.ChildMain(); ok {
		os.Exit(code)
	}
	if args := os.Getenv(serveChildEnv); args != "" {
		os.Exit(serveChild(args))
	}
	if n := os.Getenv(memoryChildEnv); n != "" {
		results, err := strconv.Atoi(n)
		if err == nil {
			err = memoryChild(context.Background(), results, 10000, os.Stdout)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// memoryReport is what the child process measured.
type memoryReport struct {
	Results     int     `json:"results"`
	Policies    int     `json:"policies"`
	IdleRSSMiB  float64 `json:"idleRSSMiB"`
	RSSMiB      float64 `json:"rssMiB"`
	HeapMiB     float64 `json:"heapMiB"`
	IdleHeapMiB float64 `json:"idleHeapMiB"`
}

// residentMemory runs the test binary again as a child that compiles
// 10,000 key policies, decides images until the cache holds results
// verified results (each a real signature check), collects garbage and
// reports its resident set (VmRSS) and live heap. The figure is the RSS
// of that whole process against the 200 MiB budget.
func residentMemory(tb testing.TB, full bool) Entry {
	results := 100000
	if !full {
		results = 2000
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", memoryChildEnv, results))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("memory child: %v\n%s", err, stderr.String())
	}
	var r memoryReport
	if err := json.Unmarshal(out, &r); err != nil {
		tb.Fatalf("memory child wrote %q: %v", out, err)
	}
	tb.Logf("memory: %d results, %d policies: RSS %.1f MiB (%.1f MiB before the results), live heap %.1f MiB (%.1f MiB before)", r.Results, r.Policies, r.RSSMiB, r.IdleRSSMiB, r.HeapMiB, r.IdleHeapMiB)
	return newEntry(fmt.Sprintf("resident memory, %d cached results and 10,000 policies", r.Results), "MiB", r.RSSMiB, 200, "the budget (200 MiB)", 1)
}

func memoryChild(ctx context.Context, results, policies int, out io.Writer) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	var ps []*policy.Policy
	for i := range policies {
		p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindClusterImagePolicy, Name: fmt.Sprintf("p%d", i), Spec: v1alpha1.ImagePolicySpec{
			Images:      []v1alpha1.ImageMatcher{{Glob: fmt.Sprintf("registry.example.org/team-%d/**", i)}},
			Authorities: []v1alpha1.Authority{{Name: "ci", InsecureIgnoreTlog: true, Key: &v1alpha1.KeyAuthority{Data: pub}}},
		}}, nil)
		if p.Err != nil {
			return p.Err
		}
		ps = append(ps, p)
	}
	snap, err := policy.NewSnapshot(ps, policy.Config{TrustVersion: "bench"})
	if err != nil {
		return err
	}
	rc, err := registry.New(registry.InsecureAllowHTTP(), registry.WithTransport(&signingRegistry{key: key}))
	if err != nil {
		return err
	}
	cache := check.NewCache(time.Hour, time.Hour, results+1)
	d := &check.Decider{Registry: rc, Cache: cache}
	idleRSS, idleHeap := memoryNow()

	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	for range 4 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= results {
					return
				}
				sum := sha256.Sum256([]byte(strconv.Itoa(i)))
				image := fmt.Sprintf("registry.example.org/team-%d/app@sha256:%x", i%policies, sum)
				ds, err := d.Decide(ctx, check.Request{Snapshot: snap, Target: policy.Target{Namespace: "default", Kind: "Pod"}, Images: []string{image}})
				if err != nil {
					failed.Store(err.Error())
				} else if !ds[0].Allowed {
					failed.Store(fmt.Sprintf("%s denied: %v", image, ds[0].Denials))
				}
			}
		})
	}
	wg.Wait()
	if f := failed.Load(); f != nil {
		return fmt.Errorf("%s", f)
	}
	if _, _, n := cache.Stats(); n != results {
		return fmt.Errorf("the cache holds %d results, want %d", n, results)
	}
	rss, heap := memoryNow()
	runtime.KeepAlive(snap)
	runtime.KeepAlive(d)
	return json.NewEncoder(out).Encode(memoryReport{Results: results, Policies: policies, IdleRSSMiB: idleRSS, RSSMiB: rss, HeapMiB: heap, IdleHeapMiB: idleHeap})
}

// memoryNow collects garbage, returns freed memory to the OS, and reads the
// resident set (VmRSS) and the live heap, in MiB.
func memoryNow() (rss, heap float64) {
	runtime.GC()
	debug.FreeOSMemory()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	heap = float64(s[0].Value.Uint64()) / (1 << 20)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, heap
	}
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			rss = kb / 1024
		}
	}
	return rss, heap
}

// signingRegistry is a registry, in memory, where every image is signed:
// the legacy .sig manifest of any digest is made on request, with a real
// ECDSA signature over cosign's simple-signing payload for that digest.
// Nothing else exists (404).
type signingRegistry struct {
	key *ecdsa.PrivateKey

	// payloads holds the payloads of the last len(ring) signatures made,
	// by blob digest, for a client that fetches them: bounded, so that this
	// double's own memory stays out of the figure (signet rebuilds cosign's
	// plain payload from the digest and fetches none).
	mu       sync.Mutex
	payloads map[string][]byte
	ring     [1024]string
	next     int
}

func (s *signingRegistry) keep(blob string, payload []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.payloads == nil {
		s.payloads = map[string][]byte{}
	}
	delete(s.payloads, s.ring[s.next])
	s.ring[s.next], s.next = blob, (s.next+1)%len(s.ring)
	s.payloads[blob] = payload
}

func (s *signingRegistry) payload(blob string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.payloads[blob]
	return p, ok
}

func (s *signingRegistry) RoundTrip(r *http.Request) (*http.Response, error) {
	respond := func(code int, ctype string, body []byte) (*http.Response, error) {
		h := http.Header{}
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		return &http.Response{StatusCode: code, Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: r}, nil
	}
	notFound := func() (*http.Response, error) {
		return respond(http.StatusNotFound, "application/json", []byte(`{"errors":[{"code":"MANIFEST_UNKNOWN"}]}`))
	}
	path := r.URL.Path
	if path == "/v2/" {
		return respond(http.StatusOK, "application/json", []byte("{}"))
	}
	if _, blob, ok := strings.Cut(path, "/blobs/"); ok {
		if p, ok := s.payload(blob); ok {
			return respond(http.StatusOK, "application/octet-stream", p)
		}
		return notFound()
	}
	repo, tag, ok := strings.Cut(strings.TrimPrefix(path, "/v2/"), "/manifests/")
	if !ok || !strings.HasPrefix(tag, "sha256-") || !strings.HasSuffix(tag, ".sig") {
		return notFound()
	}
	digest := "sha256:" + strings.TrimSuffix(strings.TrimPrefix(tag, "sha256-"), ".sig")
	payload := []byte(fmt.Sprintf(`{"critical":{"identity":{"docker-reference":%q},"image":{"docker-manifest-digest":%q},"type":"cosign container image signature"},"optional":null}`, r.URL.Host+"/"+repo, digest))
	sum := sha256.Sum256(payload)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		return nil, err
	}
	blob := fmt.Sprintf("sha256:%x", sum)
	s.keep(blob, payload)
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
		"layers": []any{map[string]any{"mediaType": "application/vnd.dev.cosign.simplesigning.v1+json", "size": len(payload), "digest": blob,
			"annotations": map[string]string{"dev.cosignproject.cosign/signature": base64.StdEncoding.EncodeToString(sig)}}},
	})
	if err != nil {
		return nil, err
	}
	return respond(http.StatusOK, "application/vnd.oci.image.manifest.v1+json", manifest)
}
