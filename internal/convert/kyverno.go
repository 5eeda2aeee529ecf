package convert

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
)

// Kyverno ClusterPolicy and Policy (kyverno.io/v1) verifyImages rules.
// Semantics followed (its code): imageReferences are wildcards ("*" any
// run of characters, "/" included; "?" one character) matched against
// "<registry>/<path>:<tag>", or "<registry>/<path>@<digest>" when there is
// a digest, with docker.io for Docker Hub and no library/ added;
// attestor sets are AND'd, within a set count entries must pass (all when
// count is not given), and each PEM block of publicKeys is an entry of its
// own; keyless subject and issuer are wildcards; without a rekor block the
// transparency log is required; validationFailureAction defaults to Audit;
// Pod rules also apply to the pod controllers (autogen); a rule's exclude
// of namespaces takes them out of its namespace selector (kyverno_match.go).
// Attestations: see kyverno_attestation.go. ImageValidatingPolicy:
// kyverno_ivp.go.
var kyvernoFormat = Format{
	Name:        "kyverno",
	Description: "Kyverno ClusterPolicy and Policy verifyImages rules (kyverno.io/v1), ImageValidatingPolicy and NamespacedImageValidatingPolicy (policies.kyverno.io)",
	yaml:        true,
	convert:     convertKyverno,
}

// ivVersions are the API versions of ImageValidatingPolicy, which share
// one schema.
var ivVersions = map[string]bool{"policies.kyverno.io/v1": true, "policies.kyverno.io/v1beta1": true, "policies.kyverno.io/v1alpha1": true}

var kyvernoDialect = dialect{dockerHost: "docker.io", hubAmbiguous: true, suffix: suffixTagOrDigest, subject: "<registry>/<path>:<tag>, or <registry>/<path>@<digest> when a digest is given"}

type kyPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		ValidationFailureAction          string          `json:"validationFailureAction"`
		ValidationFailureActionOverrides json.RawMessage `json:"validationFailureActionOverrides"`
		Background                       *bool           `json:"background"`
		Admission                        *bool           `json:"admission"`
		FailurePolicy                    string          `json:"failurePolicy"`
		WebhookTimeoutSeconds            *int            `json:"webhookTimeoutSeconds"`
		WebhookConfiguration             json.RawMessage `json:"webhookConfiguration"`
		Rules                            []kyRule        `json:"rules"`
	} `json:"spec"`
	Status json.RawMessage `json:"status"`
}

type kyRule struct {
	Name          string          `json:"name"`
	Match         kyMatch         `json:"match"`
	Exclude       *kyExclude      `json:"exclude"`
	Preconditions json.RawMessage `json:"preconditions"`
	Context       json.RawMessage `json:"context"`
	VerifyImages  []kyVerify      `json:"verifyImages"`
	Validate      json.RawMessage `json:"validate"`
	Mutate        json.RawMessage `json:"mutate"`
	Generate      json.RawMessage `json:"generate"`
}

type kyVerify struct {
	Type                     string           `json:"type"`
	ImageReferences          []string         `json:"imageReferences"`
	SkipImageReferences      []string         `json:"skipImageReferences"`
	Attestors                []kyAttestorSet  `json:"attestors"`
	Attestations             []kyAttestation  `json:"attestations"`
	Repository               string           `json:"repository"`
	MutateDigest             *bool            `json:"mutateDigest"`
	VerifyDigest             *bool            `json:"verifyDigest"`
	Required                 *bool            `json:"required"`
	UseCache                 *bool            `json:"useCache"`
	FailureAction            string           `json:"failureAction"`
	ImageRegistryCredentials *json.RawMessage `json:"imageRegistryCredentials"`
	CosignOCI11              bool             `json:"cosignOCI11"`
	Validate                 json.RawMessage  `json:"validate"`
}

type kyAttestorSet struct {
	Count   *int         `json:"count"`
	Entries []kyAttestor `json:"entries"`
}

type kyAttestor struct {
	Keys         *kyKeys         `json:"keys"`
	Keyless      *kyKeyless      `json:"keyless"`
	Certificates *kyCertificates `json:"certificates"`
	Attestor     json.RawMessage `json:"attestor"`
	Repository   string          `json:"repository"`
	Annotations  json.RawMessage `json:"annotations"`
}

// kyCertificates is a certificates attestor: for Cosign a signing
// certificate and its chain, for Notary the CA trust store.
type kyCertificates struct {
	Cert      string   `json:"cert"`
	CertChain string   `json:"certChain"`
	Rekor     *kyRekor `json:"rekor"`
	CTLog     *kyCTLog `json:"ctlog"`
}

type kyKeys struct {
	PublicKeys string `json:"publicKeys"`
	Secret     *struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"secret"`
	KMS                string   `json:"kms"`
	SignatureAlgorithm string   `json:"signatureAlgorithm"`
	Rekor              *kyRekor `json:"rekor"`
	CTLog              *kyCTLog `json:"ctlog"`
}

type kyKeyless struct {
	Subject              string          `json:"subject"`
	Issuer               string          `json:"issuer"`
	SubjectRegExp        string          `json:"subjectRegExp"`
	IssuerRegExp         string          `json:"issuerRegExp"`
	Roots                string          `json:"roots"`
	AdditionalExtensions json.RawMessage `json:"additionalExtensions"`
	Rekor                *kyRekor        `json:"rekor"`
	CTLog                *kyCTLog        `json:"ctlog"`
}

type kyRekor struct {
	URL        string `json:"url"`
	PubKey     string `json:"pubkey"`
	IgnoreTlog bool   `json:"ignoreTlog"`
}

type kyCTLog struct {
	IgnoreSCT    bool   `json:"ignoreSCT"`
	PubKey       string `json:"pubkey"`
	TSACertChain string `json:"tsaCertChain"`
}

// kySecretKey is the Secret entry Kyverno reads a public key from (cosign's
// k8s:// key reference).
const kySecretKey = "cosign.pub"

func convertKyverno(c *conv, docs []manifests.Document) {
	for _, doc := range docs {
		c.source = doc.Source
		switch {
		case doc.APIVersion == "kyverno.io/v1" && (doc.Kind == "ClusterPolicy" || doc.Kind == "Policy"):
			var p kyPolicy
			if c.decode(doc.JSON, &p) {
				c.kyPolicy(doc.Kind, &p)
			}
		case ivVersions[doc.APIVersion] && (doc.Kind == "ImageValidatingPolicy" || doc.Kind == "NamespacedImageValidatingPolicy"):
			var p ivPolicy
			if c.decode(doc.JSON, &p) {
				c.ivPolicy(doc.Kind, &p)
			}
		case doc.Kind == "Secret":
		default:
			c.invalid("kind", "%s %s is not a Kyverno ClusterPolicy, Policy or (Namespaced)ImageValidatingPolicy", doc.APIVersion, doc.Kind)
		}
	}
	c.clusterNote("Kyverno admits images no rule selects: to keep that, run signet serve --unmatched=allow (signet's default is deny)")
	c.clusterNote("Kyverno's chart leaves its own and system namespaces alone (resourceFilters): give signet serve --exclude-namespace for each namespace that must stay unenforced")
}

func (c *conv) kyPolicy(kind string, p *kyPolicy) {
	if present(p.Spec.ValidationFailureActionOverrides) {
		c.refuse("spec.validationFailureActionOverrides", "ignored: the policy-wide action applies in every namespace", "per-namespace actions need one signet policy per namespace; write ImagePolicies instead")
	}
	if p.Spec.FailurePolicy != "" || present(p.Spec.WebhookConfiguration) || p.Spec.WebhookTimeoutSeconds != nil {
		c.note("spec.webhookConfiguration", "the webhook's failure policy and timeout are signet's own (onError decides what an undecidable image gets: deny by default)")
	}
	if p.Spec.Admission != nil && !*p.Spec.Admission {
		c.invalid("spec.admission", "false: the policy is not applied in admission, so there is no admission policy to convert")
		return
	}
	policyAction := p.Spec.ValidationFailureAction
	if policyAction == "" {
		policyAction = "Audit" // the CRD's default
	}
	for i, r := range p.Spec.Rules {
		path := fmt.Sprintf("spec.rules[%d]", i)
		if len(r.VerifyImages) == 0 {
			c.note(path, "rule %q has no verifyImages: not an image verification rule, not converted", r.Name)
			continue
		}
		if present(r.Validate) || present(r.Mutate) || present(r.Generate) {
			c.note(path, "rule %q: only its verifyImages are converted", r.Name)
		}
		if present(r.Preconditions) || present(r.Context) {
			if !c.refuse(path+".preconditions", "ignored: the rule always applies", "preconditions and context are not expressible") {
				continue
			}
		}
		match, ok := c.kyMatch(path+".match", p.Annotations, r.Match)
		if !ok {
			continue
		}
		if r.Exclude != nil {
			if match, ok = c.kyExclude(path+".exclude", match, r.Exclude); !ok {
				continue
			}
		}
		// Any Enforce entry makes the whole rule Enforce.
		ruleAction := ""
		for _, v := range r.VerifyImages {
			if strings.EqualFold(v.FailureAction, "Enforce") {
				ruleAction = "Enforce"
			}
		}
		for j, v := range r.VerifyImages {
			action := ruleAction
			if action == "" {
				action = v.FailureAction
			}
			if action == "" {
				action = policyAction
			}
			c.kyVerify(kind, p, fmt.Sprintf("%s.verifyImages[%d]", path, j), r.Name, j, v, action, match)
		}
	}
}

func (c *conv) kyVerify(kind string, p *kyPolicy, path, rule string, j int, v kyVerify, action string, match *v1alpha1.MatchResources) {
	notary := false
	switch v.Type {
	case "", "Cosign":
	case "Notary":
		notary = true
	case "SigstoreBundle":
		c.note(path+".type", "signet reads Sigstore bundles and legacy signatures alike")
	default:
		c.refuse(path+".type", "entry skipped", "%q signatures are not supported by signet", v.Type)
		return
	}
	spec := v1alpha1.ImagePolicySpec{Match: match}
	switch strings.ToLower(action) {
	case "enforce":
	case "audit":
		spec.Mode = string(policy.ModeWarn)
	default:
		c.invalid(path+".failureAction", "%q is not Enforce or Audit", action)
		return
	}
	if len(v.ImageReferences) == 0 {
		c.invalid(path+".imageReferences", "required")
		return
	}
	for k, ref := range v.ImageReferences {
		rpath := fmt.Sprintf("%s.imageReferences[%d]", path, k)
		if strings.Contains(ref, "?") {
			c.refuse(rpath, "skipped", "%q: \"?\" (one character) has no signet equivalent", ref)
			continue
		}
		if strings.Contains(ref, "{{") {
			c.invalid(rpath, "variables are not allowed in imageReferences")
			continue
		}
		c.addGlobs(&spec, rpath, ref, starTokens(ref), kyvernoDialect)
	}
	for k, ref := range v.SkipImageReferences {
		rpath := fmt.Sprintf("%s.skipImageReferences[%d]", path, k)
		fallback := "ignored: the images it skips are verified too"
		if strings.Contains(ref, "?") {
			c.refuse(rpath, fallback, "%q: \"?\" (one character) has no signet equivalent", ref)
			continue
		}
		if strings.Contains(ref, "{{") {
			c.invalid(rpath, "variables are not allowed in skipImageReferences")
			continue
		}
		globs, dead, reason := translate(starTokens(ref), kyvernoDialect)
		switch {
		case reason != "":
			c.refuse(rpath, fallback, "%q cannot be excluded exactly: %s", ref, reason)
			continue
		case dead:
			c.note(rpath, "%q skips no image (Kyverno compares %s); dropped, which changes nothing", ref, kyvernoDialect.subject)
			continue
		}
		for _, g := range globs {
			dup := false
			for _, m := range spec.ExcludeImages {
				dup = dup || m.Glob == g
			}
			if !dup {
				spec.ExcludeImages = append(spec.ExcludeImages, v1alpha1.ImageMatcher{Glob: g})
			}
		}
	}
	if len(spec.ExcludeImages) > maxExcludes {
		c.refuse(path+".skipImageReferences", "ignored: the images it skips are verified too", "more than %d patterns", maxExcludes)
		spec.ExcludeImages = nil
	}
	if len(spec.Images) == 0 {
		return
	}
	mutate, verifyDigest := v.MutateDigest == nil || *v.MutateDigest, v.VerifyDigest == nil || *v.VerifyDigest
	switch {
	case mutate:
	case verifyDigest:
		spec.Digest = string(policy.DigestRequire)
	default:
		spec.Digest = string(policy.DigestNone)
	}
	if v.Required != nil && !*v.Required {
		c.note(path+".required", "false: signet verifies every selected image at admission (required only skips Kyverno's annotation check)")
	}
	if v.ImageRegistryCredentials != nil {
		c.note(path+".imageRegistryCredentials", "signet takes registry credentials from the workload's imagePullSecrets, its service account's, then its own Docker config")
	}
	if present(v.Validate) {
		c.refuse(path+".validate", "ignored", "validate.deny over attestations is not expressible")
	}
	if len(v.Attestors) == 0 && len(v.Attestations) == 0 {
		c.invalid(path+".attestors", "required (or attestations)")
		return
	}
	if notary && !c.kyNotaryRule(path, v) {
		return
	}
	attestations, ok := c.kyAttestations(path, v.Attestations, v.Repository)
	if !ok {
		return
	}
	base := fmt.Sprintf("%s-%s", p.Name, rule)
	from := fmt.Sprintf("Kyverno %s %s rule %s verifyImages[%d]", kind, p.Name, rule, j)
	add := func(name string, ps v1alpha1.ImagePolicySpec) {
		if kind == "Policy" {
			ns := p.Namespace
			if ns == "" {
				ns = "default"
			}
			c.addNamespaced(name, ns, from, ps)
		} else {
			c.addCluster(name, from, ps)
		}
	}
	// Each attestation and attestor set is a policy of its own: signet
	// ANDs every policy that matches an image, as Kyverno ANDs them.
	for a, att := range attestations {
		ps := spec
		ps.Authorities = att.authorities
		if !c.kyThreshold(&ps, att.path, att.count) {
			return
		}
		add(c.objectName(base, fmt.Sprintf("%d", j), "attestation", fmt.Sprintf("%d", a)), ps)
	}
	for s, set := range v.Attestors {
		spath := fmt.Sprintf("%s.attestors[%d]", path, s)
		ps := spec
		ps.Authorities = nil
		for e, entry := range set.Entries {
			epath, ename := fmt.Sprintf("%s.entries[%d]", spath, e), fmt.Sprintf("set-%d-entry-%d", s, e)
			var auths []v1alpha1.Authority
			var ok bool
			if notary {
				auths, ok = c.kyNotaryAttestor(epath, ename, entry)
			} else {
				auths, ok = c.kyAttestor(epath, ename, entry, v.Repository)
			}
			if !ok {
				return
			}
			ps.Authorities = append(ps.Authorities, auths...)
		}
		if len(ps.Authorities) == 0 {
			c.invalid(spath+".entries", "required")
			return
		}
		if !c.kyThreshold(&ps, spath, set.Count) {
			return
		}
		add(c.objectName(base, fmt.Sprintf("%d", j), fmt.Sprintf("%d", s)), ps)
	}
}

// kyThreshold sets how many of the policy's authorities (an attestor set's
// entries) must pass: count, or all of them when count is not given.
func (c *conv) kyThreshold(ps *v1alpha1.ImagePolicySpec, path string, setCount *int) bool {
	count := len(ps.Authorities)
	if count > 64 {
		c.invalid(path+".entries", "%d entries: signet allows at most 64 authorities in a policy", count)
		return false
	}
	if setCount != nil {
		if *setCount < 1 || *setCount > count {
			c.invalid(path+".count", "%d, with %d entries", *setCount, count)
			return false
		}
		count = *setCount
	}
	if n := int32(count); n > 1 {
		ps.Threshold = &n
		c.note(path, "%d entries must pass; signet counts distinct signers (two entries satisfied by one key count once)", n)
	}
	return true
}
