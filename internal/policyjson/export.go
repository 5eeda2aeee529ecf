package policyjson

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/verify"
)

// ErrNotExpressible is wrapped by Export's error when some policy cannot be
// written as policy.json without changing a decision.
var ErrNotExpressible = errors.New("not expressible in containers-policy.json")

// Options of Export.
type Options struct {
	// Target is the namespace (with its labels) the file is for; its Kind
	// is Pod (CRI-O pulls images for pods) when empty.
	Target policy.Target
	// Config holds the cluster settings: unmatched images (deny by
	// default), excluded namespaces, namespace opt-in.
	Config policy.Config
	// Resolver resolves key.secretRef and trust roots (the same one the
	// policies were compiled with).
	Resolver policy.Resolver
	// AllowLossy applies each issue's stricter fallback instead of
	// refusing. Issues without a stricter fallback are refused anyway.
	AllowLossy bool
}

// Issue is something policy.json cannot say exactly.
type Issue struct {
	// Policy is the policy's ID ("ClusterImagePolicy prod").
	Policy string
	// Field is the signet field at fault (spec.images[1].glob).
	Field string
	// Message says what policy.json cannot express.
	Message string
	// Fallback is the stricter translation AllowLossy applies; empty when
	// there is none (the issue is always refused).
	Fallback string
}

func (i Issue) String() string {
	s := fmt.Sprintf("%s: %s: %s", i.Policy, i.Field, i.Message)
	if i.Fallback != "" {
		s += " (--allow-lossy: " + i.Fallback + ")"
	}
	return s
}

// Result is an export.
type Result struct {
	// File enforces the policies; nil when the export was refused.
	File *File
	// FailClosed rejects every image the namespace's policies govern (and
	// follows the unmatched setting elsewhere): the file to install when
	// File is nil.
	FailClosed *File
	// Registries lists the scopes that need sigstore attachments.
	Registries Registries
	// Issues are the differences that needed (or would need) a stricter
	// fallback.
	Issues []Issue
	// Notes are differences inherent to policy.json, and what the export
	// did with each policy, for the user to read.
	Notes []string
}

// Export translates the policies that apply in o.Target into a policy.json.
// It returns a Result even when it refuses (with FailClosed, the issues and
// notes) and an error wrapping ErrNotExpressible.
func Export(policies []*policy.Policy, o Options) (*Result, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	t := o.Target
	if t.Kind == "" {
		t.Kind = "Pod"
	}
	unmatched := reject
	if o.Config.Unmatched == "allow" || o.Config.Unmatched == "warn" {
		unmatched = accept
	}
	res := &Result{}
	snap, err := policy.NewSnapshot(nil, o.Config)
	if err != nil {
		return nil, err
	}
	if exempt, why := snap.Exempt(t); exempt {
		res.Notes = append(res.Notes, why+": every image is accepted")
		res.File = &File{Default: []Requirement{accept}}
		res.FailClosed = res.File
		return res, nil
	}

	sorted := append([]*policy.Policy(nil), policies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Object.ID() < sorted[j].Object.ID() })
	var entries []*entry
	for _, p := range sorted {
		if !p.Applies(t) {
			continue
		}
		e := &entry{id: p.Object.ID()}
		c := converter{id: e.id, notes: &res.Notes, issues: &res.Issues}
		e.scopes = c.scopes(p)
		e.excludes = c.excludes(p)
		e.outcome = c.requirements(p, o.Resolver)
		entries = append(entries, e)
	}

	// A widened scope is stricter than signet only if every image it adds
	// was governed already (by an exact scope containing it), or unmatched
	// images are allowed anyway.
	for _, e := range entries {
		for _, s := range e.scopes {
			if s.widened == "" {
				continue
			}
			is := Issue{Policy: e.id, Field: s.field, Message: s.widened}
			if unmatched.Type == TypeAccept || coveredExactly(entries, s.name) {
				is.Fallback = fmt.Sprintf("the scope %s gets the policy's requirements", scopeName(s.name))
			} else {
				is.Message += fmt.Sprintf("; the images it would add are unmatched (denied) in signet, and would be governed by this policy instead (give a pattern policy.json can express, or a policy covering %s)", scopeName(s.name))
			}
			res.Issues = append(res.Issues, is)
		}
	}

	// Every scope gets the requirements of every policy with a scope
	// containing it: signet's matching policies for the images it owns.
	// An excluded scope gets the requirements of the other policies
	// only; scopes below it too (the exclusion covers them).
	names := map[string]bool{}
	for _, e := range entries {
		for _, s := range e.scopes {
			names[s.name] = true
		}
		for _, x := range e.excludes {
			names[x] = true
		}
	}
	file := &File{Default: []Requirement{unmatched}}
	closed := &File{Default: []Requirement{unmatched}}
	var signed []string
	for name := range names {
		var reqs []Requirement
		governed := false
		for _, e := range entries {
			if e.governs(name) {
				governed = true
				reqs = append(reqs, e.outcome...)
			}
		}
		if !governed {
			// Excluded from every policy that selects it: unmatched.
			addScope(file, name, []Requirement{unmatched})
			addScope(closed, name, []Requirement{unmatched})
			continue
		}
		reqs = simplify(reqs)
		addScope(file, name, reqs)
		addScope(closed, name, []Requirement{reject})
		for _, r := range reqs {
			if r.Type == TypeSigstoreSigned {
				signed = append(signed, name)
				break
			}
		}
	}
	sort.Strings(signed)
	res.Registries = Registries{Scopes: signed}
	res.FailClosed = closed
	if len(signed) > 0 {
		res.Notes = append(res.Notes, inherentNotes...)
	}

	var refused []string
	for _, is := range res.Issues {
		if is.Fallback == "" || !o.AllowLossy {
			refused = append(refused, is.String())
		}
	}
	if len(refused) > 0 {
		return res, fmt.Errorf("%w:\n  %s", ErrNotExpressible, strings.Join(refused, "\n  "))
	}
	res.File = file
	return res, nil
}

// inherentNotes are the differences between the runtime's verification
// and signet's that no policy can change.
var inherentNotes = []string{
	"the runtime reads only cosign's legacy signatures (sha256-<digest>.sig tags, with use-sigstore-attachments in registries.d); an image signed only with Sigstore bundles (OCI referrers) is rejected at pull",
	"the runtime verifies the signature of the platform manifest it pulls, not of the image index: sign multi-platform images with cosign sign --recursive",
	"the runtime does not check a Fulcio certificate's SCT, nor the validity windows of the trusted root's CAs and logs; it does require the Rekor SET and checks the certificate chain at its integrated time",
}

// addScope writes reqs for a scope: "" is the docker transport's default.
func addScope(f *File, name string, reqs []Requirement) {
	if f.Transports == nil {
		f.Transports = map[string]map[string][]Requirement{TransportDocker: {}}
	}
	f.Transports[TransportDocker][name] = reqs
}

// simplify drops accept-anything from an AND (it allows everything), and
// reduces an AND holding reject to reject.
func simplify(reqs []Requirement) []Requirement {
	var out []Requirement
	for _, r := range reqs {
		switch r.Type {
		case TypeReject:
			return []Requirement{reject}
		case TypeAccept:
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return []Requirement{accept}
	}
	return out
}

// entry is one applicable policy: its scopes and its requirements (an AND;
// reject or accept when it decides statically).
type entry struct {
	id     string
	scopes []scope
	// excludes are the scopes of spec.excludeImages (exact ones only: an
	// inexact exclusion is an issue and is not applied).
	excludes []string
	outcome  []Requirement
}

// governs reports whether the policy governs the images of scope name: a
// scope of its contains it and no exclusion does.
func (e *entry) governs(name string) bool {
	for _, x := range e.excludes {
		if contains(x, name) {
			return false
		}
	}
	for _, s := range e.scopes {
		if contains(s.name, name) {
			return true
		}
	}
	return false
}

// scope is a policy.json docker scope: "" (every image), host[:port],
// host[:port]/path, or *.domain.
type scope struct {
	name  string
	field string
	// widened says why the scope holds images the pattern does not
	// select; "" when it holds exactly the pattern's images.
	widened string
}

func scopeName(s string) string {
	if s == "" {
		return `the docker transport ("" scope)`
	}
	return s
}

// coveredExactly reports whether some exact scope (of any policy) contains
// name, so every image in name is matched by some policy in signet.
func coveredExactly(entries []*entry, name string) bool {
	for _, e := range entries {
		for _, s := range e.scopes {
			if s.widened == "" && contains(s.name, name) {
				return true
			}
		}
	}
	return false
}

// contains reports whether every image in scope b is in scope a, with
// policy.json's namespace rules (path boundaries; *.domain covers every
// deeper subdomain, ports ignored).
func contains(a, b string) bool {
	switch {
	case a == "" || a == b:
		return true
	case b == "":
		return false
	case strings.HasPrefix(a, "*."):
		domain := a[1:] // ".example.org"
		host := b
		if strings.HasPrefix(b, "*.") {
			return strings.HasSuffix(b[1:], domain)
		}
		host, _, _ = strings.Cut(host, "/")
		if i := strings.LastIndexByte(host, ':'); i >= 0 {
			host = host[:i]
		}
		return strings.HasSuffix(host, domain)
	case strings.HasPrefix(b, "*."):
		return false
	}
	return strings.HasPrefix(b, a+"/")
}

// converter translates one policy, recording issues and notes.
type converter struct {
	id     string
	notes  *[]string
	issues *[]Issue
}

func (c converter) note(format string, args ...any) {
	*c.notes = append(*c.notes, c.id+": "+fmt.Sprintf(format, args...))
}

func (c converter) issue(field, fallback, format string, args ...any) {
	*c.issues = append(*c.issues, Issue{Policy: c.id, Field: field, Message: fmt.Sprintf(format, args...), Fallback: fallback})
}

// scopes translates the policy's image patterns.
func (c converter) scopes(p *policy.Policy) []scope {
	var out []scope
	for _, pat := range p.Patterns() {
		out = append(out, patternScope(pat))
	}
	return out
}

// excludes translates spec.excludeImages into scopes. policy.json has no
// exclusions: an excluded scope gets the other policies' requirements (or
// the unmatched setting), which is exact only when the scope holds exactly
// the excluded images. A wider scope would exempt images signet governs,
// so it is refused, with no fallback. A policy that does not compile
// governs everything it selects, exclusions ignored, as in signet.
func (c converter) excludes(p *policy.Policy) []string {
	if p.Err != nil || len(p.Object.Spec.ExcludeImages) == 0 {
		return nil
	}
	// The exclusions compiled as signet compiles them: as the images of a
	// policy of their own.
	o := p.Object
	o.Spec = v1alpha1.ImagePolicySpec{Images: p.Object.Spec.ExcludeImages,
		Authorities: []v1alpha1.Authority{{Static: &v1alpha1.StaticAuthority{Action: "pass"}}}}
	var out []string
	for _, pat := range policy.CompileObject(o, nil).Patterns() {
		pat.Field = strings.Replace(pat.Field, "spec.images[", "spec.excludeImages[", 1)
		s := patternScope(pat)
		if s.widened != "" {
			c.issue(pat.Field, "", "policy.json cannot exclude exactly these images: %s; the policy's requirements would be lifted from images it governs", s.widened)
			continue
		}
		out = append(out, s.name)
	}
	return out
}

func patternScope(p policy.Pattern) scope {
	s := scope{field: p.Field}
	join := func(segs []string) string {
		if len(segs) == 0 {
			return p.Host
		}
		return p.Host + "/" + strings.Join(segs, "/")
	}
	if p.All {
		return s
	}
	if !p.Glob {
		s.name = join(p.Segments)
		return s
	}
	if strings.Contains(p.Host, "*") {
		rest := strings.TrimPrefix(p.Host, "*.")
		if strings.HasPrefix(p.Host, "*.") && !strings.Contains(rest, "*") && len(p.Segments) == 1 && p.Segments[0] == "**" {
			s.name = p.Host
			s.widened = fmt.Sprintf("%q: policy.json's %s also selects hosts of the domain with a port (a%s:5000), which the glob does not", p.Text, p.Host, p.Host[1:])
			return s
		}
		s.widened = fmt.Sprintf("%q: policy.json scopes have no wildcards in a host other than a leading *.", p.Text)
		return s
	}
	for i, seg := range p.Segments {
		if !strings.Contains(seg, "*") {
			continue
		}
		if seg == "**" && i == len(p.Segments)-1 {
			s.name = join(p.Segments[:i]) // "team/**" selects team and everything below it
			return s
		}
		s.name = join(p.Segments[:i])
		s.widened = fmt.Sprintf("%q: policy.json scopes are a host or a repository prefix, with no wildcards in the path; the nearest is %s", p.Text, s.name)
		return s
	}
	s.name = join(p.Segments)
	s.widened = fmt.Sprintf("%q: a glob without ** selects one repository, but the policy.json scope %s also selects the repositories below it (write prefix: %s to select them too)", p.Text, s.name, s.name)
	return s
}

// alternative is one sigstoreSigned requirement an authority accepts.
type alternative struct {
	req Requirement
	// signers name who can satisfy it (key fingerprints, issuer+subject),
	// for signet's distinct-signer rule.
	signers []string
	// keys are the PEM keys of a key requirement, for merging.
	keys [][]byte
	// rekor identifies the Rekor keys ("" for none), for merging.
	rekor string
}

// authority is one signature authority's alternatives (any one passes);
// none when it can never pass.
type authority struct {
	field string
	alts  []alternative
}

// requirements translates the policy's authorities into an AND of
// requirements.
func (c converter) requirements(p *policy.Policy, r policy.Resolver) []Requirement {
	spec := p.Object.Spec
	if p.Err != nil {
		if p.Mode() == "warn" {
			c.note("the policy is invalid and in warn mode: signet admits with a warning, policy.json accepts")
			return []Requirement{accept}
		}
		c.note("the policy is invalid (%v): the images it selects are rejected, as signet denies them", p.Err)
		return []Requirement{reject}
	}
	if p.Mode() == "warn" {
		c.note("warn mode: signet admits with a warning, policy.json accepts")
		return []Requirement{accept}
	}
	if p.Digest() == "require" {
		c.issue("spec.digest", "the images it selects are rejected", "policy.json cannot require references by digest")
		return []Requirement{reject}
	}
	auths, err := p.Authorities(r)
	if err != nil {
		c.note("the policy no longer compiles (%v): the images it selects are rejected", err)
		return []Requirement{reject}
	}
	identity := &SignedIdentity{Type: "matchRepository"}
	switch spec.SignedIdentity {
	case "", "off":
		c.note("signedIdentity off: policy.json always checks the signed reference; matchRepository is used (a signature copied from another repository is rejected)")
	case "matchExact":
		identity.Type = "matchExact"
	case "matchRepoDigestOrExact":
		identity.Type = "matchRepoDigestOrExact"
	}

	threshold := 1
	if spec.Threshold != nil {
		threshold = int(*spec.Threshold)
	}
	passing := 0
	var live []authority
	for i, a := range auths {
		field := fmt.Sprintf("spec.authorities[%d]", i)
		if a.Static != nil {
			if a.Static.Pass {
				passing++
			}
			continue
		}
		au := c.authority(field, a, identity)
		if len(au.alts) > 0 {
			live = append(live, au)
		}
	}
	need := threshold - passing
	switch {
	case need <= 0:
		return []Requirement{accept}
	case need > len(live):
		return []Requirement{reject}
	case need == 1:
		var alts []alternative
		for _, au := range live {
			alts = append(alts, au.alts...)
		}
		if m, ok := merge(alts); ok {
			return []Requirement{m}
		}
		c.issue("spec.authorities", "require every one of them", "policy.json cannot express a choice between %d ways of signing (%s): requirements of a scope must all pass, and a sigstoreSigned requirement can only list keys", len(alts), describe(alts))
		return reqsOf(alts)
	case need < len(live):
		c.issue("spec.threshold", fmt.Sprintf("require all %d", len(live)), "%d of %d authorities: policy.json cannot count signatures", need, len(live))
	}
	// Every live authority must pass, each with a signer of its own.
	var out []Requirement
	seen := map[string]string{}
	for _, au := range live {
		for _, a := range au.alts {
			for _, s := range a.signers {
				if other, dup := seen[s]; dup && other != au.field {
					c.issue(au.field, "", "shares a signer with %s: signet counts it once, policy.json would let one signature satisfy both", other)
				}
				seen[s] = au.field
			}
		}
		if m, ok := merge(au.alts); ok {
			out = append(out, m)
			continue
		}
		c.issue(au.field, "require every one of them", "policy.json cannot express a choice between %d ways of signing (%s)", len(au.alts), describe(au.alts))
		out = append(out, reqsOf(au.alts)...)
	}
	return out
}

func reqsOf(alts []alternative) []Requirement {
	out := make([]Requirement, len(alts))
	for i, a := range alts {
		out[i] = a.req
	}
	return out
}

func describe(alts []alternative) string {
	var parts []string
	for _, a := range alts {
		if a.req.Fulcio != nil {
			parts = append(parts, "keyless "+a.req.Fulcio.SubjectEmail)
		} else {
			parts = append(parts, fmt.Sprintf("%d key(s)", len(a.keys)))
		}
	}
	return strings.Join(parts, ", ")
}

// merge turns alternatives into one requirement when they are all key
// requirements with the same Rekor keys (keyDatas: any key passes).
func merge(alts []alternative) (Requirement, bool) {
	if len(alts) == 1 {
		return alts[0].req, true
	}
	var keys [][]byte
	seen := map[string]bool{}
	for _, a := range alts {
		if a.keys == nil || a.rekor != alts[0].rekor {
			return Requirement{}, false
		}
		for _, k := range a.keys {
			if !seen[string(k)] {
				seen[string(k)] = true
				keys = append(keys, k)
			}
		}
	}
	m := alts[0].req
	m.KeyDatas = keys
	return m, true
}

// authority translates one key or keyless authority; an authority that
// cannot be expressed (and whose fallback is never passing) has no
// alternatives.
func (c converter) authority(field string, a verify.Authority, identity *SignedIdentity) authority {
	au := authority{field: field}
	never := "the authority never passes"
	if len(a.Attestations) > 0 {
		msg := "policy.json cannot check attestations (in-toto statements)"
		for j, at := range a.Attestations {
			if len(at.Conditions) > 0 {
				msg += fmt.Sprintf(", nor CEL conditions (%s.attestations[%d].conditions)", field, j)
				break
			}
		}
		c.issue(field+".attestations", never, "%s", msg)
		return au
	}
	if a.SignatureRepository != nil {
		c.issue(field+".source.oci", never, "policy.json reads signatures only from the image's own repository, not %s", a.SignatureRepository)
		return au
	}
	var rekor [][]byte
	if a.Keyless != nil || !a.InsecureIgnoreTlog {
		var err error
		if rekor, err = c.rekorKeys(field, a.TrustedMaterial); err != nil {
			c.issue(field, never, "%v", err)
			return au
		}
	}
	withRekor := func(r Requirement) Requirement {
		if len(rekor) == 1 {
			r.RekorPublicKeyData = rekor[0]
		} else if len(rekor) > 1 {
			r.RekorPublicKeyDatas = rekor
		}
		return r
	}
	switch {
	case len(a.Keys) > 0:
		alt := alternative{rekor: string(joinBytes(rekor))}
		for _, k := range a.Keys {
			der, err := x509.MarshalPKIXPublicKey(k.Key)
			if err != nil {
				c.issue(field+".key", never, "key %s: %v", k.Fingerprint, err)
				return au
			}
			alt.keys = append(alt.keys, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			alt.signers = append(alt.signers, k.Fingerprint)
		}
		alt.req = withRekor(Requirement{Type: TypeSigstoreSigned, KeyDatas: alt.keys, SignedIdentity: identity})
		au.alts = append(au.alts, alt)
	case a.Keyless != nil:
		ca, err := fulcioCAs(a.TrustedMaterial)
		if err != nil {
			c.issue(field+".keyless", never, "%v", err)
			return au
		}
		if !a.InsecureIgnoreSCT {
			c.note("%s.keyless: policy.json does not check the certificate's SCT (signet does)", field)
		}
		for j, id := range a.Keyless.Identities {
			ifield := fmt.Sprintf("%s.keyless.identities[%d]", field, j)
			switch {
			case id.SubjectRegExp != "":
				c.issue(ifield+".subjectRegExp", "the identity is not accepted", "policy.json's fulcio compares subjectEmail exactly; a regular expression cannot be expressed")
				continue
			case id.IssuerRegExp != "":
				c.issue(ifield+".issuerRegExp", "the identity is not accepted", "policy.json's fulcio compares oidcIssuer exactly; a regular expression cannot be expressed")
				continue
			case !isEmail(id.Subject):
				c.issue(ifield+".subject", "the identity is not accepted", "%q: policy.json's fulcio matches email subjects only, not URIs such as CI workflow identities", id.Subject)
				continue
			}
			au.alts = append(au.alts, alternative{
				req:     withRekor(Requirement{Type: TypeSigstoreSigned, Fulcio: &Fulcio{CAData: ca, OIDCIssuer: id.Issuer, SubjectEmail: id.Subject}, SignedIdentity: identity}),
				signers: []string{id.Issuer + "\x00" + id.Subject},
			})
		}
	}
	return au
}

func isEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.Contains(s, "://") && !strings.ContainsAny(s, " /")
}

func joinBytes(bs [][]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// rekorKeys are the trusted material's Rekor public keys as PEM; the
// runtime accepts only ECDSA ones.
func (c converter) rekorKeys(field string, tm root.TrustedMaterial) ([][]byte, error) {
	if tm == nil {
		return nil, errors.New("no trusted material to take the Rekor keys from")
	}
	logs := tm.RekorLogs()
	ids := make([]string, 0, len(logs))
	for id := range logs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var out [][]byte
	for _, id := range ids {
		l := logs[id]
		if _, ok := l.PublicKey.(*ecdsa.PublicKey); !ok {
			c.note("%s: the Rekor log %s has a %T key, which policy.json cannot use; its entries are not accepted", field, l.BaseURL, l.PublicKey)
			continue
		}
		der, err := x509.MarshalPKIXPublicKey(l.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("the Rekor key of %s: %w", l.BaseURL, err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	if len(out) == 0 {
		return nil, errors.New("the trusted root has no Rekor log with an ECDSA key, which policy.json requires")
	}
	return out, nil
}

// fulcioCAs are the trusted material's Fulcio roots and intermediates as
// one PEM bundle.
func fulcioCAs(tm root.TrustedMaterial) ([]byte, error) {
	if tm == nil {
		return nil, errors.New("no trusted material to take the Fulcio CAs from")
	}
	var out []byte
	seen := map[string]bool{}
	add := func(cert *x509.Certificate) {
		if cert == nil || seen[string(cert.Raw)] {
			return
		}
		seen[string(cert.Raw)] = true
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	for _, ca := range tm.FulcioCertificateAuthorities() {
		f, ok := ca.(*root.FulcioCertificateAuthority)
		if !ok {
			continue
		}
		add(f.Root)
		for _, ic := range f.Intermediates {
			add(ic)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("the trusted root has no Fulcio certificate authority")
	}
	return out, nil
}
