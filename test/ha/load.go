package ha

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// outcome is what one admission through the API server came to.
type outcome int

const (
	admitted outcome = iota // as expected: the signed image admitted
	denied                  // as expected: the unsigned image denied by signet
	wrong                   // a decision other than the policy's
	failed                  // the API server could not get signet's answer (failed calling webhook: refused, reset, TLS, timeout)
	apiDown                 // the API server itself did not answer (its outage; not an admission)
	other                   // anything else
)

var outcomeNames = [...]string{"admitted", "denied", "WRONG", "FAILED", "api-down", "other"}

func (o outcome) String() string { return outcomeNames[o] }

type result struct {
	at  time.Time
	out outcome
	err string
}

// load is the closed-loop client: workers create Pods and Deployments
// (server-side dry run: admitted in full, webhooks included, nothing
// stored) with the signed and the unsigned image, one after another, for
// as long as it runs, and record every outcome.
type load struct {
	c                client.Client
	namespace        string
	signed, unsigned string

	mu      sync.Mutex
	results []result
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

var signetDenial = regexp.MustCompile(`admission webhook "(validate|mutate)\.signet\.dev" denied the request`)

func startLoad(c client.Client, namespace, signed, unsigned string, workers int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{c: c, namespace: namespace, signed: signed, unsigned: unsigned, cancel: cancel}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				wantAdmit := (i+w)%2 == 0
				image := l.unsigned
				if wantAdmit {
					image = l.signed
				}
				obj := l.object(i%4 < 2, image)
				rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
				err := l.c.Create(rctx, obj, client.DryRunAll)
				rcancel()
				if ctx.Err() != nil {
					return
				}
				r := classify(err, wantAdmit)
				l.mu.Lock()
				l.results = append(l.results, r)
				l.mu.Unlock()
				if r.out == apiDown {
					time.Sleep(100 * time.Millisecond)
				}
			}
		}()
	}
	return l
}

func (l *load) object(pod bool, image string) client.Object {
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}
	meta := metav1.ObjectMeta{GenerateName: "load-", Namespace: l.namespace}
	if pod {
		return &corev1.Pod{ObjectMeta: meta, Spec: spec}
	}
	labels := map[string]string{"app": "load"}
	return &appsv1.Deployment{ObjectMeta: meta, Spec: appsv1.DeploymentSpec{
		Selector: &metav1.LabelSelector{MatchLabels: labels},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
	}}
}

func classify(err error, wantAdmit bool) result {
	r := result{at: time.Now()}
	switch {
	case err == nil && wantAdmit:
		r.out = admitted
	case err == nil:
		r.out, r.err = wrong, "the unsigned image was admitted"
	case signetDenial.MatchString(err.Error()) && !wantAdmit:
		r.out = denied
	case signetDenial.MatchString(err.Error()):
		r.out, r.err = wrong, err.Error()
	case strings.Contains(err.Error(), "failed calling webhook"):
		r.out, r.err = failed, err.Error()
	case isAPIDown(err):
		r.out, r.err = apiDown, err.Error()
	default:
		r.out, r.err = other, err.Error()
	}
	return r
}

// isAPIDown: the API server did not answer at all.
func isAPIDown(err error) bool {
	s := err.Error()
	for _, m := range []string{"connection refused", "connection reset", "EOF", "client rate limiter", "the server is currently unable", "etcdserver", "context deadline exceeded", "http2: client connection lost", "no such host"} {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

// stop ends the load and waits for the workers.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// tally counts the outcomes recorded in [from, to).
type tally struct {
	counts  [len(outcomeNames)]int
	samples []string // the first few errors other than apiDown
}

func (t tally) attempted() int {
	n := 0
	for o, c := range t.counts {
		if outcome(o) != apiDown {
			n += c
		}
	}
	return n
}

func (t tally) String() string {
	var parts []string
	for o, c := range t.counts {
		parts = append(parts, fmt.Sprintf("%s %d", outcome(o), c))
	}
	return strings.Join(parts, ", ")
}

func (l *load) between(from, to time.Time) tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	var t tally
	for _, r := range l.results {
		if r.at.Before(from) || !r.at.Before(to) {
			continue
		}
		t.counts[r.out]++
		if r.out != admitted && r.out != denied && r.out != apiDown && len(t.samples) < 10 {
			t.samples = append(t.samples, r.at.Format("15:04:05.000")+" "+r.out.String()+": "+r.err)
		}
	}
	return t
}

// longestGap is the longest time in [from, to) without a decided
// admission (admitted or denied), the stall a user would see.
func (l *load) longestGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	last, gap := from, time.Duration(0)
	for _, r := range l.results {
		if r.at.Before(from) || !r.at.Before(to) || (r.out != admitted && r.out != denied) {
			continue
		}
		gap = max(gap, r.at.Sub(last))
		last = r.at
	}
	return max(gap, to.Sub(last))
}

func (l *load) all() []result {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.results...)
}
