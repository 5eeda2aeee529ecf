package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/signet-dev/signet/test/harness"
)

// The deadlines of the scenario: signet decides within DecisionTimeout
// (--decision-timeout), below the API server's WebhookTimeout (the
// webhook's timeoutSeconds), as a deployment must set them.
const (
	DecisionTimeout = 3 * time.Second
	WebhookTimeout  = 5 * time.Second
)

// Workers is how many admissions are in flight at once during a fault.
const Workers = 8

// unresolvable is a registry host no resolver answers (RFC 6761).
const unresolvable = "registry.invalid"

// Verdict is what an admission answer said.
type Verdict string

const (
	Allowed   Verdict = "allowed"
	Refused   Verdict = "refused"   // denied, 403: a policy is not met
	Undecided Verdict = "undecided" // denied, 503: signet could not decide
	NoAnswer  Verdict = "no answer" // no answer within WebhookTimeout, or not an AdmissionReview
)

// subject is one image admitted during the load, and the policy that
// governs it.
type subject struct {
	onError string // "deny" or "allow": the policy's onError
	signed  string // "legacy", "bundle" or "" (unsigned)
	repo    string // path of its repository, e.g. deny/legacy
}

func (s subject) String() string { return s.repo }

// want is what an answer about s may be under fault f: what the policy
// says of the image when signet can decide, what its onError says when it
// cannot, either where the fault leaves some answers intact.
func (s subject) want(f Fault) []Verdict {
	decided := Refused
	if s.signed != "" {
		decided = Allowed
	}
	undecided := Undecided
	if s.onError == "allow" {
		undecided = Allowed
	}
	switch {
	case f == None:
		return []Verdict{decided}
	case f.Partial():
		return []Verdict{decided, undecided}
	}
	return []Verdict{undecided}
}

var subjects = []subject{
	{"deny", "legacy", "deny/legacy"}, {"deny", "bundle", "deny/bundle"}, {"deny", "", "deny/unsigned"},
	{"allow", "legacy", "allow/legacy"}, {"allow", "bundle", "allow/bundle"}, {"allow", "", "allow/unsigned"},
}

// World is the distribution registry with signed and unsigned images,
// behind a Proxy, and `signet serve` deciding them with two policies: one
// whose onError is deny, one whose onError is allow. Its cache keeps
// nothing (1 ns), so every admission asks the registry.
type World struct {
	Proxy *Proxy
	Serve *Serve
	// Baseline is the child's resources before any fault, after a load
	// without one.
	Baseline Resources
}

// NewWorld starts the registry, pushes and signs the images (the real
// cosign, legacy and bundle formats), starts the proxy and signet serve,
// runs a load without fault and measures the baseline.
func NewWorld(tb testing.TB) *World {
	tb.Helper()
	reg := harness.StartRegistry(tb)
	cosign := harness.NewCosign(tb)
	key := cosign.GenerateKeyPair(tb)
	for _, s := range subjects {
		img := reg.PushRandomImage(tb, s.repo, "v1")
		switch s.signed {
		case "legacy":
			cosign.Sign(tb, img.Ref, key, harness.Legacy)
		case "bundle":
			cosign.Sign(tb, img.Ref, key, harness.Bundle)
		}
	}
	proxy := StartProxy(tb, reg.Host)
	pub, err := os.ReadFile(key.Public)
	if err != nil {
		tb.Fatal(err)
	}
	var docs []string
	for _, onError := range []string{"deny", "allow"} {
		docs = append(docs, fmt.Sprintf(`---
apiVersion: signet.dev/v1alpha1
kind: ClusterImagePolicy
metadata:
  name: on-error-%[1]s
spec:
  images:
  - glob: "%[2]s/%[1]s/**"
  - glob: "%[3]s/%[1]s/**"
  onError: %[1]s
  authorities:
  - name: ci
    insecureIgnoreTlog: true
    key:
      data: |
%[4]s`, onError, proxy.Host, unresolvable, indent(string(pub), "        ")))
	}
	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policies.yaml"), []byte(strings.Join(docs, "")), 0o600); err != nil {
		tb.Fatal(err)
	}
	serve := StartServe(tb, "--policies", dir, "--allow-http-registry", "--log-level", "error",
		"--decision-timeout", DecisionTimeout.String(), "--cache-ttl", "1ns", "--cache-negative-ttl", "1ns")
	w := &World{Proxy: proxy, Serve: serve}
	warm := w.Run(tb, None, 2*time.Second)
	if len(warm.Wrong) > 0 || warm.BeforeDeadline != warm.Attempted {
		tb.Fatalf("without a fault: %s\n%s", warm, serve.Logs())
	}
	w.Baseline = w.settled(tb, Resources{})
	return w
}

func indent(s, prefix string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
	return b.String()
}

// Result is what one fault did to the admissions sent during it.
type Result struct {
	Fault Fault
	// Attempted admissions; those answered before WebhookTimeout; those
	// whose verdict is one the policy and its onError allow (want).
	Attempted, BeforeDeadline, AsOnError int
	// Verdicts counts the answers by "onError/verdict".
	Verdicts map[string]int
	// Wrong describes the first answers that were not what want says.
	Wrong []string
	// Slowest is the longest wait for an answer.
	Slowest time.Duration
	// StalledLeft is how many faulted requests the proxy still held when
	// the load had ended and DecisionTimeout passed (signet gave up on none
	// of them when > 0); ActiveLeft the connections still in a request.
	StalledLeft int64
	ActiveLeft  int
	// Conns is how many connections signet held open to the registry
	// (idle, kept alive) when the fault ended.
	Conns int
	// MaxOversized is the most bytes of one oversized answer written
	// before signet stopped reading.
	MaxOversized int64
	// Recovered is how many of the admissions sent right after the fault
	// (one per image, the fault off) were decided as without a fault;
	// Unrecovered says how the others were answered.
	Recovered   int
	Unrecovered []string
	// Before is the World's baseline; After the resources once settled.
	Before, After Resources
	// Settle is how long the resources took to come back within bounds
	// (or the time given up after).
	Settle time.Duration
}

func (r Result) String() string {
	keys := make([]string, 0, len(r.Verdicts))
	for k := range r.Verdicts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var v []string
	for _, k := range keys {
		v = append(v, fmt.Sprintf("%s %d", k, r.Verdicts[k]))
	}
	return fmt.Sprintf("%s: %d/%d answered before %s, %d as onError says (%s); slowest %s; %d conns kept; %d/%d decided as before right after; %s → %s (settled in %s)",
		r.Fault, r.BeforeDeadline, r.Attempted, WebhookTimeout, r.AsOnError, strings.Join(v, ", "), r.Slowest.Round(time.Millisecond),
		r.Conns, r.Recovered, len(subjects), r.Before, r.After, r.Settle.Round(time.Millisecond))
}

// Bounds on what the child may hold once a fault is over, against the
// baseline measured after a load without faults (both after a garbage
// collection, with every idle connection to and from the child closed).
// Goroutines: the serving and registry connections are closed, so only
// noise remains (the /metrics request itself, a timer); a stalled fetch
// leaked per admission would leave at least one goroutine for each of the
// dozens of admissions of a fault. Heap: 2 MiB, half of one manifest
// bound: an oversized answer kept, or the buffers of a few dozen leaked
// connections, exceed it.
const (
	GoroutineSlack = 3
	HeapSlack      = 2 << 20
)

// Within reports whether r is within the bounds of base.
func (r Resources) Within(base Resources) bool {
	return r.Goroutines <= base.Goroutines+GoroutineSlack && r.HeapInuse <= base.HeapInuse+HeapSlack
}

// Run sends admissions from Workers clients during d with fault f on (the
// last ones end after d), then waits for signet to drop every faulted
// request, turns the fault off and waits (at most 20 s) for the child's
// goroutines and heap to come back within bounds of the baseline.
func (w *World) Run(tb testing.TB, f Fault, d time.Duration) Result {
	tb.Helper()
	host := w.Proxy.Host
	if f == DNS {
		host = unresolvable
	} else {
		w.Proxy.Set(f)
	}
	res := Result{Fault: f, Verdicts: map[string]int{}, Before: w.Baseline}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for range Workers {
		wg.Go(func() {
			for time.Since(start) < d {
				n := next.Add(1)
				s := subjects[int(n)%len(subjects)]
				image := host + "/" + s.repo + ":v1"
				t0 := time.Now()
				v, why := w.admit(n, image)
				took := time.Since(t0)
				mu.Lock()
				res.Attempted++
				if v != NoAnswer && took < WebhookTimeout {
					res.BeforeDeadline++
				}
				res.Slowest = max(res.Slowest, took)
				res.Verdicts[s.onError+"/"+string(v)]++
				if slices.Contains(s.want(f), v) {
					res.AsOnError++
				} else if len(res.Wrong) < 5 {
					res.Wrong = append(res.Wrong, fmt.Sprintf("%s (onError %s): %s after %s, want %v: %s", image, s.onError, v, took.Round(time.Millisecond), s.want(f), why))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Every request signet made ends by its deadline: none is left at the
	// proxy once DecisionTimeout (and some scheduling) has passed.
	// (A connection is active from the first byte of a request to the end
	// of its answer, a little longer than its handler runs: both are
	// polled.)
	deadline := time.Now().Add(DecisionTimeout + 2*time.Second)
	for {
		res.StalledLeft = w.Proxy.InFlight()
		res.Conns, res.ActiveLeft = w.Proxy.Conns()
		if res.StalledLeft == 0 && res.ActiveLeft == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.MaxOversized = w.Proxy.MaxOversized()
	w.Proxy.Set(None)
	// Nothing of the fault is remembered (no undecided result cached, no
	// broken connection or registry answer kept): the first admissions
	// after it are decided as without it.
	for i, s := range subjects {
		image := w.Proxy.Host + "/" + s.repo + ":v1"
		if v, why := w.admit(int64(-1-i), image); slices.Contains(s.want(None), v) {
			res.Recovered++
		} else {
			res.Unrecovered = append(res.Unrecovered, fmt.Sprintf("%s: %s: %s", image, v, why))
		}
	}
	t0 := time.Now()
	res.After = w.settled(tb, w.Baseline)
	res.Settle = time.Since(t0)
	return res
}

// settled closes the idle connections to and from the child and measures
// its resources until they are within bounds of base (20 s at most); a
// zero base takes the first measurement.
func (w *World) settled(tb testing.TB, base Resources) Resources {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		w.Proxy.CloseIdle()
		w.Serve.CloseIdle()
		r := w.Serve.Resources(tb)
		if base == (Resources{}) || r.Within(base) || time.Now().After(deadline) {
			return r
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// admit sends an AdmissionReview of a Pod running image and classifies
// the answer; why is its message.
func (w *World) admit(n int64, image string) (Verdict, string) {
	ctx, cancel := context.WithTimeout(context.Background(), WebhookTimeout)
	defer cancel()
	resp, err := w.Serve.Post(ctx, podReview(n, image))
	switch {
	case err != nil:
		return NoAnswer, err.Error()
	case resp.Allowed:
		return Allowed, strings.Join(resp.Warnings, "; ")
	case resp.Result == nil:
		return NoAnswer, "a denial without a status"
	case resp.Result.Code == http.StatusForbidden:
		return Refused, resp.Result.Message
	case resp.Result.Code == http.StatusServiceUnavailable:
		return Undecided, resp.Result.Message
	}
	return NoAnswer, fmt.Sprintf("%d %s", resp.Result.Code, resp.Result.Message)
}

// podReview is an AdmissionReview of the CREATE of a Pod running image.
func podReview(n int64, image string) []byte {
	name := fmt.Sprintf("fault-%d", n)
	pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}, ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}}
	raw, err := json.Marshal(pod)
	if err != nil {
		panic(err) // static types
	}
	review, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &admissionv1.AdmissionRequest{
		UID: types.UID(name), Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Name: name, Namespace: "default", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
	}})
	if err != nil {
		panic(err)
	}
	return review
}
