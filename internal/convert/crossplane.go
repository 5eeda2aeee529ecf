package convert

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
)

// Crossplane ImageConfig (pkg.crossplane.io/v1beta1). Semantics followed
// (crossplane-runtime pkg/xpkg): matchImages prefixes are raw string
// prefixes of the package reference as written (no "/" boundary: prefix
// reg/acme also matches reg/acme-evil/x); among the ImageConfigs that have
// verification, the longest matching prefix wins and only that one
// applies; its authorities are OR'd; a key comes from one entry of a
// Secret in Crossplane's namespace and needs a transparency log entry; an
// authority with attestations passes when any one of them is found;
// packages no ImageConfig with verification matches are not verified.
var crossplaneFormat = Format{
	Name:        "crossplane",
	Description: "Crossplane ImageConfig (pkg.crossplane.io/v1beta1) verification",
	yaml:        true,
	convert:     convertCrossplane,
}

var crossplaneDialect = dialect{dockerHost: "docker.io", hubAmbiguous: true, suffix: suffixTagOrDigest, subject: "the package reference as written, tag or digest included"}

type xpImageConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		MatchImages []struct {
			Type   string `json:"type"`
			Prefix string `json:"prefix"`
		} `json:"matchImages"`
		Registry *struct {
			Authentication *struct {
				PullSecretRef struct {
					Name string `json:"name"`
				} `json:"pullSecretRef"`
			} `json:"authentication"`
		} `json:"registry"`
		Verification *struct {
			Provider string `json:"provider"`
			Cosign   *struct {
				Authorities []xpAuthority `json:"authorities"`
			} `json:"cosign"`
		} `json:"verification"`
		RewriteImage *struct {
			Prefix string `json:"prefix"`
		} `json:"rewriteImage"`
		Runtime json.RawMessage `json:"runtime"`
	} `json:"spec"`
	Status json.RawMessage `json:"status"`
}

type xpAuthority struct {
	Name string `json:"name"`
	Key  *struct {
		SecretRef struct {
			Name string `json:"name"`
			Key  string `json:"key"`
		} `json:"secretRef"`
		HashAlgorithm string `json:"hashAlgorithm"`
	} `json:"key"`
	Keyless *struct {
		Identities        []pcIdentity `json:"identities"`
		InsecureIgnoreSCT *bool        `json:"insecureIgnoreSCT"`
	} `json:"keyless"`
	Attestations []struct {
		Name          string `json:"name"`
		PredicateType string `json:"predicateType"`
	} `json:"attestations"`
}

// xpConverted is one ImageConfig with verification, converted.
type xpConverted struct {
	source, name string
	prefixes     []string
	spec         v1alpha1.ImagePolicySpec
	authorities  string // JSON, to compare configs
}

func convertCrossplane(c *conv, docs []manifests.Document) {
	var all []xpConverted
	for _, doc := range docs {
		c.source = doc.Source
		switch {
		case doc.APIVersion == "pkg.crossplane.io/v1beta1" && doc.Kind == "ImageConfig":
			var ic xpImageConfig
			if c.decode(doc.JSON, &ic) {
				if x, ok := c.xpImageConfig(&ic); ok {
					all = append(all, x)
				}
			}
		case doc.Kind == "Secret":
		default:
			c.invalid("kind", "%s %s is not a Crossplane ImageConfig", doc.APIVersion, doc.Kind)
		}
	}
	// Longest prefix wins in Crossplane; signet requires every matching
	// policy. So a config excludes every longer prefix of another config
	// that extends one of its own (unless their authorities are the same:
	// then both deciding is the same decision). Refused when the longer
	// prefix is extended in turn by one of the config's own prefixes, which
	// an exclusion cannot give back.
	for i := range all {
		a := &all[i]
		for j, b := range all {
			if i == j {
				continue
			}
			for _, pa := range a.prefixes {
				for _, pb := range b.prefixes {
					c.source = b.source
					switch {
					case pa == pb && i < j && a.authorities != b.authorities:
						c.invalid(fmt.Sprintf("spec.matchImages (prefix %q)", pb), "ImageConfigs %s and %s have the same prefix; Crossplane picks one of them arbitrarily", a.name, b.name)
					case len(pb) > len(pa) && strings.HasPrefix(pb, pa) && a.authorities != b.authorities:
						c.xpExclude(a, b, pa, pb)
					}
				}
			}
		}
	}
	for _, x := range all {
		c.source = x.source
		c.addCluster(c.objectName(x.name), "Crossplane ImageConfig "+x.name, x.spec)
	}
	c.clusterNote("Crossplane installs packages that no ImageConfig with verification matches: to keep that, run signet serve --unmatched=allow (cluster-wide: it also admits unmatched Pod images)")
}

// xpExclude makes config a exclude the packages under b's longer prefix pb,
// which Crossplane verifies with b alone.
func (c *conv) xpExclude(a *xpConverted, b xpConverted, pa, pb string) {
	path := fmt.Sprintf("spec.matchImages (prefix %q)", pb)
	fallback := fmt.Sprintf("packages under %q must satisfy both %s and %s", pb, a.name, b.name)
	for _, own := range a.prefixes {
		if len(own) > len(pb) && strings.HasPrefix(own, pb) {
			c.refuse(path, fallback, "the longer prefix wins in Crossplane, so packages under %q are verified by %s alone, except those under %s's own %q: signet policies cannot exclude a prefix and take a longer one back", pb, b.name, a.name, own)
			return
		}
	}
	globs, dead, reason := translate([]tok{{tLit, pb}, {kind: tAnyStar}}, crossplaneDialect)
	switch {
	case reason != "":
		c.refuse(path, fallback, "the longer prefix wins in Crossplane, so packages under %q are verified by %s alone; signet would also require %s (prefix %q) as %q cannot be excluded exactly: %s", pb, b.name, a.name, pa, pb, reason)
		return
	case dead:
		return
	}
	for _, g := range globs {
		dup := false
		for _, m := range a.spec.ExcludeImages {
			dup = dup || m.Glob == g
		}
		if !dup {
			a.spec.ExcludeImages = append(a.spec.ExcludeImages, v1alpha1.ImageMatcher{Glob: g})
		}
	}
	if len(a.spec.ExcludeImages) > maxExcludes {
		c.refuse(path, fallback, "%s would exclude more than %d patterns", a.name, maxExcludes)
	}
}

func (c *conv) xpImageConfig(ic *xpImageConfig) (xpConverted, bool) {
	x := xpConverted{source: c.source, name: ic.Name}
	if ic.Spec.Registry != nil && ic.Spec.Registry.Authentication != nil {
		c.note("spec.registry.authentication.pullSecretRef", "registry credentials: signet takes them from the object's imagePullSecrets, its service account's, then its own Docker config; put Secret %s's credentials in signet's own Docker config", ic.Spec.Registry.Authentication.PullSecretRef.Name)
	}
	if present(ic.Spec.Runtime) {
		c.note("spec.runtime", "runtime configuration is not about verification: not converted")
	}
	if ic.Spec.RewriteImage != nil {
		if !c.refuse("spec.rewriteImage", "ignored: signet verifies the package reference as written", "Crossplane verifies (and pulls) the rewritten reference %q...; signet does not rewrite references", ic.Spec.RewriteImage.Prefix) {
			return x, false
		}
	}
	v := ic.Spec.Verification
	if v == nil {
		c.note("spec", "ImageConfig %s has no verification: nothing to convert", ic.Name)
		return x, false
	}
	if v.Provider != "Cosign" {
		c.invalid("spec.verification.provider", "%q: Crossplane supports only Cosign", v.Provider)
		return x, false
	}
	if v.Cosign == nil {
		c.invalid("spec.verification.cosign", "cosign verification config is missing")
		return x, false
	}
	if len(ic.Spec.MatchImages) == 0 {
		c.invalid("spec.matchImages", "matchImages should have at least one element")
		return x, false
	}
	x.spec.Match = &v1alpha1.MatchResources{Kinds: []string{"Provider", "Configuration", "Function"}}
	for i, m := range ic.Spec.MatchImages {
		path := fmt.Sprintf("spec.matchImages[%d].prefix", i)
		if m.Type != "" && m.Type != "Prefix" {
			c.invalid(fmt.Sprintf("spec.matchImages[%d].type", i), "%q: only Prefix is supported", m.Type)
			return x, false
		}
		if c.addGlobs(&x.spec, path, m.Prefix, []tok{{tLit, m.Prefix}, {kind: tAnyStar}}, crossplaneDialect) {
			x.prefixes = append(x.prefixes, m.Prefix)
		}
	}
	if len(x.spec.Images) == 0 {
		return x, false
	}
	for i, a := range v.Cosign.Authorities {
		path := fmt.Sprintf("spec.verification.cosign.authorities[%d]", i)
		auths, ok := c.xpAuthority(path, i, a)
		if !ok {
			return x, false
		}
		x.spec.Authorities = append(x.spec.Authorities, auths...)
	}
	if len(x.spec.Authorities) == 0 {
		c.invalid("spec.verification.cosign.authorities", "at least one authority is required")
		return x, false
	}
	js, _ := json.Marshal(x.spec.Authorities)
	x.authorities = string(js)
	return x, true
}

func (c *conv) xpAuthority(path string, i int, a xpAuthority) ([]v1alpha1.Authority, bool) {
	base := v1alpha1.Authority{Name: truncate(a.Name, 55)}
	if base.Name == "" {
		base.Name = fmt.Sprintf("authority-%d", i)
	}
	switch {
	case a.Key != nil && a.Keyless == nil:
		switch strings.ToLower(strings.TrimSpace(a.Key.HashAlgorithm)) {
		case "", "sha256":
		default:
			c.refuse(path+".key.hashAlgorithm", "authority skipped", "%q: signet verifies SHA-256 signatures", a.Key.HashAlgorithm)
			return nil, false
		}
		if a.Key.SecretRef.Key == "" {
			c.invalid(path+".key.secretRef.key", "required")
			return nil, false
		}
		base.Key = c.secretKey(path+".key.secretRef", a.Key.SecretRef.Name, "", a.Key.SecretRef.Key)
		if base.Key == nil {
			return nil, false
		}
	case a.Keyless != nil && a.Key == nil:
		if len(a.Keyless.Identities) == 0 {
			c.invalid(path+".keyless.identities", "at least one identity is required")
			return nil, false
		}
		base.Keyless = &v1alpha1.KeylessAuthority{}
		for j, id := range a.Keyless.Identities {
			sid, ok := c.unanchoredIdentity(fmt.Sprintf("%s.keyless.identities[%d]", path, j), id)
			if !ok {
				return nil, false
			}
			base.Keyless.Identities = append(base.Keyless.Identities, sid)
		}
		if a.Keyless.InsecureIgnoreSCT != nil {
			base.InsecureIgnoreSCT = *a.Keyless.InsecureIgnoreSCT
		}
	default:
		c.invalid(path, "give exactly one of key or keyless")
		return nil, false
	}
	if len(a.Attestations) == 0 {
		return []v1alpha1.Authority{base}, true
	}
	// Any one attestation passes in Crossplane: one authority each, OR'd.
	var out []v1alpha1.Authority
	for j, at := range a.Attestations {
		if at.PredicateType == "" {
			c.invalid(fmt.Sprintf("%s.attestations[%d].predicateType", path, j), "required")
			return nil, false
		}
		one := base
		if len(a.Attestations) > 1 {
			one.Name = fmt.Sprintf("%s-%d", base.Name, j)
		}
		one.Attestations = []v1alpha1.Attestation{{Name: at.Name, PredicateType: at.PredicateType}}
		out = append(out, one)
	}
	return out, true
}
