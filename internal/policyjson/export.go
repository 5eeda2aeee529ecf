package policyjson

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/signet-dev/signet/internal/policy"
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
	// Runtime is the oldest containers-image the file must load in; the
	// zero value is DefaultRuntime (CRI-O 1.28). What it cannot read
	// (several keys or Rekor logs in one requirement before v5.33) is an
	// issue.
	Runtime Runtime
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

// Export translates the policies that apply in o.Target into a policy.json,
// reading the key Secrets and trust material of their authorities through
// o.Resolver within ctx. It returns a Result even when it refuses (with
// FailClosed, the issues and notes) and an error wrapping
// ErrNotExpressible.
func Export(ctx context.Context, policies []*policy.Policy, o Options) (*Result, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	t := o.Target
	if t.Kind == "" {
		t.Kind = "Pod"
	}
	unmatched := reject
	if o.Config.Unmatched == policy.ActionAllow || o.Config.Unmatched == policy.ActionWarn {
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
		e := &entry{id: p.Object.ID(), namespaced: p.Object.Kind == policy.KindImagePolicy}
		c := converter{id: e.id, notes: &res.Notes, issues: &res.Issues, runtime: o.Runtime.orDefault()}
		e.scopes = c.scopes(p)
		e.excludes = c.excludes(p)
		e.outcome = c.requirements(ctx, p, o.Resolver)
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
		governed, byCluster := false, false
		for _, e := range entries {
			if e.governs(name) {
				governed = true
				byCluster = byCluster || !e.namespaced
				reqs = append(reqs, e.outcome...)
			}
		}
		if governed && !byCluster {
			// An ImagePolicy only adds requirements: what no cluster
			// policy governs also follows the unmatched setting.
			reqs = append(reqs, unmatched)
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
				// Attachments are read per repository: repo:tag needs repo.
				if tag := scopeTag(name); tag != "" {
					name = strings.TrimSuffix(name, ":"+tag)
				}
				if !slices.Contains(signed, name) {
					signed = append(signed, name)
				}
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
	// namespaced: an ImagePolicy, which only adds requirements to what the
	// cluster's policies and unmatched setting decide.
	namespaced bool
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
// deeper subdomain, ports ignored; repo:tag holds that tag of repo only,
// and is in every scope holding repo).
func contains(a, b string) bool {
	switch {
	case a == "" || a == b:
		return true
	case b == "" || scopeTag(a) != "":
		return false
	}
	if tag := scopeTag(b); tag != "" {
		b = strings.TrimSuffix(b, ":"+tag)
		if a == b {
			return true
		}
	}
	switch {
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

// scopeTag is the tag a repo:tag scope names ("" for other scopes): what
// follows a ":" after the last "/" (a host's port has no "/" after it).
func scopeTag(s string) string {
	slash := strings.LastIndex(s, "/")
	if slash < 0 {
		return ""
	}
	_, tag, _ := strings.Cut(s[slash+1:], ":")
	return tag
}

// converter translates one policy, recording issues and notes.
type converter struct {
	id     string
	notes  *[]string
	issues *[]Issue
	// runtime is the oldest runtime the file is for.
	runtime Runtime
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
		if pat.Tag != "" {
			out = append(out, tagScopes(pat)...)
			continue
		}
		out = append(out, patternScope(pat))
	}
	return out
}

// tagScopes translates a pattern with a tag. policy.json names one tag of
// one repository (repo:tag, exactly that repository), and a pull by digest
// never uses a repo:tag scope; signet's tag pattern also selects the
// repository's images given by digest alone. So a literal repository and
// tag become the exact scope repo:tag and the widened scope repo (the
// images by digest, and with them every other tag); anything else the
// nearest repository scope, widened to every tag.
func tagScopes(p policy.Pattern) []scope {
	p.Field = p.TagField
	base := patternScope(p)
	literal := p.Glob && !p.All && !strings.Contains(p.Host, "*") && !strings.Contains(p.Tag, "*") && len(p.Segments) > 0
	for _, seg := range p.Segments {
		literal = literal && !strings.Contains(seg, "*")
	}
	if !literal {
		base.widened = fmt.Sprintf("%q: policy.json names one tag of one repository (repo:tag); the nearest scope is %s, every tag", p.Tag, scopeName(base.name))
		return []scope{base}
	}
	return []scope{
		{name: base.name + ":" + p.Tag, field: p.Field},
		{name: base.name, field: p.Field, widened: fmt.Sprintf("%q selects the images of %s given by digest alone, which the runtime checks against the scope %s (every tag, and the repositories below), never %s:%s", p.Tag, base.name, base.name, base.name, p.Tag)},
	}
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
	var out []string
	for _, pat := range p.Exclusions() {
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
