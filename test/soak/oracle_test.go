package soak

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// outcome is what an admission answer said, as a set: a bit per outcome.
type outcome uint8

const (
	allowed   outcome = 1 << iota // admitted
	refused                       // denied by signet, 403: a policy is not met
	undecided                     // denied by signet, 503: it could not decide
	failed                        // anything else: no answer, a webhook call failure, another error
)

var outcomeNames = []struct {
	o    outcome
	name string
}{{allowed, "allowed"}, {refused, "refused"}, {undecided, "undecided"}, {failed, "failed"}}

func (o outcome) String() string {
	var names []string
	for _, n := range outcomeNames {
		if o&n.o != 0 {
			names = append(names, n.name)
		}
	}
	if len(names) == 0 {
		return "nothing"
	}
	return strings.Join(names, "|")
}

// timeline is the history of one part of the world whose state the load
// changes (a policy, a TrustRoot, the registry's fault): the states it was
// written in, each from the moment its write was sent until the moment its
// successor's write returned.
type timeline struct {
	name string
	// lag is how long after a state's successor was written the state may
	// still decide an admission: the propagation bound for what signet
	// watches, the decision timeout plus the tag resolution window for a
	// registry fault.
	lag   time.Duration
	mu    sync.Mutex
	spans []span
}

type span struct {
	state    string
	from, to time.Time // to is zero while the state may still be current
}

func newTimeline(name, initial string, lag time.Duration) *timeline {
	return &timeline{name: name, lag: lag, spans: []span{{state: initial}}}
}

// change records that state s is being written, runs write, and ends the
// previous states when it returns without an error (with an error, the
// write may or may not have been applied: both stay possible until a later
// change succeeds).
func (tl *timeline) change(s string, write func() error) error {
	tl.mu.Lock()
	tl.spans = append(tl.spans, span{state: s, from: time.Now()})
	i := len(tl.spans) - 1
	tl.mu.Unlock()
	if err := write(); err != nil {
		return err
	}
	now := time.Now()
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for j := i - 1; j >= 0 && tl.spans[j].to.IsZero(); j-- {
		tl.spans[j].to = now
	}
	return nil
}

// current is the state written last.
func (tl *timeline) current() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.spans[len(tl.spans)-1].state
}

// during is every state that may have decided an admission sent at t0 and
// answered at t1: those written by t1 and not ended lag before t0. It is
// complete when called after t1: a state is recorded before its write is
// sent.
func (tl *timeline) during(t0, t1 time.Time) []string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var out []string
	for _, s := range tl.spans {
		if !s.from.After(t1) && (s.to.IsZero() || !s.to.Add(tl.lag).Before(t0)) && !slices.Contains(out, s.state) {
			out = append(out, s.state)
		}
	}
	return out
}

// changes is how many states were written after the first.
func (tl *timeline) changes() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.spans) - 1
}

// subject is one image admitted in one namespace, with what signet may
// answer about it in each state of the timeline that decides it.
type subject struct {
	name     string // e.g. "rot/k1", the same for every release image
	ns       string
	tag, ref string // the image by tag, by digest
	tl       *timeline
	want     func(state string) outcome // acceptable outcomes in a state
}

// acceptable is the set of outcomes acceptable for an admission of s sent
// at t0 and answered at t1, and the states that could have decided it.
func (s *subject) acceptable(t0, t1 time.Time) (outcome, []string) {
	if s.tl == nil {
		return s.want(""), nil
	}
	states := s.tl.during(t0, t1)
	var o outcome
	for _, st := range states {
		o |= s.want(st)
	}
	return o, states
}

// always is the want of a subject whose outcome never changes.
func always(o outcome) func(string) outcome { return func(string) outcome { return o } }

// tally counts what the admissions were answered, and keeps the first
// wrong ones.
type tally struct {
	mu        sync.Mutex
	total     int
	probes    int
	wrong     int
	first     []string
	bySubject map[string]map[outcome]int
}

func newTally() *tally { return &tally{bySubject: map[string]map[outcome]int{}} }

// record checks one answer against the oracle and counts it.
func (ta *tally) record(s *subject, kind, image string, probe bool, got outcome, msg string, t0, t1, start time.Time) {
	want, states := s.acceptable(t0, t1)
	ta.mu.Lock()
	defer ta.mu.Unlock()
	ta.total++
	if probe {
		ta.probes++
	}
	m := ta.bySubject[s.name]
	if m == nil {
		m = map[outcome]int{}
		ta.bySubject[s.name] = m
	}
	m[got]++
	if got&want != 0 {
		return
	}
	ta.wrong++
	if len(ta.first) < 20 {
		where := ""
		if s.tl != nil {
			where = fmt.Sprintf(" (%s could be %v)", s.tl.name, states)
		}
		ta.first = append(ta.first, fmt.Sprintf("%s %s/%s %s, sent at +%s, answered after %s: %s, want %s%s: %s",
			s.name, s.ns, kind, image, t0.Sub(start).Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond), got, want, where, msg))
	}
}

// outcomes counts the answers by outcome, over every subject.
func (ta *tally) outcomes() map[string]int {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	out := map[string]int{}
	for _, m := range ta.bySubject {
		for o, n := range m {
			out[o.String()] += n
		}
	}
	return out
}

// report is one line per subject: how its answers were distributed.
func (ta *tally) report() string {
	ta.mu.Lock()
	defer ta.mu.Unlock()
	names := make([]string, 0, len(ta.bySubject))
	for n := range ta.bySubject {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  %-28s", n)
		for _, o := range outcomeNames {
			if c := ta.bySubject[n][o.o]; c > 0 {
				fmt.Fprintf(&b, " %s %d", o.name, c)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}
