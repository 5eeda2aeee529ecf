package server

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-dev/signet/internal/check"
	"github.com/signet-dev/signet/internal/policy"
)

// maxPolicyLabels bounds the distinct values of the policy label of
// signet_admission_policy_results_total. Policy IDs come from objects
// that tenants may create (ImagePolicy), so the first maxPolicyLabels
// policies seen keep their own series and later ones are counted as
// otherPolicy. (A policy ID is "KIND NAME" or "KIND NAMESPACE/NAME": it
// never spells "other".)
const (
	maxPolicyLabels = 200
	otherPolicy     = "other"
)

// The results of one matching policy, in the order of policyResults'
// counters.
const (
	resultPass = iota
	resultFail
	resultWarn
	resultError
	numResults
)

var resultNames = [numResults]string{"pass", "fail", "warn", "error"}

// policyResults is signet_admission_policy_results_total{policy,result}:
// one increment per image and matching policy of each decided admission
// request. Its counters are looked up once per policy label and kept, so
// counting takes one lock per request and allocates only for a policy
// seen for the first time.
type policyResults struct {
	vec      *prometheus.CounterVec
	mu       sync.Mutex
	counters map[string]*[numResults]prometheus.Counter
}

func newPolicyResults() *policyResults {
	return &policyResults{
		vec: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signet_admission_policy_results_total",
			Help: "Results of matching policies in admission decisions, one per image and policy: result pass, fail, " +
				"warn (a failure of a warn-mode policy) or error (could not decide, whatever onError made of it). The policy label is the policy's ID " +
				"(\"ClusterImagePolicy NAME\", \"ImagePolicy NAMESPACE/NAME\") for the first 200 policies seen since start, \"other\" for later ones.",
		}, []string{"policy", "result"}),
		counters: map[string]*[numResults]prometheus.Counter{},
	}
}

// observe counts the policy results of one request's decisions.
func (p *policyResults) observe(decisions []check.Decision) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range decisions {
		for _, pd := range decisions[i].Policies {
			p.countersOf(pd.Policy)[policyResult(pd)].Inc()
		}
	}
}

// countersOf returns the counters of the policy label of id, making them
// the first time; p.mu is held.
func (p *policyResults) countersOf(id string) *[numResults]prometheus.Counter {
	if c, ok := p.counters[id]; ok {
		return c
	}
	if len(p.counters) >= maxPolicyLabels {
		id = otherPolicy
		if c, ok := p.counters[id]; ok {
			return c
		}
	}
	c := new([numResults]prometheus.Counter)
	for r, name := range resultNames {
		c[r] = p.vec.WithLabelValues(id, name)
	}
	p.counters[id] = c
	return c
}

// policyResult is the result of one matching policy: its Effect, as the
// verdict (policy.Snapshot.Combine) gave it.
func policyResult(pd check.PolicyDecision) int {
	switch pd.Effect {
	case policy.EffectPass:
		return resultPass
	case policy.EffectWarn:
		return resultWarn
	case policy.EffectError:
		return resultError
	default:
		return resultFail
	}
}
