package convert

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
)

// Kyverno ImageValidatingPolicy and NamespacedImageValidatingPolicy
// (policies.kyverno.io v1, v1beta1 and v1alpha1: the three versions have
// the same schema). Semantics followed (its code and documentation):
//
//   - Images are taken from the containers, initContainers and
//     ephemeralContainers of Pods and of the pod templates of Deployments,
//     ReplicaSets, StatefulSets, DaemonSets, Jobs and CronJobs, as the pod
//     spells them; matchImageReferences selects among them with gobwas
//     globs ("*" any run of characters, "/" included) or CEL over ref, and
//     an image no entry selects is not verified (kyverno_ivp_glob.go).
//   - validations are CEL; the shapes converted are those of Kyverno's
//     documentation and samples (kyverno_ivp_cel.go). verifyImageSignatures
//     and verifyAttestationSignatures count the attestors that verified.
//   - validationActions defaults to [Deny]; without Deny nothing is denied
//     (Warn warns, Audit only reports).
//   - validationConfigurations: mutateDigest (default true) pins tags to
//     digests, verifyDigest (default true) denies images without a digest,
//     required (default true) denies selected images no policy verified.
//   - A policy matching only pods (one resource rule, core v1) also applies
//     to the pod controllers (autogen), or to those autogen names.
//   - A NamespacedImageValidatingPolicy applies in its namespace only.
type ivPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ivSpec          `json:"spec"`
	Status            json.RawMessage `json:"status"`
}

type ivSpec struct {
	MatchConstraints         *ivMatch            `json:"matchConstraints"`
	MatchConditions          json.RawMessage     `json:"matchConditions"`
	Variables                json.RawMessage     `json:"variables"`
	Validations              []ivValidation      `json:"validations"`
	AuditAnnotations         json.RawMessage     `json:"auditAnnotations"`
	ValidationActions        []string            `json:"validationActions"`
	FailurePolicy            string              `json:"failurePolicy"`
	WebhookConfiguration     json.RawMessage     `json:"webhookConfiguration"`
	Evaluation               *ivEvaluation       `json:"evaluation"`
	Autogen                  *ivAutogen          `json:"autogen"`
	MatchImageReferences     []ivImageRef        `json:"matchImageReferences"`
	Attestors                []ivAttestor        `json:"attestors"`
	Attestations             []ivAttestation     `json:"attestations"`
	Images                   json.RawMessage     `json:"images"`
	Credentials              *ivCredentials      `json:"credentials"`
	ValidationConfigurations *ivValidationConfig `json:"validationConfigurations"`
}

type ivMatch struct {
	NamespaceSelector    *metav1.LabelSelector `json:"namespaceSelector"`
	ObjectSelector       *metav1.LabelSelector `json:"objectSelector"`
	ResourceRules        []ivRule              `json:"resourceRules"`
	ExcludeResourceRules json.RawMessage       `json:"excludeResourceRules"`
	MatchPolicy          string                `json:"matchPolicy"`
}

type ivRule struct {
	APIGroups     []string `json:"apiGroups"`
	APIVersions   []string `json:"apiVersions"`
	Resources     []string `json:"resources"`
	Operations    []string `json:"operations"`
	ResourceNames []string `json:"resourceNames"`
	Scope         string   `json:"scope"`
}

type ivEvaluation struct {
	Mode       string `json:"mode"`
	Admission  *ivOn  `json:"admission"`
	Background *ivOn  `json:"background"`
}

type ivOn struct {
	Enabled *bool `json:"enabled"`
}

type ivAutogen struct {
	PodControllers *struct {
		Controllers []string `json:"controllers"`
	} `json:"podControllers"`
}

type ivImageRef struct {
	Glob       string `json:"glob"`
	Expression string `json:"expression"`
}

type ivValidation struct {
	Expression        string `json:"expression"`
	Message           string `json:"message"`
	MessageExpression string `json:"messageExpression"`
	Reason            string `json:"reason"`
}

type ivCredentials struct {
	AllowInsecureRegistry bool     `json:"allowInsecureRegistry"`
	Providers             []string `json:"providers"`
	Secrets               []string `json:"secrets"`
}

type ivValidationConfig struct {
	MutateDigest *bool `json:"mutateDigest"`
	VerifyDigest *bool `json:"verifyDigest"`
	Required     *bool `json:"required"`
}

type ivAttestation struct {
	Name     string  `json:"name"`
	InToto   *ivType `json:"intoto"`
	Referrer *ivType `json:"referrer"`
}

type ivType struct {
	Type string `json:"type"`
}

// ivAutogenKinds are the pod controllers Kyverno generates a pods-only
// policy for, by the names spec.autogen.podControllers.controllers uses
// (pkg/cel/autogen/data.go).
var ivAutogenKinds = map[string]string{"daemonsets": "DaemonSet", "deployments": "Deployment", "replicasets": "ReplicaSet",
	"statefulsets": "StatefulSet", "jobs": "Job", "cronjobs": "CronJob"}

// ivResourceKinds are the resources Kyverno extracts images from
// (pkg/cel/compiler/images.go), as signet kinds.
var ivResourceKinds = map[string]string{"pods": "Pod", "daemonsets": "DaemonSet", "deployments": "Deployment",
	"replicasets": "ReplicaSet", "statefulsets": "StatefulSet", "jobs": "Job", "cronjobs": "CronJob"}

func (c *conv) ivPolicy(kind string, p *ivPolicy) {
	s := &p.Spec
	namespaced := kind == "NamespacedImageValidatingPolicy"
	for _, f := range []struct {
		field, why string
		raw        json.RawMessage
	}{
		{"spec.matchConditions", "CEL conditions over the admitted object are not expressible (signet decides by image, kind and namespace)", s.MatchConditions},
		{"spec.variables", "CEL variables (ConfigMaps, resource lookups) are not expressible", s.Variables},
		{"spec.images", "custom image extractors are not expressible: signet finds images in every image field of the kinds it knows", s.Images},
	} {
		if present(f.raw) && !c.refuse(f.field, "ignored", "%s", f.why) {
			return
		}
	}
	if present(s.AuditAnnotations) {
		c.note("spec.auditAnnotations", "not converted: signet records its decisions in its own Events and PolicyReports")
	}
	if ev := s.Evaluation; ev != nil {
		if ev.Mode != "" && ev.Mode != "Kubernetes" {
			c.invalid("spec.evaluation.mode", "%q: only Kubernetes admission policies are image policies signet can enforce", ev.Mode)
			return
		}
		if ev.Admission != nil && ev.Admission.Enabled != nil && !*ev.Admission.Enabled {
			c.invalid("spec.evaluation.admission.enabled", "false: the policy is not applied in admission, so there is no admission policy to convert")
			return
		}
		if ev.Background != nil && ev.Background.Enabled != nil && !*ev.Background.Enabled {
			c.note("spec.evaluation.background.enabled", "false: signet's audit (signet serve, leader) re-checks running workloads against every policy and reports; it cannot be turned off per policy")
		}
	}
	if present(s.WebhookConfiguration) {
		c.note("spec.webhookConfiguration", "the webhook's timeout is signet's own (what an undecidable image gets is the policy's onError)")
	}
	if cr := s.Credentials; cr != nil {
		if cr.AllowInsecureRegistry {
			c.note("spec.credentials.allowInsecureRegistry", "signet reaches plain-HTTP registries only where signet serve is told to (--allow-http-registry)")
		}
		if len(cr.Providers) > 0 || len(cr.Secrets) > 0 {
			c.note("spec.credentials", "signet takes registry credentials from the workload's imagePullSecrets, its service account's, then its own Docker config")
		}
	}

	spec := v1alpha1.ImagePolicySpec{}
	if !c.ivActions(&spec, s) {
		return
	}
	match, ok := c.ivMatch(s, namespaced)
	if !ok {
		return
	}
	spec.Match = match
	mutate, verifyDigest, required := true, true, true
	if vc := s.ValidationConfigurations; vc != nil {
		mutate = vc.MutateDigest == nil || *vc.MutateDigest
		verifyDigest = vc.VerifyDigest == nil || *vc.VerifyDigest
		required = vc.Required == nil || *vc.Required
	}
	if !required {
		c.note("spec.validationConfigurations.required", "false: Kyverno skips only its final check that no selected image went unverified; the validations still decide, and signet verifies every image its policies select")
	}
	switch {
	case mutate:
	case verifyDigest:
		spec.Digest = string(policy.DigestRequire)
	default:
		spec.Digest = string(policy.DigestNone)
	}
	if !c.ivImages(&spec, s.MatchImageReferences, mutate) {
		return
	}
	if len(spec.Images) == 0 {
		return
	}
	checks, ok := c.ivValidations(s)
	if !ok {
		return
	}
	policies, ok := c.ivAuthorities(s, checks)
	if !ok {
		return
	}
	c.ivCoverage(checks, required)

	from := fmt.Sprintf("Kyverno %s %s", kind, p.Name)
	for i, ps := range policies {
		full := spec
		full.Authorities = ps.authorities
		if ps.threshold > 1 {
			n := ps.threshold
			full.Threshold = &n
			c.note(ps.path, "%d attestors must pass; signet counts distinct signers (two attestors satisfied by one key count once)", n)
		}
		name := c.objectName(p.Name, fmt.Sprintf("%d", i))
		if namespaced {
			ns := p.Namespace
			if ns == "" {
				ns = "default"
			}
			c.addNamespaced(name, ns, from+" "+ps.path, full)
		} else {
			c.addCluster(name, from+" "+ps.path, full)
		}
	}
}

// ivActions sets the mode and onError from validationActions and
// failurePolicy.
func (c *conv) ivActions(spec *v1alpha1.ImagePolicySpec, s *ivSpec) bool {
	actions := s.ValidationActions
	if len(actions) == 0 {
		actions = []string{"Deny"} // Kyverno's default
	}
	for i, a := range actions {
		switch a {
		case "Deny", "Warn", "Audit":
		default:
			c.invalid(fmt.Sprintf("spec.validationActions[%d]", i), "%q is not Deny, Warn or Audit", a)
			return false
		}
	}
	deny := slices.Contains(actions, "Deny")
	if !deny {
		spec.Mode = string(policy.ModeWarn)
		// Failures are enforced by the actions only: without Deny an
		// error admits too.
		spec.OnError = string(policy.ActionWarn)
		if !slices.Contains(actions, "Warn") {
			c.note("spec.validationActions", "[Audit]: Kyverno admits and only records the failure in its reports; signet's warn mode admits with a warning to the client, and signet's audit reports failures in PolicyReports whatever the mode")
		}
	}
	switch s.FailurePolicy {
	case "", "Fail":
	case "Ignore":
		if deny {
			spec.OnError = string(policy.ActionAllow)
			c.note("spec.failurePolicy", "Ignore: an image signet cannot decide (registry unreachable, limits) is admitted (onError: allow); a condition that fails to evaluate on a verified statement still denies, where Kyverno would admit")
		}
	default:
		c.invalid("spec.failurePolicy", "%q is not Fail or Ignore", s.FailurePolicy)
		return false
	}
	return true
}

// ivMatch converts matchConstraints: resources to kinds (with autogen),
// the namespace selector as it is.
func (c *conv) ivMatch(s *ivSpec, namespaced bool) (*v1alpha1.MatchResources, bool) {
	m := s.MatchConstraints
	if m == nil || len(m.ResourceRules) == 0 {
		c.invalid("spec.matchConstraints.resourceRules", "required: Kyverno registers its webhook for the resources they name")
		return nil, false
	}
	if m.ObjectSelector != nil && (len(m.ObjectSelector.MatchLabels) > 0 || len(m.ObjectSelector.MatchExpressions) > 0) {
		if !c.refuse("spec.matchConstraints.objectSelector", "ignored: the policy applies whatever the object's labels", "signet never selects by the admitted object's own labels: whoever creates the object sets them, so they would let a tenant opt out of verification") {
			return nil, false
		}
	}
	if present(m.ExcludeResourceRules) {
		if !c.refuse("spec.matchConstraints.excludeResourceRules", "ignored: the policy applies to what they exclude too", "excluding resources is not expressible (list the resources to check in resourceRules)") {
			return nil, false
		}
	}
	kinds := map[string]bool{}
	all := false
	for i, r := range m.ResourceRules {
		path := fmt.Sprintf("spec.matchConstraints.resourceRules[%d]", i)
		if len(r.ResourceNames) > 0 {
			if !c.refuse(path+".resourceNames", "ignored: every object of the kinds is checked", "selecting objects by name is not expressible") {
				return nil, false
			}
		}
		ops := map[string]bool{}
		for _, o := range r.Operations {
			ops[o] = true
		}
		if !ops["*"] && !ops["CREATE"] {
			c.refuse(path+".operations", "rule skipped", "%v without CREATE: signet checks every object it governs when it is created", r.Operations)
			return nil, false
		}
		if !ops["*"] && !ops["UPDATE"] {
			c.note(path+".operations", "%v: signet checks updates too (an update can change an image)", r.Operations)
		}
		for _, res := range r.Resources {
			switch {
			case res == "*" || res == "*/*":
				all = true
			case res == "pods/ephemeralcontainers":
				kinds["Pod"] = true
			case ivResourceKinds[res] != "":
				kinds[ivResourceKinds[res]] = true
			default:
				c.note(path+".resources", "%q: Kyverno takes no images from it (without spec.images), so it adds nothing to check; dropped", res)
			}
		}
	}
	out := &v1alpha1.MatchResources{}
	if m.NamespaceSelector != nil && (len(m.NamespaceSelector.MatchLabels) > 0 || len(m.NamespaceSelector.MatchExpressions) > 0) {
		out.NamespaceSelector = m.NamespaceSelector.DeepCopy()
		if namespaced {
			c.note("spec.matchConstraints.namespaceSelector", "kept: the ImagePolicy applies in its own namespace only, and only when that namespace matches")
		}
	}
	if ivCanAutogen(m) {
		controllers := slices.Sorted(maps.Keys(ivAutogenKinds))
		if s.Autogen != nil && s.Autogen.PodControllers != nil && s.Autogen.PodControllers.Controllers != nil {
			controllers = s.Autogen.PodControllers.Controllers
		}
		for _, ctl := range controllers {
			if k := ivAutogenKinds[ctl]; k != "" {
				kinds[k] = true
			}
		}
	}
	if all {
		// Every resource, of which Kyverno takes images from these.
		for _, k := range ivResourceKinds {
			kinds[k] = true
		}
	}
	if len(kinds) == 0 {
		c.note("spec.matchConstraints.resourceRules", "no resource Kyverno takes images from: the policy checks nothing")
		return nil, false
	}
	for _, k := range kyAutogen {
		if kinds[k] {
			out.Kinds = append(out.Kinds, k)
		}
	}
	return out, true
}

// ivCanAutogen is Kyverno's test (pkg/cel/autogen/support.go): one rule,
// for pods of the core v1 API, without names, object selector or
// exclusions.
func ivCanAutogen(m *ivMatch) bool {
	if m.ObjectSelector != nil && (len(m.ObjectSelector.MatchLabels) > 0 || len(m.ObjectSelector.MatchExpressions) > 0) {
		return false
	}
	if present(m.ExcludeResourceRules) || len(m.ResourceRules) != 1 {
		return false
	}
	r := m.ResourceRules[0]
	return len(r.ResourceNames) == 0 && slices.Equal(r.APIGroups, []string{""}) && slices.Equal(r.APIVersions, []string{"v1"}) && slices.Equal(r.Resources, []string{"pods"})
}

// ivImages converts matchImageReferences into the policy's images.
func (c *conv) ivImages(spec *v1alpha1.ImagePolicySpec, refs []ivImageRef, mutate bool) bool {
	if len(refs) == 0 {
		c.note("spec.matchImageReferences", "not given: Kyverno verifies every image")
		spec.Images = []v1alpha1.ImageMatcher{{Glob: "**"}}
		return true
	}
	hub, anyTag := false, false
	for i, r := range refs {
		path := fmt.Sprintf("spec.matchImageReferences[%d]", i)
		var patterns []string
		switch {
		case r.Glob != "" && r.Expression != "":
			c.invalid(path, "give glob or expression, not both")
			return false
		case r.Glob != "":
			path += ".glob"
			patterns = []string{r.Glob}
		case r.Expression != "":
			path += ".expression"
			var why string
			if patterns, why = ivRefExpression(r.Expression); why != "" {
				if !c.refuse(path, "skipped", "%q: %s", r.Expression, why) {
					return false
				}
				continue
			}
		default:
			c.invalid(path, "give glob or expression")
			return false
		}
		for _, pat := range patterns {
			globs, dead, dockerHub, why := ivGlob(pat)
			switch {
			case why != "":
				if !c.refuse(path, "skipped", "%q: %s", pat, why) {
					return false
				}
				continue
			case dead:
				c.note(path, "%q selects no image; dropped, which changes nothing", pat)
				continue
			}
			hub = hub || dockerHub
			anyTag = anyTag || strings.HasSuffix(pat, ":*")
			for _, g := range globs {
				if !slices.ContainsFunc(spec.Images, func(m v1alpha1.ImageMatcher) bool { return m.Glob == g }) {
					spec.Images = append(spec.Images, v1alpha1.ImageMatcher{Glob: g})
				}
			}
		}
	}
	if anyTag {
		c.note("spec.matchImageReferences", "\"<repository>:*\" selects references with a tag: Kyverno skips one given by digest alone (repo@sha256:...); signet verifies every reference of the repository")
	}
	if hub {
		how := "spelled without docker.io/ and with a digest (kyverno/kyverno@sha256:...)"
		if !mutate {
			how = "spelled without docker.io/ (kyverno/kyverno:v1)"
		}
		c.note("spec.matchImageReferences", "Kyverno compares the reference as the pod spells it and so skips Docker Hub images %s; signet verifies every spelling of the repository", how)
	}
	return true
}
