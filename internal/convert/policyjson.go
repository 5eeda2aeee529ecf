package convert

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
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
	// Only the most specific scope applies in policy.json; signet applies
	// every matching policy. So each policy excludes the scopes nested
	// directly in its own (they exclude theirs in turn): an image is then
	// governed by its most specific scope's policy alone. Every scope
	// becomes a policy, reject and insecureAcceptAnything ones (static fail
	// and pass) included, and so does the root ("" or default) over every
	// image: the converted policies decide alone what the file decides,
	// whatever signet serve's --unmatched says.
	emitted := append([]*pjScope{root}, scopes...)
	switch root.kind {
	case "reject":
		c.note(root.path, "reject: becomes a policy denying every image (glob **) no more specific scope selects, as containers/image does, whatever signet serve --unmatched says")
	case "accept":
		c.note(root.path, "insecureAcceptAnything: becomes a policy admitting every image (glob **) no more specific scope selects, as containers/image does, whatever signet serve --unmatched says")
	default:
		c.note(root.path, "becomes a policy for every image (glob **) except those of the more specific scopes")
	}
	for _, s := range emitted {
		c.pjPolicies(s, c.pjExcludes(s, root, scopes), file)
	}
}

// pjExcludes are the globs of the scopes nested directly in g (all of
// them, including reject and insecureAcceptAnything scopes and those no
// policy is emitted for): images whose most specific scope is not g.
func (c *conv) pjExcludes(g, root *pjScope, scopes []*pjScope) []v1alpha1.ImageMatcher {
	under := func(outer, inner *pjScope) bool {
		return inner != outer && (outer == root || pjContains(outer.scope, inner.scope))
	}
	var out []v1alpha1.ImageMatcher
	for _, s := range scopes {
		if !under(g, s) {
			continue
		}
		direct := true
		for _, m := range scopes {
			if m != s && under(g, m) && under(m, s) {
				direct = false
				break
			}
		}
		if !direct {
			continue
		}
		for _, glob := range pjGlobs(s.scope) {
			if strings.ToLower(glob) == glob { // upper case selects no image
				out = append(out, v1alpha1.ImageMatcher{Glob: glob})
			}
		}
	}
	return out
}

// maxExcludes is spec.excludeImages' limit.
const maxExcludes = 256

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
		return fmt.Sprintf("%q names a tag or digest: policy.json's most specific scope lifts the requirements of the scopes containing it, and signet lifts none by tag or digest (whoever writes a reference chooses its tag; excludeImages refuses tag)", scope)
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

func (c *conv) pjPolicies(s *pjScope, excludes []v1alpha1.ImageMatcher, file string) {
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
	if len(excludes) > maxExcludes {
		c.refuse(s.path, "not converted", "%d more specific scopes nested in it; a signet policy excludes at most %d", len(excludes), maxExcludes)
		return
	}
	if s.kind == "accept" {
		spec := v1alpha1.ImagePolicySpec{Images: images, ExcludeImages: excludes,
			Authorities: []v1alpha1.Authority{{Name: "policy-json", Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}
		c.addCluster(c.objectName("policy-json", name), from, spec)
		return
	}
	n := 0
	for i, raw := range s.reqs {
		path := fmt.Sprintf("%s[%d]", s.path, i)
		spec := v1alpha1.ImagePolicySpec{Images: images, ExcludeImages: excludes}
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
			return a, true
		}
		logs, ok := c.pjRekorLogs(path, v)
		if !ok {
			return v1alpha1.Authority{}, false
		}
		a.Key.TrustRootRef = c.addTrustRoot(c.objectName("policy-json", "rekor"), "containers-policy.json "+path+" (Rekor key)",
			v1alpha1.TrustRootSpec{Keys: &v1alpha1.TrustRootKeys{TransparencyLogs: logs}})
		return a, true
	case present(v.Fulcio):
		var f pjFulcio
		if !c.strict(v.Fulcio, &f, path+".fulcio") {
			return v1alpha1.Authority{}, false
		}
		switch {
		case (f.CAPath != "") == (f.CAData != nil):
			c.invalid(path+".fulcio", "exactly one of caPath and caData must be specified")
			return v1alpha1.Authority{}, false
		case f.OIDCIssuer == "":
			c.invalid(path+".fulcio.oidcIssuer", "oidcIssuer not specified")
			return v1alpha1.Authority{}, false
		case f.SubjectEmail == "":
			c.invalid(path+".fulcio.subjectEmail", "subjectEmail not specified")
			return v1alpha1.Authority{}, false
		case rekor == 0:
			c.invalid(path, "At least one of rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas must be specified if fulcio is used")
			return v1alpha1.Authority{}, false
		}
		if f.CAPath != "" {
			if !c.refuse(path+".fulcio.caPath", "the requirement rejects every image", "CA files on the node cannot be read here; give the CA as caData") {
				return v1alpha1.Authority{}, false
			}
			return fail("fulcio CA file not available to signet")
		}
		chain, why := pjCertChain(f.CAData)
		if why != "" {
			if !c.refuse(path+".fulcio.caData", "the requirement rejects every image", "%s", why) {
				return v1alpha1.Authority{}, false
			}
			return fail("fulcio CA not converted")
		}
		logs, ok := c.pjRekorLogs(path, v)
		if !ok {
			return v1alpha1.Authority{}, false
		}
		name := c.addTrustRoot(c.objectName("policy-json", "fulcio"), "containers-policy.json "+path+".fulcio",
			v1alpha1.TrustRootSpec{Keys: &v1alpha1.TrustRootKeys{
				CertificateAuthorities: []v1alpha1.CertificateAuthorityKey{{CertChain: chain}},
				TransparencyLogs:       logs,
			}})
		c.note(path+".fulcio", "containers/image does not check the certificate's SCT: the authority sets insecureIgnoreSCT, as the source decides")
		if pjRootAlone(chain) {
			c.note(path+".fulcio.caData", "holds a root certificate and no intermediate: containers/image takes intermediates from each signature's chain annotation, signet only from the trust root, so it denies signatures whose certificate an intermediate issued (every Fulcio's); add the intermediates to the TrustRoot's certChain before the root")
		}
		a.Keyless = &v1alpha1.KeylessAuthority{TrustRootRef: name, Identities: []v1alpha1.Identity{{Issuer: f.OIDCIssuer, Subject: f.SubjectEmail}}}
		a.InsecureIgnoreSCT = true
		return a, true
	default:
		return c.pjPKI(path, v, rekor)
	}
}

type pjPKIBlock struct {
	CARootsPath         string `json:"caRootsPath"`
	CARootsData         []byte `json:"caRootsData"`
	CAIntermediatesPath string `json:"caIntermediatesPath"`
	CAIntermediatesData []byte `json:"caIntermediatesData"`
	SubjectEmail        string `json:"subjectEmail"`
	SubjectHostname     string `json:"subjectHostname"`
}

// pjPKI converts a pki requirement into a certificate authority, checked
// as containers-image checks it (policy_config_sigstore.go). It accepts no
// Rekor key with pki and verifies no log, so the authority ignores the
// tlog; verifyPKI (pki_cert.go) checks the chain at the current time, as
// signet does without a log.
func (c *conv) pjPKI(path string, v pjSigstore, rekor int) (v1alpha1.Authority, bool) {
	var p pjPKIBlock
	if !c.strict(v.PKI, &p, path+".pki") {
		return v1alpha1.Authority{}, false
	}
	switch {
	case p.CARootsPath != "" && p.CARootsData != nil:
		c.invalid(path+".pki", "caRootsPath and caRootsData cannot be used simultaneously")
		return v1alpha1.Authority{}, false
	case p.CARootsPath == "" && p.CARootsData == nil:
		c.invalid(path+".pki", "At least one of caRootsPath and caRootsData must be specified")
		return v1alpha1.Authority{}, false
	case p.CAIntermediatesPath != "" && p.CAIntermediatesData != nil:
		c.invalid(path+".pki", "caIntermediatesPath and caIntermediatesData cannot be used simultaneously")
		return v1alpha1.Authority{}, false
	case p.SubjectEmail == "" && p.SubjectHostname == "":
		c.invalid(path+".pki", "At least one of subjectEmail, subjectHostname must be specified")
		return v1alpha1.Authority{}, false
	case rekor > 0:
		c.invalid(path, "rekorPublickeyPath, rekorPublicKeyPaths, rekorPublickeyData and rekorPublicKeyDatas are not supported for pki")
		return v1alpha1.Authority{}, false
	}
	fail := func(msg string) (v1alpha1.Authority, bool) {
		return v1alpha1.Authority{Name: "policy-json", Static: &v1alpha1.StaticAuthority{Action: "fail", Message: msg}}, true
	}
	// Every unconvertible field is reported at once; any one makes the
	// requirement reject every image (--allow-lossy).
	converted, refused := true, false
	unconvertible := func(field, why string) {
		converted = false
		refused = !c.refuse(path+".pki."+field, "the requirement rejects every image", "%s", why) || refused
	}
	if p.CARootsPath != "" {
		unconvertible("caRootsPath", "CA files on the node cannot be read here; give the roots as caRootsData")
	}
	if p.CAIntermediatesPath != "" {
		unconvertible("caIntermediatesPath", "CA files on the node cannot be read here; give the intermediates as caIntermediatesData")
	}
	ca := &v1alpha1.CertificateAuthority{Identities: []v1alpha1.CertificateIdentity{{Email: p.SubjectEmail, Hostname: p.SubjectHostname}}}
	for _, f := range []struct {
		field string
		data  []byte
		into  *string
	}{
		{"caRootsData", p.CARootsData, &ca.Roots},
		{"caIntermediatesData", p.CAIntermediatesData, &ca.Intermediates},
	} {
		if f.data == nil {
			continue
		}
		certs, why := pjCACertificates(f.data)
		if why != "" {
			unconvertible(f.field, why)
		}
		*f.into = certs
	}
	if refused {
		return v1alpha1.Authority{}, false
	}
	if !converted {
		return fail("pki requirement not converted")
	}
	if p.CAIntermediatesData == nil {
		c.note(path+".pki", "no caIntermediatesData: signet takes intermediates only from the authority, never from a signature's certificate chain (containers-image takes all of that chain but its last certificate), so it denies certificates an intermediate issued; add every intermediate to the authority's intermediates")
	} else {
		c.note(path+".pki.caIntermediatesData", "containers-image also takes intermediates from each signature's certificate chain (all but its last certificate), signet only these: a certificate issued by an intermediate not listed here is denied")
	}
	c.note(path+".pki", "containers-image checks no transparency log for pki (it refuses Rekor keys there) and checks the certificate chain at the current time: the authority sets insecureIgnoreTlog, under which signet checks the chain at the current time too")
	return v1alpha1.Authority{Name: "policy-json", Certificate: ca, InsecureIgnoreTlog: true}, true
}

// pjCACertificates re-encodes caRootsData or caIntermediatesData (PEM) for
// a certificate authority, which holds CA certificates only; why says what
// it cannot hold.
func pjCACertificates(data []byte) (string, string) {
	var out bytes.Buffer
	rest := data
	for n := 1; ; n++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return "", fmt.Sprintf("PEM block %d is a %s, not a CERTIFICATE", n, b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", fmt.Sprintf("certificate %d: %v", n, err)
		}
		if !cert.IsCA || !cert.BasicConstraintsValid {
			return "", fmt.Sprintf("certificate %d (%s) is not a CA certificate; a signet certificate authority trusts CA certificates only", n, cert.Subject)
		}
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	if out.Len() == 0 {
		return "", "no PEM certificate"
	}
	return out.String(), ""
}

type pjFulcio struct {
	CAPath       string `json:"caPath"`
	CAData       []byte `json:"caData"`
	OIDCIssuer   string `json:"oidcIssuer"`
	SubjectEmail string `json:"subjectEmail"`
}

// pjRekorLogs are the requirement's inline Rekor keys as TrustRoot logs;
// key files on the node are refused.
func (c *conv) pjRekorLogs(path string, v pjSigstore) ([]v1alpha1.LogPublicKey, bool) {
	if v.RekorPublicKeyPath != "" || v.RekorPublicKeyPaths != nil {
		c.refuse(path+".rekorPublicKeyPath", "not converted", "key files on the node cannot be read here; give the Rekor key as rekorPublicKeyData")
		return nil, false
	}
	var logs []v1alpha1.LogPublicKey
	for i, k := range append([][]byte{v.RekorPublicKeyData}, v.RekorPublicKeyDatas...) {
		if len(k) == 0 {
			continue
		}
		b, _ := pem.Decode(k)
		if b == nil {
			field := ".rekorPublicKeyData"
			if v.RekorPublicKeyDatas != nil {
				field = fmt.Sprintf(".rekorPublicKeyDatas[%d]", i-1)
			}
			c.invalid(path+field, "not a PEM public key")
			return nil, false
		}
		logs = append(logs, v1alpha1.LogPublicKey{PublicKey: string(pem.EncodeToMemory(b))})
	}
	return logs, true
}

// pjRootAlone reports whether chain (PEM, checked by pjCertChain) is a
// single self-signed certificate: a root without intermediates.
func pjRootAlone(chain string) bool {
	b, rest := pem.Decode([]byte(chain))
	if b == nil || len(bytes.TrimSpace(rest)) > 0 {
		return false
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	return err == nil && bytes.Equal(cert.RawIssuer, cert.RawSubject) && cert.CheckSignatureFrom(cert) == nil
}

// pjCertChain checks that caData is one certificate chain (each
// certificate issued by the next, the last one the root), as a TrustRoot
// certificate authority holds it; containers/image takes caData as a pool.
func pjCertChain(data []byte) (string, string) {
	var certs []*x509.Certificate
	var out bytes.Buffer
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", fmt.Sprintf("not a certificate: %v", err)
		}
		certs = append(certs, cert)
		_ = pem.Encode(&out, &pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	}
	if len(certs) == 0 {
		return "", "no PEM certificate"
	}
	for i := 0; i+1 < len(certs); i++ {
		if certs[i].CheckSignatureFrom(certs[i+1]) != nil {
			return "", "the certificates are not one chain (intermediates then root); containers/image trusts each of them, a signet certificate authority is one chain"
		}
	}
	return out.String(), ""
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
		// The same meaning in signet (internal/verify checkSignedIdentity):
		// cosign's repository-only signatures never pass it.
		spec.SignedIdentity = "matchRepoDigestOrExact"
	case "exactReference", "exactRepository", "remapIdentity":
		spec.SignedIdentity = "matchExact"
		return c.refuse(path, "matchExact", "%s has no signet equivalent", id.Type)
	default:
		c.invalid(path+".type", "unknown signedIdentity type %q", id.Type)
		return false
	}
	return true
}
