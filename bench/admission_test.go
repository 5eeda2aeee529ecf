package bench

import (
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

// policyDir writes n ClusterImagePolicies into a new directory: the first
// selects glob and trusts the world's key; the others select other
// registries' repositories (registry.example.org/team-N/**), each with the
// same kind of key authority, so that they cost what real policies cost.
func (w *world) policyDir(tb testing.TB, n int, glob string) string {
	tb.Helper()
	pub := readKey(tb, w.key)
	dir := tb.TempDir()
	const perFile = 1000
	for f := 0; f*perFile < n; f++ {
		var b strings.Builder
		for i := f * perFile; i < min(n, (f+1)*perFile); i++ {
			g := glob
			if i > 0 {
				g = fmt.Sprintf("registry.example.org/team-%d/**", i)
			}
			b.WriteString(keyPolicy(fmt.Sprintf("p%d", i), g, "", pub))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("policies-%03d.yaml", f)), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// keyPolicy is a ClusterImagePolicy (a YAML document) selecting glob that
// trusts the PEM public key pub, without a transparency log; mode "" leaves
// the default.
func keyPolicy(name, glob, mode string, pub []byte) string {
	m := ""
	if mode != "" {
		m = "  mode: " + mode + "\n"
	}
	return fmt.Sprintf("---\napiVersion: signet.dev/v1alpha1\nkind: ClusterImagePolicy\nmetadata:\n  name: %s\nspec:\n  images:\n    - glob: %q\n%s  authorities:\n    - name: ci\n      insecureIgnoreTlog: true\n      key:\n        data: |\n%s",
		name, glob, m, indent(string(pub), "          "))
}

// writePolicies writes YAML documents into policies.yaml in a new directory
// and returns the directory.
func writePolicies(tb testing.TB, docs ...string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(strings.Join(docs, "")), 0o644); err != nil {
		tb.Fatal(err)
	}
	return dir
}

// readKey reads a key pair's public key (PEM).
func readKey(tb testing.TB, key harness.KeyPair) []byte {
	tb.Helper()
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		tb.Fatal(err)
	}
	return pub
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

// signedImages pushes n random images, each in its own repository under
// prefix, and signs each with the world's key (legacy format, by cosign).
func (w *world) signedImages(tb testing.TB, prefix string, n int) []registrytest.Image {
	return w.signedImagesAs(tb, prefix, n, harness.Legacy)
}

// signedImagesAs is signedImages in the given format. The request counts
// use bundles: signet stops reading the referrers once a .sig passes, so
// with a legacy signature how many referrer requests are sent before the
// stop depends on timing; with a bundle only, every request is needed.
func (w *world) signedImagesAs(tb testing.TB, prefix string, n int, f harness.Format) []registrytest.Image {
	tb.Helper()
	out := make([]registrytest.Image, n)
	for i := range out {
		out[i] = w.reg.PushRandomImage(tb, fmt.Sprintf("%s-%d", prefix, i), "v1")
	}
	w.sign(tb, out, f)
	return out
}

// sign signs images with the world's key in format f, in one run of
// cosign (cosign sign takes several images; its start-up and the key's
// decryption are most of its time).
func (w *world) sign(tb testing.TB, images []registrytest.Image, f harness.Format) {
	tb.Helper()
	if len(images) == 0 {
		return
	}
	var more []string
	for _, im := range images[1:] {
		more = append(more, im.Ref)
	}
	w.cosign.Sign(tb, images[0].Ref, w.key, f, more...)
}

func allowed(_ int, r *admissionv1.AdmissionResponse) error {
	if !r.Allowed {
		return fmt.Errorf("denied: %s", r.Result.Message)
	}
	return nil
}

// sweepPoint is one load level of the warm admission sweep.
type sweepPoint struct {
	Concurrency int     `json:"concurrency"`
	Throughput  float64 `json:"throughput"`
	P50         float64 `json:"p50ms"`
	P99         float64 `json:"p99ms"`
}

// sweep is the latency of signet and of the floor against load.
type sweep struct {
	Signet []sweepPoint `json:"signet"`
	Floor  []sweepPoint `json:"floor"`
}

// warmAdmission drives signet's /validate and the floor with the same load
// generator, a 3-container pod whose images are signed and already
// verified (cached), at increasing concurrency. The figures are those at
// concurrency 8; the sweep is plotted.
func (w *world) warmAdmission(tb testing.TB, full bool) ([]Entry, sweep) {
	imgs := w.signedImages(tb, "warm", 3)
	s := startSignet(tb, w.policyDir(tb, 1, w.reg.Host+"/**"))
	floor := startFloor(tb)
	body := podReview("warm", "default", imgs[0].Ref, imgs[1].Ref, imgs[2].Ref)
	if r := drive(s, 1, 1, time.Minute, func(int) []byte { return body }, allowed); r.errors > 0 {
		tb.Fatalf("warming up: %v\n%s", r.firstErr, s.logs.String())
	}
	levels, per := []int{1, 2, 4, 8, 16, 32}, 3*time.Second
	if !full {
		levels, per = []int{8}, 500*time.Millisecond
	}
	var sw sweep
	var headSignet, headFloor load
	point := func(l load) sweepPoint {
		return sweepPoint{l.concurrency, l.throughput(), ms(l.quantile(0.5)), ms(l.quantile(0.99))}
	}
	for _, c := range levels {
		// Both see the same machine: floor, signet, floor again; the
		// floor's better run is kept.
		f1 := drive(floor, c, 0, per/2, func(int) []byte { return body }, allowed)
		sl := drive(s, c, 0, per, func(int) []byte { return body }, allowed)
		f2 := drive(floor, c, 0, per/2, func(int) []byte { return body }, allowed)
		fl := f1
		if f2.throughput() > f1.throughput() {
			fl = f2
		}
		for _, l := range []load{fl, sl} {
			if l.errors > 0 || l.n == 0 {
				tb.Fatalf("concurrency %d: %d of %d requests failed: %v", c, l.errors, l.n, l.firstErr)
			}
		}
		sw.Signet, sw.Floor = append(sw.Signet, point(sl)), append(sw.Floor, point(fl))
		tb.Logf("concurrency %d: signet %.0f/s p50 %.2f ms p99 %.2f ms; floor %.0f/s p50 %.2f ms p99 %.2f ms", c,
			sl.throughput(), ms(sl.quantile(0.5)), ms(sl.quantile(0.99)), fl.throughput(), ms(fl.quantile(0.5)), ms(fl.quantile(0.99)))
		if c == 8 {
			headSignet, headFloor = sl, fl
		}
	}
	const floorName = "HTTPS server that only decodes the AdmissionReview and allows it, same load generator"
	th := newEntry("warm admission throughput, 3-container pod, 8 concurrent", "req/s", headSignet.throughput(), headFloor.throughput(), floorName, 0.7)
	th.HigherIsBetter, th.Meets = true, th.Ratio >= 0.7
	return []Entry{
		th,
		newEntry("warm admission p50 latency, 3-container pod, 8 concurrent", "ms", ms(headSignet.quantile(0.5)), ms(headFloor.quantile(0.5)), floorName, 2),
		newEntry("warm admission p99 latency, 3-container pod, 8 concurrent", "ms", ms(headSignet.quantile(0.99)), ms(headFloor.quantile(0.99)), floorName, 2),
	}, sw
}

// admissionPolicyScaling: warm admission latency of a 3-container pod with
// 10,000 policies loaded against with 1, one request at a time.
func (w *world) admissionPolicyScaling(tb testing.TB, full bool) Entry {
	imgs := w.signedImages(tb, "scale", 3)
	body := podReview("scale", "default", imgs[0].Ref, imgs[1].Ref, imgs[2].Ref)
	one := startSignet(tb, w.policyDir(tb, 1, w.reg.Host+"/**"))
	many := startSignet(tb, w.policyDir(tb, 10000, w.reg.Host+"/**"))
	rounds, per := 5, 300
	if !full {
		rounds, per = 1, 50
	}
	var a, b []time.Duration
	for _, s := range []*server{one, many} {
		if r := drive(s, 1, 5, time.Minute, func(int) []byte { return body }, allowed); r.errors > 0 {
			tb.Fatalf("warming up: %v", r.firstErr)
		}
	}
	for range rounds {
		l1 := drive(one, 1, per, time.Minute, func(int) []byte { return body }, allowed)
		l2 := drive(many, 1, per, time.Minute, func(int) []byte { return body }, allowed)
		if l1.errors+l2.errors > 0 {
			tb.Fatalf("admissions failed: %v %v", l1.firstErr, l2.firstErr)
		}
		a, b = append(a, l1.latencies...), append(b, l2.latencies...)
	}
	return newEntry("warm admission p50 latency with 10,000 policies", "ms", median(b), median(a), "with 1 policy", 1.5)
}

// coldPodWidth: a pod with 20 distinct uncached images against a pod with
// one (signet decides an object's images in parallel, 16 at a time), with
// the registry on loopback and, through a proxy that holds each request
// for delay, as if it were that far away.
func (w *world) coldPodWidth(tb testing.TB, full bool, delay time.Duration) Entry {
	host := w.reg.Host
	if delay > 0 {
		host = startProxy(tb, w.reg.Host, delay).Host
	}
	// Signed through the host they are admitted from, as images are: the
	// signed payload names the repository.
	imgs := make([]registrytest.Image, 20)
	for i := range imgs {
		imgs[i] = w.reg.PushRandomImage(tb, fmt.Sprintf("cold%d-%d", delay.Milliseconds(), i), "v1")
		w.cosign.Sign(tb, host+strings.TrimPrefix(imgs[i].Ref, w.reg.Host), w.key, harness.Legacy)
	}
	// Results live for a nanosecond: every admission verifies afresh.
	s := startSignet(tb, w.policyDir(tb, 1, host+"/**"), "--cache-ttl", "1ns", "--cache-negative-ttl", "1ns")
	refs := make([]string, len(imgs))
	for i, im := range imgs {
		refs[i] = host + strings.TrimPrefix(im.Ref, w.reg.Host)
	}
	wide, narrow := podReview("wide", "default", refs...), podReview("narrow", "default", refs[0])
	rounds := 15
	if !full {
		rounds = 2
	}
	var a, b []time.Duration
	for range rounds {
		l1 := drive(s, 1, 1, time.Minute, func(int) []byte { return narrow }, allowed)
		l20 := drive(s, 1, 1, time.Minute, func(int) []byte { return wide }, allowed)
		if l1.errors+l20.errors > 0 {
			tb.Fatalf("admissions failed: %v %v", l1.firstErr, l20.firstErr)
		}
		a, b = append(a, l1.latencies...), append(b, l20.latencies...)
	}
	name, base := "cold pod with 20 distinct images, registry on loopback", "cold pod with 1 image"
	if delay > 0 {
		name = fmt.Sprintf("cold pod with 20 distinct images, registry %s away", delay)
	}
	return newEntry(name, "ms", median(b), median(a), base, 3)
}

// countingProxy forwards to a registry and counts the requests.
type countingProxy struct {
	Host string
	n    atomic.Int64

	mu    sync.Mutex
	paths map[string]int // requests by method and path
}

// byPath returns the requests counted so far by method and path.
func (p *countingProxy) byPath() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.paths)
}

func startCountingProxy(tb testing.TB, registryHost string) *countingProxy {
	tb.Helper()
	return startProxy(tb, registryHost, 0)
}

// startProxy is a counting proxy that holds each request for delay before
// forwarding it.
func startProxy(tb testing.TB, registryHost string, delay time.Duration) *countingProxy {
	tb.Helper()
	target, err := url.Parse("http://" + registryHost)
	if err != nil {
		tb.Fatal(err)
	}
	p := &countingProxy{paths: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		p.n.Add(1)
		p.mu.Lock()
		p.paths[r.Method+" "+r.URL.Path]++
		p.mu.Unlock()
		if delay > 0 {
			time.Sleep(delay)
		}
		rp.ServeHTTP(rw, r)
	}))
	tb.Cleanup(srv.Close)
	p.Host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// concurrentAdmissions: registry requests of 100 concurrent admissions of
// one uncached tag, against those of a single admission of another
// (both through a fresh signet serve, so each includes the registry ping).
func (w *world) concurrentAdmissions(tb testing.TB) Entry {
	imgs := w.signedImagesAs(tb, "burst", 2, harness.Bundle)
	proxy := startCountingProxy(tb, w.reg.Host)
	tag := func(im registrytest.Image) string {
		return proxy.Host + strings.TrimPrefix(im.Tag, w.reg.Host)
	}
	dir := w.policyDir(tb, 1, proxy.Host+"/**")
	count := func(concurrency int, image string) int64 {
		s := startSignet(tb, dir)
		body := podReview("burst", "default", image)
		before := proxy.n.Load()
		if l := drive(s, concurrency, concurrency, time.Minute, func(int) []byte { return body }, allowed); l.errors > 0 {
			tb.Fatalf("%d admissions of %s: %d failed: %v", concurrency, image, l.errors, l.firstErr)
		}
		return proxy.n.Load() - before
	}
	single := count(1, tag(imgs[0]))
	burst := count(100, tag(imgs[1]))
	e := newEntry("registry requests, 100 concurrent admissions of one uncached tag", "requests", float64(burst), float64(single), "one verification", 1)
	e.Meets = burst == single
	return e
}
