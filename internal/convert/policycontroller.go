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

// sigstore policy-controller: ClusterImagePolicy, policy.sigstore.dev
// v1alpha1 and v1beta1 (same schema). Semantics followed (its code):
// globs match "<registry>/<repository>@sha256:<hex>" with the registry of
// Docker Hub named index.docker.io ("*" within a segment, "**" anything;
// "*" alone is index.docker.io/library/*, "*/*" is index.docker.io/*/*);
// authorities are OR'd, matching policies AND'd; a key authority without
// ctlog does not check the transparency log; subjectRegExp/issuerRegExp
// match anywhere in the value (unanchored).
var policyControllerFormat = Format{
	Name:        "policy-controller",
	Description: "sigstore policy-controller ClusterImagePolicy (policy.sigstore.dev v1alpha1, v1beta1)",
	yaml:        true,
	convert:     convertPolicyController,
}

var pcDialect = dialect{dockerHost: "index.docker.io", suffix: suffixDigest, subject: "<repository>@sha256:<digest>, the tag dropped"}

type pcPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Images []struct {
			Glob string `json:"glob"`
		} `json:"images"`
		Authorities []pcAuthority   `json:"authorities"`
		Mode        string          `json:"mode"`
		Policy      json.RawMessage `json:"policy"`
		Match       []struct {
			Group    string          `json:"group"`
			Version  string          `json:"version"`
			Resource string          `json:"resource"`
			Selector json.RawMessage `json:"selector"`
		} `json:"match"`
	} `json:"spec"`
	Status json.RawMessage `json:"status"`
}

type pcAuthority struct {
	Name string `json:"name"`
	Key  *struct {
		Data      string `json:"data"`
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
		KMS           string `json:"kms"`
		HashAlgorithm string `json:"hashAlgorithm"`
	} `json:"key"`
	Keyless *struct {
		URL        string          `json:"url"`
		Identities []pcIdentity    `json:"identities"`
		CACert     json.RawMessage `json:"ca-cert"`
		TrustRoot  string          `json:"trustRootRef"`
		IgnoreSCT  bool            `json:"insecureIgnoreSCT"`
	} `json:"keyless"`
	Static *struct {
		Action  string `json:"action"`
		Message string `json:"message"`
	} `json:"static"`
	Sources []struct {
		OCI                  string `json:"oci"`
		SignaturePullSecrets []struct {
			Name string `json:"name"`
		} `json:"signaturePullSecrets"`
		TagPrefix *string `json:"tagPrefix"`
	} `json:"source"`
	CTLog *struct {
		URL       string `json:"url"`
		TrustRoot string `json:"trustRootRef"`
	} `json:"ctlog"`
	Attestations []struct {
		Name          string          `json:"name"`
		PredicateType string          `json:"predicateType"`
		Policy        json.RawMessage `json:"policy"`
	} `json:"attestations"`
	RFC3161Timestamp json.RawMessage `json:"rfc3161timestamp"`
	SignatureFormat  string          `json:"signatureFormat"`
}

type pcIdentity struct {
	Issuer        string `json:"issuer"`
	Subject       string `json:"subject"`
	IssuerRegExp  string `json:"issuerRegExp"`
	SubjectRegExp string `json:"subjectRegExp"`
}

const publicRekor = "https://rekor.sigstore.dev"

func convertPolicyController(c *conv, docs []manifests.Document) {
	for _, doc := range docs {
		c.source = doc.Source
		group, _, _ := strings.Cut(doc.APIVersion, "/")
		switch {
		case group == "policy.sigstore.dev" && doc.Kind == "ClusterImagePolicy":
			var p pcPolicy
			if c.decode(doc.JSON, &p) {
				c.pcPolicy(&p)
			}
		case group == "policy.sigstore.dev" && doc.Kind == "TrustRoot":
			c.pcTrustRoot(doc)
		case doc.Kind == "Secret":
		default:
			c.invalid("kind", "%s %s is not a policy-controller ClusterImagePolicy or TrustRoot", doc.APIVersion, doc.Kind)
		}
	}
	c.clusterNote("policy-controller enforces only namespaces labelled policy.sigstore.dev/include=true: to keep that, run signet serve (and node-agent) with --namespace-opt-in --namespace-opt-in-label policy.sigstore.dev/include (Helm values namespaceOptIn: true, namespaceOptInLabel: policy.sigstore.dev/include)")
	c.clusterNote("policy-controller's no-match-policy (default deny) is signet serve --unmatched (default deny; warn and allow as there)")
}

func (c *conv) pcPolicy(p *pcPolicy) {
	spec := v1alpha1.ImagePolicySpec{}
	from := fmt.Sprintf("policy-controller ClusterImagePolicy %s", p.Name)
	for i, im := range p.Spec.Images {
		path := fmt.Sprintf("spec.images[%d].glob", i)
		g := im.Glob
		switch g {
		case "*":
			g = "index.docker.io/library/*"
		case "*/*":
			g = "index.docker.io/*/*"
		}
		for _, r := range g {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_:/*.@", r)) {
				c.invalid(path, "%q: character %q is not allowed in a policy-controller glob", im.Glob, r)
				return
			}
		}
		c.addGlobs(&spec, path, im.Glob, pcTokens(g), pcDialect)
	}
	if len(spec.Images) == 0 {
		if len(p.Spec.Images) == 0 {
			c.invalid("spec.images", "required")
		}
		return // every glob is dead or refused: nothing to govern
	}
	switch p.Spec.Mode {
	case "", "enforce":
	case "warn":
		spec.Mode = string(policy.ModeWarn)
	default:
		c.invalid("spec.mode", "%q is not enforce or warn", p.Spec.Mode)
	}
	if present(p.Spec.Policy) {
		c.refuse("spec.policy", "ignored (the policy passes whenever an authority does)", "CUE and Rego policies over authority results are not expressible in signet")
	}
	if len(p.Spec.Match) > 0 {
		c.pcMatch(&spec, p)
	}
	if len(p.Spec.Authorities) == 0 {
		c.invalid("spec.authorities", "at least one authority is required")
	}
	for i, a := range p.Spec.Authorities {
		if sa, ok := c.pcAuthority(fmt.Sprintf("spec.authorities[%d]", i), i, a); ok {
			spec.Authorities = append(spec.Authorities, sa)
		}
	}
	if len(spec.Authorities) == 0 {
		return
	}
	c.addCluster(c.objectName(p.Name), from, spec)
}

// pcTokens reads a policy-controller glob: "**" crosses "/", "*" does not.
func pcTokens(g string) []tok {
	var toks []tok
	for i := 0; i < len(g); {
		switch {
		case strings.HasPrefix(g[i:], "**"):
			toks = append(toks, tok{kind: tAnyStar})
			i += 2
		case g[i] == '*':
			toks = append(toks, tok{kind: tStar})
			i++
		default:
			j := strings.IndexByte(g[i:], '*')
			if j < 0 {
				j = len(g) - i
			}
			toks = append(toks, tok{tLit, g[i : i+j]})
			i += j
		}
	}
	return toks
}

// addGlobs translates one source pattern into the spec's images.
func (c *conv) addGlobs(spec *v1alpha1.ImagePolicySpec, path, pattern string, toks []tok, d dialect) bool {
	globs, dead, reason := translate(toks, d)
	switch {
	case reason != "":
		if !c.refuse(path, "skipped", "%q: %s", pattern, reason) {
			return false
		}
		return false
	case dead:
		c.note(path, "%q selects no image in the source system (it compares %s); dropped, which changes nothing", pattern, d.subject)
		return false
	}
	for _, g := range globs {
		dup := false
		for _, m := range spec.Images {
			dup = dup || m.Glob == g
		}
		if !dup {
			spec.Images = append(spec.Images, v1alpha1.ImageMatcher{Glob: g})
		}
	}
	return true
}

var pcResourceKinds = map[string][]string{
	"pods":         {"Pod"},
	"replicasets":  {"ReplicaSet"},
	"deployments":  {"Deployment"},
	"statefulsets": {"StatefulSet"},
	"daemonsets":   {"DaemonSet"},
	"jobs":         {"Job"},
	"cronjobs":     {"CronJob"},
}

func (c *conv) pcMatch(spec *v1alpha1.ImagePolicySpec, p *pcPolicy) {
	var kinds []string
	for i, m := range p.Spec.Match {
		path := fmt.Sprintf("spec.match[%d]", i)
		if present(m.Selector) {
			c.refuse(path+".selector", "ignored (the policy applies whatever the object's labels)", "selecting objects by their own labels is not expressible (and a tenant sets them)")
		}
		k, ok := pcResourceKinds[m.Resource]
		if !ok {
			c.invalid(path+".resource", "%q is not a resource policy-controller checks", m.Resource)
			continue
		}
		kinds = append(kinds, k...)
	}
	if len(kinds) > 0 {
		spec.Match = &v1alpha1.MatchResources{Kinds: kinds}
	}
}

func (c *conv) pcAuthority(path string, i int, a pcAuthority) (v1alpha1.Authority, bool) {
	out := v1alpha1.Authority{Name: a.Name}
	if out.Name == "" {
		out.Name = fmt.Sprintf("authority-%d", i)
	}
	out.Name = truncate(out.Name, 63)
	n := 0
	for _, set := range []bool{a.Key != nil, a.Keyless != nil, a.Static != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.invalid(path, "give exactly one of key, keyless or static")
		return out, false
	}
	switch {
	case a.Key != nil:
		k := a.Key
		switch {
		case k.KMS != "":
			c.refuse(path+".key.kms", "authority dropped", "KMS keys are not supported by signet; give the public key as data")
			return out, false
		case k.Data != "":
			out.Key = &v1alpha1.KeyAuthority{Data: k.Data}
		case k.SecretRef != nil:
			out.Key = c.secretKey(path+".key.secretRef", k.SecretRef.Name, "", "")
			if out.Key == nil {
				return out, false
			}
		default:
			c.invalid(path+".key", "give one of data, secretRef or kms")
			return out, false
		}
		switch strings.ToLower(k.HashAlgorithm) {
		case "", "sha256":
		default:
			c.refuse(path+".key.hashAlgorithm", "authority dropped", "%q: signet verifies SHA-256 signatures", k.HashAlgorithm)
			return out, false
		}
		// Without ctlog, policy-controller does not look at the
		// transparency log for key signatures.
		if a.CTLog == nil {
			out.InsecureIgnoreTlog = true
		}
	case a.Keyless != nil:
		kl := a.Keyless
		if present(kl.CACert) {
			c.note(path+".keyless.ca-cert", "ignored: policy-controller's validator never reads it (roots come from trustRootRef or the public-good root), so dropping it changes nothing")
		}
		if kl.URL != "" && kl.URL != "https://fulcio.sigstore.dev" {
			c.note(path+".keyless.url", "%q is not used for verification by policy-controller (roots come from trustRootRef or the public-good root)", kl.URL)
		}
		if len(kl.Identities) == 0 {
			c.invalid(path+".keyless.identities", "at least one identity is required")
			return out, false
		}
		out.Keyless = &v1alpha1.KeylessAuthority{TrustRootRef: kl.TrustRoot}
		for j, id := range kl.Identities {
			sid, ok := c.unanchoredIdentity(fmt.Sprintf("%s.keyless.identities[%d]", path, j), id)
			if !ok {
				return out, false
			}
			out.Keyless.Identities = append(out.Keyless.Identities, sid)
		}
		out.InsecureIgnoreSCT = kl.IgnoreSCT
	case a.Static != nil:
		switch a.Static.Action {
		case "pass", "fail":
		default:
			c.invalid(path+".static.action", "%q is not pass or fail", a.Static.Action)
			return out, false
		}
		out.Static = &v1alpha1.StaticAuthority{Action: a.Static.Action, Message: a.Static.Message}
	}
	if a.CTLog != nil && a.Static == nil {
		switch {
		case a.CTLog.TrustRoot != "":
			switch {
			case a.Key != nil:
				// The TrustRoot's logs date the key signatures.
				out.Key.TrustRootRef = a.CTLog.TrustRoot
			case a.Keyless.TrustRoot == "" || a.Keyless.TrustRoot == a.CTLog.TrustRoot:
				out.Keyless.TrustRootRef = a.CTLog.TrustRoot
			default:
				if !c.refuse(path+".ctlog.trustRootRef", "the keyless trustRootRef's transparency logs are used", "signet takes a keyless authority's CA and transparency logs from one TrustRoot; %q and %q differ", a.Keyless.TrustRoot, a.CTLog.TrustRoot) {
					return out, false
				}
			}
		case a.CTLog.URL != "" && a.CTLog.URL != publicRekor:
			if !c.refuse(path+".ctlog.url", "the default trust root's transparency logs are used", "%q: a private Rekor needs a TrustRoot (keyless.trustRootRef)", a.CTLog.URL) {
				return out, false
			}
		}
	}
	if present(a.RFC3161Timestamp) {
		if !c.refuse(path+".rfc3161timestamp", "ignored: the transparency log is required as without it", "timestamp authorities come from the trust root in signet; there is no per-authority setting") {
			return out, false
		}
	}
	switch a.SignatureFormat {
	case "":
	case "bundle":
		c.note(path+".signatureFormat", "signet reads signatures in every format (Sigstore bundles, OCI referrers and legacy .sig/.att tags) through one verification path")
	default:
		c.note(path+".signatureFormat", "%q means the legacy format in policy-controller; signet reads every format", a.SignatureFormat)
	}
	if len(a.Sources) > 1 {
		c.invalid(path+".source", "policy-controller allows at most one source")
		return out, false
	}
	for _, s := range a.Sources {
		if s.TagPrefix != nil && *s.TagPrefix != "" {
			if !c.refuse(path+".source[0].tagPrefix", "ignored: signatures are looked up under the default tag names", "signet looks signatures up under cosign's default tag names") {
				return out, false
			}
		}
		src := &v1alpha1.Source{OCI: s.OCI}
		for _, ps := range s.SignaturePullSecrets {
			src.SignaturePullSecrets = append(src.SignaturePullSecrets, v1alpha1.LocalObjectReference{Name: ps.Name})
		}
		if len(src.SignaturePullSecrets) > 0 {
			c.note(path+".source[0].signaturePullSecrets", "signet reads these Secrets from its own namespace (policy-controller reads them from the workload's): copy them there")
		}
		if src.OCI != "" || len(src.SignaturePullSecrets) > 0 {
			out.Source = src
		}
	}
	for j, at := range a.Attestations {
		apath := fmt.Sprintf("%s.attestations[%d]", path, j)
		if present(at.Policy) {
			if !c.refuse(apath+".policy", "the attestation is required without its policy (any statement of the type signed by the authority passes)", "CUE and Rego attestation policies are not supported (signet's attestation conditions are CEL)") {
				return out, false
			}
		}
		if !strings.Contains(at.PredicateType, "/") {
			c.refuse(apath+".predicateType", "attestation dropped", "%q: give the full predicate type URI (signet compares it exactly)", at.PredicateType)
			continue
		}
		out.Attestations = append(out.Attestations, v1alpha1.Attestation{Name: at.Name, PredicateType: at.PredicateType})
	}
	return out, true
}

// unanchoredIdentity converts a cosign identity, whose regular expressions
// match anywhere in the value, into signet's, which match the whole value.
func (c *conv) unanchoredIdentity(path string, id pcIdentity) (v1alpha1.Identity, bool) {
	out := v1alpha1.Identity{Issuer: id.Issuer, Subject: id.Subject}
	if id.IssuerRegExp != "" {
		out.Issuer, out.IssuerRegExp = "", unanchored(id.IssuerRegExp)
	}
	if id.SubjectRegExp != "" {
		out.Subject, out.SubjectRegExp = "", unanchored(id.SubjectRegExp)
	}
	if out.Issuer == "" && out.IssuerRegExp == "" {
		c.invalid(path, "an identity needs issuer or issuerRegExp")
		return out, false
	}
	if out.Subject == "" && out.SubjectRegExp == "" {
		c.invalid(path, "an identity needs subject or subjectRegExp")
		return out, false
	}
	return out, true
}

// unanchored turns a regular expression matched anywhere into one matched
// against the whole value.
func unanchored(re string) string {
	if strings.HasPrefix(re, "^") && strings.HasSuffix(re, "$") && !strings.HasSuffix(re, `\$`) && !strings.Contains(re, "|") {
		return re[1 : len(re)-1]
	}
	return "(?s:.*)(?:" + re + ")(?s:.*)"
}

// secretKey resolves a key Secret from the input files into key data. A
// Secret not among the files becomes a secretRef naming the same entry
// (key); with key "" (the Secret's single entry, which signet cannot
// require) it is refused: the converter cannot see the cluster's Secrets.
func (c *conv) secretKey(path, name, namespace, key string) *v1alpha1.KeyAuthority {
	values, ok := c.secretValues(namespace, name)
	if !ok && key != "" {
		where := "namespace " + namespace
		if namespace == "" {
			where = "signet's namespace (the source read it from its own)"
		}
		c.note(path, "Secret %s is not among the files given: signet reads its entry %q from %s when it verifies; a missing Secret or entry denies", name, key, where)
		return &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: name, Namespace: namespace, Key: key}}
	}
	if !ok {
		fallback := "the key is read from Secret " + name + " in signet's namespace, every entry of it trusted"
		if !c.refuse(path, fallback, "Secret %s is not among the files given (add it to inline its public key)", name) {
			return nil
		}
		return &v1alpha1.KeyAuthority{SecretRef: &v1alpha1.SecretReference{Name: name}}
	}
	if key == "" {
		if len(values) != 1 {
			c.invalid(path, "Secret %s must hold exactly one entry (it has %d)", name, len(values))
			return nil
		}
		for _, v := range values {
			return &v1alpha1.KeyAuthority{Data: string(v)}
		}
	}
	v, ok := values[key]
	if !ok || len(v) == 0 {
		c.invalid(path, "Secret %s has no entry %q", name, key)
		return nil
	}
	return &v1alpha1.KeyAuthority{Data: string(v)}
}

// pcTrustRootObject is policy-controller's TrustRoot
// (policy.sigstore.dev/v1alpha1). Byte fields are base64 in the object
// (root.json, the tar.gz mirror, PEM chains and keys).
type pcTrustRootObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Remote *struct {
			Root              []byte `json:"root"`
			Mirror            string `json:"mirror"`
			Targets           string `json:"targets"`
			TrustedRootTarget string `json:"trustedRootTarget"`
		} `json:"remote"`
		Repository *struct {
			Root              []byte `json:"root"`
			MirrorFS          []byte `json:"mirrorFS"`
			Targets           string `json:"targets"`
			TrustedRootTarget string `json:"trustedRootTarget"`
		} `json:"repository"`
		SigstoreKeys *struct {
			CertificateAuthorities []pcCertificateAuthority `json:"certificateAuthorities"`
			TLogs                  []pcLog                  `json:"tLogs"`
			CTLogs                 []pcLog                  `json:"ctLogs"`
			TimestampAuthorities   []pcCertificateAuthority `json:"timestampAuthorities"`
		} `json:"sigstoreKeys"`
	} `json:"spec"`
	Status json.RawMessage `json:"status"`
}

type pcCertificateAuthority struct {
	Subject *struct {
		Organization string `json:"organization"`
		CommonName   string `json:"commonName"`
	} `json:"subject"`
	URI       string `json:"uri"`
	CertChain []byte `json:"certChain"`
}

type pcLog struct {
	BaseURL       string `json:"baseURL"`
	HashAlgorithm string `json:"hashAlgorithm"`
	PublicKey     []byte `json:"publicKey"`
}

// pcTrustRoot converts a TrustRoot into a signet TrustRoot of the same
// name, which the converted authorities' trustRootRefs name.
func (c *conv) pcTrustRoot(doc manifests.Document) {
	var tr pcTrustRootObject
	if !c.decode(doc.JSON, &tr) {
		return
	}
	s := tr.Spec
	n := 0
	for _, set := range []bool{s.Remote != nil, s.Repository != nil, s.SigstoreKeys != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.invalid("spec", "give exactly one of remote, repository or sigstoreKeys")
		return
	}
	var spec v1alpha1.TrustRootSpec
	switch {
	case s.Remote != nil:
		r := s.Remote
		if r.Targets != "" && r.Targets != "targets" {
			c.refuse("spec.remote.targets", "TrustRoot skipped", "%q: signet reads a mirror's targets under targets/", r.Targets)
			return
		}
		if r.Mirror == "" || len(r.Root) == 0 {
			c.invalid("spec.remote", "mirror and root are required")
			return
		}
		spec.Remote = &v1alpha1.TUFRemote{Mirror: r.Mirror, Root: r.Root, TrustedRootTarget: r.TrustedRootTarget}
		c.note("spec.remote", "policy-controller refreshes a remote root every 24h, as signet does by default (spec.remote.refreshInterval)")
	case s.Repository != nil:
		r := s.Repository
		if len(r.MirrorFS) == 0 || len(r.Root) == 0 {
			c.invalid("spec.repository", "mirrorFS and root are required")
			return
		}
		spec.Repository = &v1alpha1.TUFRepository{MirrorFS: r.MirrorFS, Root: r.Root, Targets: r.Targets, TrustedRootTarget: r.TrustedRootTarget}
		c.note("spec.repository", "signet refuses the repository once its TUF metadata has expired (check with signet trustroot inspect); rebuild it with signet trustroot create")
	default:
		k := s.SigstoreKeys
		keys := &v1alpha1.TrustRootKeys{}
		cas := func(field string, in []pcCertificateAuthority) []v1alpha1.CertificateAuthorityKey {
			var out []v1alpha1.CertificateAuthorityKey
			for i, ca := range in {
				if len(ca.CertChain) == 0 {
					c.invalid(fmt.Sprintf("spec.sigstoreKeys.%s[%d].certChain", field, i), "required")
					continue
				}
				out = append(out, v1alpha1.CertificateAuthorityKey{URI: ca.URI, CertChain: string(ca.CertChain)})
			}
			return out
		}
		logs := func(field string, in []pcLog) []v1alpha1.LogPublicKey {
			var out []v1alpha1.LogPublicKey
			for i, l := range in {
				switch strings.ToLower(strings.ReplaceAll(l.HashAlgorithm, "-", "")) {
				case "", "sha256":
				default:
					c.refuse(fmt.Sprintf("spec.sigstoreKeys.%s[%d].hashAlgorithm", field, i), "log skipped", "%q: signet's logs hash with SHA-256", l.HashAlgorithm)
					continue
				}
				if len(l.PublicKey) == 0 {
					c.invalid(fmt.Sprintf("spec.sigstoreKeys.%s[%d].publicKey", field, i), "required")
					continue
				}
				out = append(out, v1alpha1.LogPublicKey{BaseURL: l.BaseURL, PublicKey: string(l.PublicKey)})
			}
			return out
		}
		keys.CertificateAuthorities = cas("certificateAuthorities", k.CertificateAuthorities)
		keys.TransparencyLogs = logs("tLogs", k.TLogs)
		keys.CTLogs = logs("ctLogs", k.CTLogs)
		keys.TimestampAuthorities = cas("timestampAuthorities", k.TimestampAuthorities)
		spec.Keys = keys
	}
	c.emitTrustRoot(tr.Name, "policy-controller TrustRoot "+tr.Name, spec)
}
