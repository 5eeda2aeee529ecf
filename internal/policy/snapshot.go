package policy

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/signet-dev/signet/internal/reference"
)

// OptInLabel is the default namespace label that opts a namespace in when
// Config.NamespaceOptIn is set (value "true").
const OptInLabel = "signet.dev/include"

// Config holds the cluster-wide settings.
type Config struct {
	// Unmatched is what happens to an image no ClusterImagePolicy selects,
	// and so to every image when none exists: ActionDeny (the default,
	// also for ""), ActionWarn (admit with "<image> did not match any image
	// policies; admitted because signet runs with --unmatched=warn") or
	// ActionAllow.
	Unmatched Action
	// ExcludedNamespaces are never enforced (signet's own, kube-system, ...).
	ExcludedNamespaces []string
	// NamespaceOptIn enforces only namespaces labelled
	// NamespaceOptInLabel=true; otherwise every namespace not excluded is
	// enforced.
	NamespaceOptIn bool
	// NamespaceOptInLabel is the label key that opts a namespace in, a
	// Kubernetes label key: OptInLabel (signet.dev/include) when empty;
	// policy.sigstore.dev/include keeps policy-controller's namespaces.
	NamespaceOptInLabel string
	// TrustVersion identifies the trust material the policies were compiled
	// with; cached verification results are keyed by it.
	TrustVersion string
}

// Validate checks the settings.
func (c Config) Validate() error {
	if _, err := ParseAction(string(c.Unmatched)); err != nil {
		return fmt.Errorf("unmatched images: %w", err)
	}
	if c.NamespaceOptInLabel != "" {
		if err := ValidateLabelKey(c.NamespaceOptInLabel); err != nil {
			return fmt.Errorf("namespace opt-in label %q: %w", c.NamespaceOptInLabel, err)
		}
	}
	return nil
}

// ValidateLabelKey checks that key is a Kubernetes label key: a name of at
// most 63 characters, optionally prefixed by a DNS subdomain and "/".
func ValidateLabelKey(key string) error {
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// Snapshot is an immutable set of compiled policies with their index. Build a
// new one on every change; readers never lock.
type Snapshot struct {
	config   Config
	policies []*Policy
	index    *index
	excluded map[string]bool
	hosts    map[string]bool
	// clusterPolicies counts the ClusterImagePolicies, valid or not.
	clusterPolicies int
}

// NewSnapshot indexes compiled policies.
func NewSnapshot(policies []*Policy, cfg Config) (*Snapshot, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Unmatched == "" {
		cfg.Unmatched = ActionDeny
	}
	if cfg.NamespaceOptInLabel == "" {
		cfg.NamespaceOptInLabel = OptInLabel
	}
	s := &Snapshot{config: cfg, policies: policies, index: newIndex(), excluded: map[string]bool{}}
	for _, ns := range cfg.ExcludedNamespaces {
		s.excluded[ns] = true
	}
	for i, p := range policies {
		if p.Object.Kind != KindImagePolicy {
			s.clusterPolicies++
		}
		for _, pat := range p.patterns {
			s.index.add(pat, i)
		}
	}
	s.hosts = literalHosts(policies, s.index)
	return s, nil
}

// Policies returns every policy, valid or not.
func (s *Snapshot) Policies() []*Policy { return s.policies }

// ClusterPolicies returns the number of ClusterImagePolicies, valid or
// not. With none, every image is unmatched and follows Config.Unmatched:
// denied under the default, admitted with "no ClusterImagePolicy exists, so
// image policy enforcement was not applied" under ActionWarn.
func (s *Snapshot) ClusterPolicies() int { return s.clusterPolicies }

// Config returns the cluster-wide settings.
func (s *Snapshot) Config() Config { return s.config }

// Target is where an image is being admitted.
type Target struct {
	Namespace       string
	NamespaceLabels map[string]string
	// Kind is the admitted object's kind (Pod, Deployment, Provider, ...).
	Kind string
}

// Exempt reports whether images in the target's namespace are not enforced,
// and why.
func (s *Snapshot) Exempt(t Target) (bool, string) {
	if t.Namespace == "" {
		return false, ""
	}
	if s.excluded[t.Namespace] {
		return true, fmt.Sprintf("namespace %s is excluded from image policy enforcement", t.Namespace)
	}
	if label := s.config.NamespaceOptInLabel; s.config.NamespaceOptIn && t.NamespaceLabels[label] != "true" {
		return true, fmt.Sprintf("namespace %s has not opted in (label %s=true)", t.Namespace, label)
	}
	return false, ""
}

// Match returns the policies that govern ref in the target: cluster
// policies and the ImagePolicies of the target's namespace, whose images,
// namespace selector and kinds all select it. The result is sorted by
// policy ID. A pattern with a tag selects ref by the tag it names (latest
// without tag and digest), and every reference by digest alone: deploying
// by digest meets the requirements of every tag of the repository.
func (s *Snapshot) Match(ref reference.Reference, t Target) []*Policy {
	out, _ := s.match(ref, t)
	return out
}

// match is Match, also returning the number of patterns it matched: only
// those of policies that apply to the target (an ImagePolicy of another
// namespace costs nothing), and none of a policy already selected.
func (s *Snapshot) match(ref reference.Reference, t Target) ([]*Policy, int) {
	host := ref.Registry()
	segs := strings.Split(ref.Repository(), "/")
	seen := map[int]bool{}
	var out []*Policy
	want := func(i int) bool {
		if seen[i] {
			return false
		}
		p := s.policies[i]
		if p.Object.Kind == KindImagePolicy && p.Object.Namespace != t.Namespace {
			return false
		}
		if p.selector != nil && !p.selector.matches(t.NamespaceLabels) {
			return false
		}
		return p.kinds == nil || t.Kind == "" || p.kinds[t.Kind]
	}
	tried := s.index.lookupFor(host, segs, tagOf(ref.Tag(), ref.Digest()), want, func(i int) {
		seen[i] = true
		p := s.policies[i]
		// A policy that cannot be compiled governs all it selects: its
		// exclusions may be what is broken.
		if p.Err == nil && p.excluded(host, segs) {
			return
		}
		out = append(out, p)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Object.ID() < out[j].Object.ID() })
	return out, tried
}
