// Package policy compiles signet's policy objects (ClusterImagePolicy,
// ImagePolicy) into an immutable, indexed Snapshot, finds the policies that
// govern an image, and combines their results into a decision: every
// matching policy must pass (AND); within a policy, threshold of its
// authorities; warn mode and onError soften failures only as each policy
// says; unmatched images follow the cluster setting.
//
// Image patterns select repositories (glob or prefix), optionally narrowed
// by a tag pattern checked after the repository matched. A reference by
// digest alone is selected by every tag pattern of its repository; a tag
// only selects policies and never changes what is verified (the digest).
//
// It imports nothing from Kubernetes client libraries: the CLI uses it on
// files, the server on objects from the API server.
package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/reference"
	"github.com/signet-dev/signet/internal/registry"
	"github.com/signet-dev/signet/internal/verify"
)

// Kinds of policy objects.
const (
	KindClusterImagePolicy = "ClusterImagePolicy"
	KindImagePolicy        = "ImagePolicy"
)

// Object is a policy object as loaded from a file or the API server.
type Object struct {
	Kind      string
	Name      string
	Namespace string // "" for a ClusterImagePolicy
	Spec      v1alpha1.ImagePolicySpec
}

// ID names the object in messages: "ClusterImagePolicy prod-signed" or
// "ImagePolicy team-a/extra".
func (o Object) ID() string {
	if o.Namespace != "" {
		return o.Kind + " " + o.Namespace + "/" + o.Name
	}
	return o.Kind + " " + o.Name
}

// Resolver supplies what policies refer to by name. Its methods may read
// the API server, files or the network: ctx bounds them.
type Resolver interface {
	// SecretKeys returns the values of a Secret's keys (for key.secretRef).
	SecretKeys(ctx context.Context, namespace, name string) (map[string][]byte, error)
	// TrustedMaterial returns a TrustRoot's material; "" is the default
	// (the embedded public-good root unless configured otherwise).
	TrustedMaterial(ctx context.Context, name string) (root.TrustedMaterial, error)
}

// ConfigMapResolver is a Resolver that also reads ConfigMaps (for
// certificate.configMapRef); where a Resolver is not one, ConfigMaps are
// not available.
type ConfigMapResolver interface {
	// ConfigMapData returns a ConfigMap's data (and binaryData).
	ConfigMapData(ctx context.Context, namespace, name string) (map[string][]byte, error)
}

// VersionedMaterial is trusted material that names its version (e.g. the
// digest of its trusted_root.json). A policy's hash, the key of its cached
// results, covers the versions of the material it was compiled with, so a
// change to one trust root re-verifies only what that root verified.
type VersionedMaterial interface {
	root.TrustedMaterial
	TrustVersion() string
}

// WithVersion attaches version to trusted material.
func WithVersion(m root.TrustedMaterial, version string) VersionedMaterial {
	return versioned{m, version}
}

type versioned struct {
	root.TrustedMaterial
	version string
}

func (v versioned) TrustVersion() string { return v.version }

// FieldError is a validation error at a field path.
type FieldError struct {
	Path   string
	Reason string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Reason }

// InvalidError lists every problem of one policy object.
type InvalidError struct {
	Object string
	Errors []*FieldError
}

func (e *InvalidError) Error() string {
	msgs := make([]string, len(e.Errors))
	for i, fe := range e.Errors {
		msgs[i] = fe.Error()
	}
	return fmt.Sprintf("%s is invalid: %s", e.Object, strings.Join(msgs, "; "))
}

// Policy is one compiled policy object.
type Policy struct {
	Object   Object
	patterns []*pattern
	// Verifier checks the authorities; nil when the policy is broken.
	Verifier *verify.Compiled
	// Sources are the signature repositories the authorities read, besides
	// the image's own (nil entry).
	Sources []*registry.Repository
	// SourceSecrets are the pull credentials (Secret data, in order) of
	// the signature repositories whose authorities name
	// source.signaturePullSecrets; signatures there are read with these
	// credentials, not the admitted object's.
	SourceSecrets map[registry.Repository][]map[string][]byte
	// PullSecrets are the Secrets of spec.pullSecrets, one source each:
	// credentials for the images the policy governs, tried after the
	// admitted object's (see check.Decider).
	PullSecrets []registry.CredentialSource
	// Err is set when the policy could not be compiled: images it selects
	// are denied with this error (fail closed).
	Err *InvalidError
	// Hash identifies the policy's content, for caches.
	Hash     string
	selector *selector
	kinds    map[string]bool
	// excludes are spec.excludeImages: matched images it does not govern.
	excludes []*pattern
	settings settings
}

// excluded reports whether spec.excludeImages removes the repository.
func (p *Policy) excluded(host string, segs []string) bool {
	for _, e := range p.excludes {
		if e.matches(host, segs) {
			return true
		}
	}
	return false
}

// Mode, OnError, Digest, Platforms and SignedIdentity are the policy's
// settings, defaults applied (a spelling CompileObject does not know makes
// the policy invalid and leaves the default).
func (p *Policy) Mode() Mode                            { return p.settings.mode }
func (p *Policy) OnError() Action                       { return p.settings.onError }
func (p *Policy) Digest() DigestRule                    { return p.settings.digest }
func (p *Policy) Platforms() Platforms                  { return p.settings.platforms }
func (p *Policy) SignedIdentity() verify.SignedIdentity { return p.settings.signedIdentity }

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

type compiler struct {
	errs []*FieldError
	// secretKeys are the key values read from Secrets, in the order read.
	secretKeys [][]byte
	// trustUsed names the trust roots used ("" the default) with the
	// versions of their material, in the order used.
	trustUsed []string
}

func (c *compiler) fail(path, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// patternError records an image pattern that does not compile, quoting it
// unless it is too long to repeat.
func (c *compiler) patternError(path, text string, err error) {
	if tl := (*tooLongError)(nil); errors.As(err, &tl) {
		c.fail(path, "%v", err)
		return
	}
	c.fail(path, "%q: %v", text, err)
}

// matcher compiles one ImageMatcher at path (spec.images[0]), recording
// what is wrong with it.
func (c *compiler) matcher(path string, m v1alpha1.ImageMatcher) ([]*pattern, bool) {
	pats, field, err := compileMatcher(m)
	switch {
	case err == nil:
		return pats, true
	case field == "":
		c.fail(path, "%v", err)
	case field == "tag":
		c.patternError(path+".tag", m.Tag, err)
	default:
		c.patternError(path+"."+field, orDefault(m.Glob, m.Prefix), err)
	}
	return nil, false
}

// compileMatcher compiles a glob or prefix with its tag into patterns; an
// error names the field at fault (glob, prefix, tag; "" the matcher).
func compileMatcher(m v1alpha1.ImageMatcher) (pats []*pattern, field string, err error) {
	switch {
	case (m.Glob != "") == (m.Prefix != ""):
		return nil, "", errors.New("give exactly one of glob or prefix")
	case m.Glob != "":
		pats, err = compilePatterns(m.Glob, true)
		field = "glob"
	default:
		pats, err = compilePatterns(m.Prefix, false)
		field = "prefix"
	}
	if err != nil {
		return nil, field, err
	}
	if m.Tag == "" {
		return pats, "", nil
	}
	tag, err := compileTag(m.Tag)
	if err != nil {
		return nil, "tag", err
	}
	for _, p := range pats {
		p.tag = tag
	}
	return pats, "", nil
}

// CompileObject compiles one policy object, reading the Secrets and trust
// material it names through r (nil: none are available) within ctx. A
// policy that does not compile is returned with Err set, and still matches
// the images it can select, so they are denied rather than silently
// ungoverned.
func CompileObject(ctx context.Context, o Object, r Resolver) *Policy {
	p := &Policy{Object: o}
	c := &compiler{}
	spec := o.Spec
	if o.Name == "" {
		c.fail("metadata.name", "required")
	}
	switch o.Kind {
	case KindClusterImagePolicy:
		if o.Namespace != "" {
			c.fail("metadata.namespace", "a ClusterImagePolicy has no namespace")
		}
	case KindImagePolicy:
		if o.Namespace == "" {
			c.fail("metadata.namespace", "an ImagePolicy needs a namespace")
		}
	default:
		c.fail("kind", "%q is not a signet policy kind", o.Kind)
	}
	if len(spec.Images) == 0 {
		c.fail("spec.images", "at least one image pattern is required")
	}
	for i, m := range spec.Images {
		pats, ok := c.matcher(fmt.Sprintf("spec.images[%d]", i), m)
		if ok {
			p.patterns = append(p.patterns, pats...)
		}
	}
	for i, m := range spec.ExcludeImages {
		path := fmt.Sprintf("spec.excludeImages[%d]", i)
		if m.Tag != "" {
			// An exclusion by tag would lift the policy from any image
			// whoever writes the reference names so (repo:tag@sha256:...
			// runs the digest, whatever the tag).
			c.fail(path+".tag", "a tag cannot exclude an image: whoever writes the reference chooses its tag")
			continue
		}
		pats, ok := c.matcher(path, m)
		if ok {
			p.excludes = append(p.excludes, pats...)
		}
	}
	p.settings = c.settings(spec.Mode, spec.OnError, spec.Digest, spec.Platforms, spec.SignedIdentity)
	if spec.Match != nil {
		if spec.Match.NamespaceSelector != nil {
			ns := spec.Match.NamespaceSelector
			reqs := make([]requirement, len(ns.MatchExpressions))
			for i, e := range ns.MatchExpressions {
				reqs[i] = requirement{Key: e.Key, Operator: string(e.Operator), Values: e.Values}
			}
			sel, err := compileSelector(ns.MatchLabels, reqs)
			if err != nil {
				c.fail("spec.match.namespaceSelector", "%v", err)
			}
			p.selector = sel
		}
		if len(spec.Match.Kinds) > 0 {
			p.kinds = map[string]bool{}
			for _, k := range spec.Match.Kinds {
				p.kinds[k] = true
			}
		}
	}

	vp := verify.Policy{Name: o.Name, SignedIdentity: p.settings.signedIdentity}
	if spec.Threshold != nil {
		vp.Threshold = int(*spec.Threshold)
		if vp.Threshold < 1 {
			c.fail("spec.threshold", "must be at least 1")
		} else if vp.Threshold > len(spec.Authorities) {
			c.fail("spec.threshold", "%d, but the policy has %d authorities", vp.Threshold, len(spec.Authorities))
		}
	}
	if len(spec.Authorities) == 0 {
		c.fail("spec.authorities", "at least one authority is required")
	}
	sources := map[string]bool{}
	names := map[string]bool{}
	for i, a := range spec.Authorities {
		path := fmt.Sprintf("spec.authorities[%d]", i)
		va, ok := c.authority(ctx, path, a, i, o, r)
		if !ok {
			continue
		}
		if names[va.Name] {
			c.fail(path+".name", "%q is used by another authority", va.Name)
		}
		names[va.Name] = true
		if va.SignatureRepository != nil && !sources[va.SignatureRepository.String()] {
			sources[va.SignatureRepository.String()] = true
			p.Sources = append(p.Sources, va.SignatureRepository)
		}
		if secrets := c.signaturePullSecrets(ctx, path+".source", a.Source, va.SignatureRepository, o, r); len(secrets) > 0 {
			if p.SourceSecrets == nil {
				p.SourceSecrets = map[registry.Repository][]map[string][]byte{}
			}
			repo := *va.SignatureRepository
			p.SourceSecrets[repo] = append(p.SourceSecrets[repo], secrets...)
		}
		vp.Authorities = append(vp.Authorities, va)
	}
	p.PullSecrets = c.pullSecrets(ctx, spec.PullSecrets, o, r)
	if len(c.errs) == 0 {
		v, err := verify.Compile(vp)
		if err != nil {
			c.fail("spec", "%v", err)
		} else {
			p.Verifier = v
		}
	}
	if len(c.errs) > 0 {
		p.Err = &InvalidError{Object: o.ID(), Errors: c.errs}
		p.Verifier = nil
	}
	p.Hash = c.hash(o)
	return p
}

// hash identifies what the policy verifies with, for caches: the object's
// spec, the keys read from Secrets (a rotated key invalidates the results
// verified with the old one) and the versions of the trust material used
// (see VersionedMaterial; material without one relies on
// Config.TrustVersion).
func (c *compiler) hash(o Object) string {
	raw, _ := json.Marshal(struct {
		Kind, Name, Namespace string
		Spec                  v1alpha1.ImagePolicySpec
		SecretKeys            [][]byte
		Trust                 []string
	}{o.Kind, o.Name, o.Namespace, o.Spec, c.secretKeys, c.trustUsed})
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:16])
}

// enum checks a setting compiled into something other than a string (an
// attestation's match); "" is allowed, as the default.
func (c *compiler) enum(path, value string, allowed ...string) {
	if _, err := parseEnum(value, allowed...); err != nil {
		c.fail(path, "%v", err)
	}
}

func (c *compiler) authority(ctx context.Context, path string, a v1alpha1.Authority, i int, o Object, r Resolver) (verify.Authority, bool) {
	before := len(c.errs)
	va := verify.Authority{Name: a.Name, InsecureIgnoreTlog: a.InsecureIgnoreTlog, InsecureIgnoreSCT: a.InsecureIgnoreSCT}
	if va.Name == "" {
		va.Name = fmt.Sprintf("authority-%d", i)
	}
	n := 0
	for _, set := range []bool{a.Key != nil, a.Keyless != nil, a.Certificate != nil, a.Notation != nil, a.Static != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		c.fail(path, "give exactly one of key, keyless, certificate, notation or static")
		return va, false
	}
	switch {
	case a.Key != nil:
		va.Keys = c.keys(ctx, path+".key", a.Key, o, r)
		if !a.InsecureIgnoreTlog {
			va.TrustedMaterial = c.trust(ctx, path+".key.trustRootRef", a.Key.TrustRootRef, r)
		}
	case a.Keyless != nil:
		if a.InsecureIgnoreTlog {
			c.fail(path+".insecureIgnoreTlog", "applies only to key and certificate authorities: keyless signatures are verified against the transparency log")
		}
		if len(a.Keyless.Identities) == 0 {
			c.fail(path+".keyless.identities", "at least one identity is required")
		}
		for j, id := range a.Keyless.Identities {
			ipath := fmt.Sprintf("%s.keyless.identities[%d]", path, j)
			vid := verify.Identity{Issuer: id.Issuer, IssuerRegExp: id.IssuerRegExp, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp}
			c.identity(ipath, vid)
			va.Keyless = appendIdentity(va.Keyless, vid)
		}
		va.TrustedMaterial = c.trust(ctx, path+".keyless.trustRootRef", a.Keyless.TrustRootRef, r)
	case a.Certificate != nil:
		va.Certificate = c.certificate(ctx, path+".certificate", a.Certificate, o, r)
		if !a.InsecureIgnoreTlog {
			va.TrustedMaterial = c.trust(ctx, path+".certificate.trustRootRef", a.Certificate.TrustRootRef, r)
		}
	case a.Notation != nil:
		va.Notation = c.notation(ctx, path+".notation", a.Notation, o, r)
		if a.InsecureIgnoreTlog || a.InsecureIgnoreSCT {
			c.fail(path, "insecureIgnoreTlog and insecureIgnoreSCT do not apply to notation authorities: Notary signatures use no transparency log")
		}
		if len(a.Attestations) > 0 {
			c.fail(path+".attestations", "a notation authority verifies image signatures; Notary attestations are not supported")
		}
		if a.Source != nil {
			c.fail(path+".source", "Notary signatures are read from the image's own repository")
		}
	case a.Static != nil:
		switch a.Static.Action {
		case "pass":
			va.Static = &verify.Static{Pass: true, Message: a.Static.Message}
		case "fail":
			va.Static = &verify.Static{Pass: false, Message: a.Static.Message}
		default:
			c.fail(path+".static.action", "%q is not one of pass, fail", a.Static.Action)
		}
		if len(a.Attestations) > 0 {
			c.fail(path+".attestations", "a static authority checks no attestations")
		}
	}
	for j, at := range a.Attestations {
		apath := fmt.Sprintf("%s.attestations[%d]", path, j)
		if at.PredicateType == "" {
			c.fail(apath+".predicateType", "required")
		}
		c.enum(apath+".match", at.Match, "any", "all")
		for k, cond := range at.Conditions {
			if err := verify.CheckCondition(cond); err != nil {
				c.fail(fmt.Sprintf("%s.conditions[%d]", apath, k), "%v", err)
			}
		}
		va.Attestations = append(va.Attestations, verify.Attestation{Name: at.Name, PredicateType: at.PredicateType, Conditions: at.Conditions, All: at.Match == "all"})
	}
	if a.Source != nil && a.Source.OCI != "" {
		ref, err := reference.Parse(a.Source.OCI)
		switch {
		case err != nil:
			c.fail(path+".source.oci", "%v", err)
		case ref.Tag() != "" || ref.Digest() != "":
			c.fail(path+".source.oci", "%q: give a repository, without tag or digest", a.Source.OCI)
		default:
			repo := registry.Repository{Host: ref.Registry(), Path: ref.Repository()}
			if repo.Host == "docker.io" {
				repo.Host = "index.docker.io"
			}
			va.SignatureRepository = &repo
		}
	}
	return va, len(c.errs) == before
}

func appendIdentity(k *verify.Keyless, id verify.Identity) *verify.Keyless {
	if k == nil {
		k = &verify.Keyless{}
	}
	k.Identities = append(k.Identities, id)
	return k
}

func (c *compiler) identity(path string, id verify.Identity) {
	if err := verify.CheckIdentity(id); err != nil {
		c.fail(path, "%v", err)
	}
}

func (c *compiler) trust(ctx context.Context, path, name string, r Resolver) root.TrustedMaterial {
	if r == nil {
		c.fail(path, "no trust roots are available")
		return nil
	}
	tm, err := r.TrustedMaterial(ctx, name)
	if err != nil {
		c.fail(path, "%v", err)
		return nil
	}
	version := "unversioned" // Config.TrustVersion must cover it
	if v, ok := tm.(VersionedMaterial); ok {
		version = v.TrustVersion()
	}
	c.trustUsed = append(c.trustUsed, name+"="+version)
	return tm
}
