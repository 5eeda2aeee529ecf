package convert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	kjson "sigs.k8s.io/json"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
)

// containers-policy.json (go.podman.io/image/v5/signature), the docker
// transport. Semantics followed (its code): the file is parsed strictly;
// for an image, the most specific scope of transports.docker applies
// (repository, its parent namespaces, the registry, then *.domain
// wildcards ignoring the port, then the "" scope, then default) and only
// that scope's requirements, all of which must allow; sigstoreSigned's
// signedIdentity defaults to matchRepoDigestOrExact; key signatures need a
// Rekor SET only when a Rekor key is given.
var policyJSONFormat = Format{
	Name:        "policy.json",
	Description: "containers-policy.json (CRI-O, Podman), the docker transport",
	convert:     convertPolicyJSON,
}

type pjFile struct {
	Default    []json.RawMessage                       `json:"default"`
	Transports map[string]map[string][]json.RawMessage `json:"transports"`
}

type pjType struct {
	Type string `json:"type"`
}

type pjSigstore struct {
	Type                string          `json:"type"`
	KeyPath             string          `json:"keyPath"`
	KeyPaths            []string        `json:"keyPaths"`
	KeyData             []byte          `json:"keyData"`
	KeyDatas            [][]byte        `json:"keyDatas"`
	Fulcio              json.RawMessage `json:"fulcio"`
	PKI                 json.RawMessage `json:"pki"`
	RekorPublicKeyPath  string          `json:"rekorPublicKeyPath"`
	RekorPublicKeyPaths []string        `json:"rekorPublicKeyPaths"`
	RekorPublicKeyData  []byte          `json:"rekorPublicKeyData"`
	RekorPublicKeyDatas [][]byte        `json:"rekorPublicKeyDatas"`
	SignedIdentity      json.RawMessage `json:"signedIdentity"`
}

type pjSignedBy struct {
	Type           string          `json:"type"`
	KeyType        string          `json:"keyType"`
	KeyPath        string          `json:"keyPath"`
	KeyPaths       []string        `json:"keyPaths"`
	KeyData        []byte          `json:"keyData"`
	SignedIdentity json.RawMessage `json:"signedIdentity"`
}

type pjIdentity struct {
	Type             string `json:"type"`
	DockerReference  string `json:"dockerReference"`
	DockerRepository string `json:"dockerRepository"`
	Prefix           string `json:"prefix"`
	SignedPrefix     string `json:"signedPrefix"`
}

// pjScope is one scope of transports.docker, or the fallback (root).
type pjScope struct {
	scope string // "" for the root (transports.docker[""] or default)
	path  string
	reqs  []json.RawMessage
	kind  string // "reject", "accept" or "verify": what the requirements amount to
	root  bool
}

func convertPolicyJSON(c *conv, docs []manifests.Document) {
	for _, doc := range docs {
		c.source = doc.Source
		var f pjFile
		if !c.strict(doc.JSON, &f, "") {
			continue
		}
		c.pjFile(&f, doc.Source)
	}
}

// strict decodes policy.json as containers/image does: unknown or
// duplicate fields and wrong types make the whole file invalid.
func (c *conv) strict(js []byte, v any, path string) bool {
	strictErrs, err := kjson.UnmarshalStrict(js, v)
	if err != nil {
		c.invalid(path, "%v", err)
		return false
	}
	if len(strictErrs) > 0 {
		for _, e := range strictErrs {
			c.invalid(path, "%v", e)
		}
		return false
	}
	return true
}

func (c *conv) pjFile(f *pjFile, file string) {
	if f.Default == nil {
		c.invalid("default", "Default policy is missing")
		return
	}
	root := &pjScope{path: "default", reqs: f.Default, root: true}
	var scopes []*pjScope
	for transport, ss := range f.Transports {
		if transport != "docker" {
			c.note(fmt.Sprintf("transports[%q]", transport), "not converted: signet checks images pulled from registries (the docker transport)")
			continue
		}
		for s, reqs := range ss {
			sc := &pjScope{scope: s, path: fmt.Sprintf("transports.docker[%q]", s), reqs: reqs}
			if s == "" {
				sc.root = true
				root = sc // "" is the docker transport's fallback, before default
				continue
			}
			scopes = append(scopes, sc)
		}
	}
	sort.Slice(scopes, func(i, j int) bool { return scopes[i].scope < scopes[j].scope })
	for _, s := range append([]*pjScope{root}, scopes...) {
		if len(s.reqs) == 0 {
			c.invalid(s.path, "List of verification policy requirements must not be empty")
			return
		}
		s.kind = "verify"
		allAccept, anyReject := true, false
		for i, r := range s.reqs {
			var t pjType
			_ = json.Unmarshal(r, &t)
			rpath := fmt.Sprintf("%s[%d]", s.path, i)
			var target any
			switch t.Type {
			case "reject":
				anyReject = true
				allAccept = false
				target = &pjType{}
			case "insecureAcceptAnything":
				target = &pjType{}
			case "signedBy":
				allAccept = false
				target = &pjSignedBy{}
			case "sigstoreSigned":
				allAccept = false
				target = &pjSigstore{}
			case "signedBaseLayer":
				allAccept = false
				target = &struct {
					Type              string          `json:"type"`
					BaseLayerIdentity json.RawMessage `json:"baseLayerIdentity"`
				}{}
			default:
				c.invalid(rpath+".type", "Unknown policy requirement type %q", t.Type)
				return
			}
			// containers/image rejects the whole file for one bad requirement.
			if !c.strict(r, target, rpath) {
				return
			}
		}
		switch {
		case anyReject:
			s.kind = "reject"
		case allAccept:
			s.kind = "accept"
		}
	}
	// Scopes that are not repositories, namespaces or registries.
	var valid []*pjScope
	for _, s := range scopes {
		if reason := pjScopeProblem(s.scope); reason != "" {
			c.refuse(s.path, "scope skipped", "%s", reason)
			continue
		}
		valid = append(valid, s)
	}
	scopes = valid
	parent := func(s *pjScope) *pjScope {
		var best *pjScope
		for _, g := range scopes {
			if g != s && pjContains(g.scope, s.scope) && (best == nil || pjContains(best.scope, g.scope)) {
				best = g
			}
		}
		if best == nil {
			return root
		}
		return best
	}
	// A reject scope whose fallback also rejects needs no policy: its images
	// fall to the fallback. Everything else becomes a policy.
	var emitted []*pjScope
	for _, s := range scopes {
		if s.kind == "reject" && parent(s).kind == "reject" {
			c.note(s.path, "reject: no policy needed, its images fall to %s, which rejects them too", parent(s).path)
			continue
		}
		emitted = append(emitted, s)
	}
	switch root.kind {
	case "reject":
		c.note(root.path, "reject: images no scope selects are denied by signet serve --unmatched=deny (the default)")
	case "accept":
		c.note(root.path, "insecureAcceptAnything: run signet serve --unmatched=allow")
	default:
		emitted = append([]*pjScope{root}, emitted...)
		c.note(root.path, "becomes a policy for every image (glob **); images no other policy selects are then governed by it")
	}
	// signet requires every matching policy; policy.json applies only the
	// most specific scope. They agree where every more general policy
	// accepts anything.
	for _, g := range emitted {
		if g.kind == "accept" {
			continue
		}
		for _, s := range emitted {
			if s != g && (g.root || pjContains(g.scope, s.scope)) {
				c.refuse(s.path, fmt.Sprintf("images under %q must also satisfy %s", s.scope, g.path),
					"policy.json applies only the most specific scope, so images under %q are decided by it alone; signet would also apply %s, which a signet policy cannot exclude them from", s.scope, g.path)
			}
		}
	}
	for _, s := range emitted {
		c.pjPolicies(s, file)
	}
}

// pjScopeProblem says why a scope cannot be a signet image selector.
func pjScopeProblem(scope string) string {
	if strings.HasPrefix(scope, "*.") {
		if strings.Contains(scope, "/") {
			return "a wildcard scope names a domain only"
		}
		return ""
	}
	last := scope[strings.LastIndex(scope, "/")+1:]
	if strings.Contains(scope, "@") || (strings.Contains(scope, "/") && strings.Contains(last, ":")) {
		return fmt.Sprintf("%q names a tag or digest; signet selects repositories (every tag of a repository is governed alike)", scope)
	}
	return ""
}

func pjHost(scope string) string {
	h, _, _ := strings.Cut(scope, "/")
	if i := strings.LastIndex(h, ":"); i >= 0 {
		h = h[:i]
	}
	return h
}

// pjContains reports whether every image under scope s is also under the
// more general scope g.
func pjContains(g, s string) bool {
	if g == s {
		return false
	}
	if strings.HasPrefix(g, "*.") {
		suffix := g[1:] // ".example.com"
		if strings.HasPrefix(s, "*.") {
			return strings.HasSuffix(s[1:], suffix)
		}
		return strings.HasSuffix(pjHost(s), suffix)
	}
	if strings.HasPrefix(s, "*.") {
		return false
	}
	return strings.HasPrefix(s, g+"/")
}

// pjGlobs are the signet globs selecting a scope's images.
func pjGlobs(scope string) []string {
	if scope == "" {
		return []string{"**"}
	}
	if strings.HasPrefix(scope, "*.") {
		// Wildcards ignore the port.
		return []string{scope + "/**", scope + ":*/**"}
	}
	return []string{scope + "/**"}
}

func (c *conv) pjPolicies(s *pjScope, file string) {
	var images []v1alpha1.ImageMatcher
	for _, g := range pjGlobs(s.scope) {
		if strings.ToLower(g) != g {
			c.note(s.path, "matches no image (repository paths are lower case); not converted")
			return
		}
		images = append(images, v1alpha1.ImageMatcher{Glob: g})
	}
	name := s.scope
	if s.root {
		name = "default"
	}
	from := fmt.Sprintf("containers-policy.json %s", s.path)
	n := 0
	for i, raw := range s.reqs {
		path := fmt.Sprintf("%s[%d]", s.path, i)
		spec := v1alpha1.ImagePolicySpec{Images: images}
		auth, ok := c.pjRequirement(path, raw, &spec)
		if !ok {
			continue
		}
		if auth.Static != nil && auth.Static.Action == "pass" && len(s.reqs) > 1 {
			continue // allows: the other requirements decide
		}
		spec.Authorities = []v1alpha1.Authority{auth}
		n++
		parts := []string{"policy-json", name}
		if len(s.reqs) > 1 {
			parts = append(parts, fmt.Sprintf("%d", i))
		}
		c.addCluster(c.objectName(parts...), from, spec)
	}
	_ = n
}

func (c *conv) pjRequirement(path string, raw json.RawMessage, spec *v1alpha1.ImagePolicySpec) (v1alpha1.Authority, bool) {
	var t pjType
	_ = json.Unmarshal(raw, &t)
	fail := func(msg string) (v1alpha1.Authority, bool) {
		return v1alpha1.Authority{Name: "policy-json", Static: &v1alpha1.StaticAuthority{Action: "fail", Message: msg}}, true
	}
	switch t.Type {
	case "insecureAcceptAnything":
		var v pjType
		if !c.strict(raw, &v, path) {
			return v1alpha1.Authority{}, false
		}
		return v1alpha1.Authority{Name: "policy-json", Static: &v1alpha1.StaticAuthority{Action: "pass"}}, true
	case "reject":
		var v pjType
		if !c.strict(raw, &v, path) {
			return v1alpha1.Authority{}, false
		}
		return fail("rejected by policy (containers-policy.json reject)")
	case "signedBaseLayer":
		return fail("signedBaseLayer is not implemented by containers/image: it rejects every image")
	case "signedBy":
		var v pjSignedBy
		if !c.strict(raw, &v, path) {
			return v1alpha1.Authority{}, false
		}
		if v.KeyType != "GPGKeys" {
			return fail(fmt.Sprintf("signedBy keyType %q is not implemented by containers/image: it rejects every image", v.KeyType))
		}
		if !c.refuse(path, "the requirement rejects every image", "GPG (simple signing) signatures are not supported by signet") {
			return v1alpha1.Authority{}, false
		}
		return fail("GPG signatures are not supported by signet")
	}
	var v pjSigstore
	if !c.strict(raw, &v, path) {
		return v1alpha1.Authority{}, false
	}
	n := 0
	for _, set := range []bool{v.KeyPath != "", v.KeyPaths != nil, v.KeyData != nil, v.KeyDatas != nil, present(v.Fulcio), present(v.PKI)} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.invalid(path, "exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, and pki must be specified")
		return v1alpha1.Authority{}, false
	}
	rekor := 0
	for _, set := range []bool{v.RekorPublicKeyPath != "", v.RekorPublicKeyPaths != nil, v.RekorPublicKeyData != nil, v.RekorPublicKeyDatas != nil} {
		if set {
			rekor++
		}
	}
	if rekor > 1 {
		c.invalid(path, "at most one of rekorPublicKeyPath, rekorPublicKeyPaths, rekorPublicKeyData and rekorPublicKeyDatas may be specified")
		return v1alpha1.Authority{}, false
	}
	// A refused signedIdentity still lets the key material be checked, so
	// every refusal is reported at once.
	if !c.pjSignedIdentity(path+".signedIdentity", v.SignedIdentity, spec) {
		c.pjKeyMaterial(path, v, rekor)
		return v1alpha1.Authority{}, false
	}
	return c.pjKeyMaterial(path, v, rekor)
}

func (c *conv) pjKeyMaterial(path string, v pjSigstore, rekor int) (v1alpha1.Authority, bool) {
	fail := func(msg string) (v1alpha1.Authority, bool) {
		return v1alpha1.Authority{Name: "policy-json", Static: &v1alpha1.StaticAuthority{Action: "fail", Message: msg}}, true
	}
	a := v1alpha1.Authority{Name: "policy-json"}
	switch {
	case v.KeyPath != "" || v.KeyPaths != nil:
		if !c.refuse(path+".keyPath", "the requirement rejects every image", "key files on the node cannot be read here; give the key as keyData") {
			return v1alpha1.Authority{}, false
		}
		return fail("key file not available to signet")
	case v.KeyData != nil || v.KeyDatas != nil:
		var pems bytes.Buffer
		for _, k := range append([][]byte{v.KeyData}, v.KeyDatas...) {
			if len(k) > 0 {
				pems.Write(bytes.TrimSpace(k))
				pems.WriteByte('\n')
			}
		}
		a.Key = &v1alpha1.KeyAuthority{Data: pems.String()}
		if rekor == 0 {
			// Without a Rekor key, containers/image does not look for a SET.
			a.InsecureIgnoreTlog = true
		} else if !c.refuse(path+".rekorPublicKeyData", "the default trust root's transparency logs are used", "a Rekor key for key-based signatures: signet's key authorities take their transparency logs from the default trust root and cannot name a TrustRoot") {
			return v1alpha1.Authority{}, false
		}
		return a, true
	case present(v.Fulcio):
		if !c.refuse(path+".fulcio", "the requirement rejects every image", "a private Fulcio CA and Rekor key need a signet TrustRoot; this converter does not emit TrustRoots yet") {
			return v1alpha1.Authority{}, false
		}
		return fail("fulcio requirement not converted")
	default:
		if !c.refuse(path+".pki", "the requirement rejects every image", "X.509 PKI signatures (caRoots, subjectEmail/subjectHostname) are not supported by signet") {
			return v1alpha1.Authority{}, false
		}
		return fail("pki requirement not converted")
	}
}

func (c *conv) pjSignedIdentity(path string, raw json.RawMessage, spec *v1alpha1.ImagePolicySpec) bool {
	id := pjIdentity{Type: "matchRepoDigestOrExact"}
	if present(raw) && !c.strict(raw, &id, path) {
		return false
	}
	switch id.Type {
	case "matchRepository":
		spec.SignedIdentity = "matchRepository"
	case "matchExact":
		spec.SignedIdentity = "matchExact"
	case "matchRepoDigestOrExact":
		spec.SignedIdentity = "matchExact"
		what := "the default, matchRepoDigestOrExact"
		if present(raw) {
			what = "matchRepoDigestOrExact"
		}
		return c.refuse(path, "matchExact, which also requires the exact reference for images pulled by digest", "%s (the exact reference for tagged images, the repository for digest references) has no signet equivalent; set signedIdentity matchRepository or matchExact", what)
	case "exactReference", "exactRepository", "remapIdentity":
		spec.SignedIdentity = "matchExact"
		return c.refuse(path, "matchExact", "%s has no signet equivalent", id.Type)
	default:
		c.invalid(path+".type", "unknown signedIdentity type %q", id.Type)
		return false
	}
	return true
}
