package convert

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
)

// Tanzu Supply Chain Security Tools – Sign: the ClusterImagePolicy named
// image-policy (signing.apps.tanzu.vmware.com/v1beta1). Its source is not
// public; semantics followed (its documentation): namePattern "*" matches
// any characters, "/" included, and a pattern without a tag matches every
// tag (a pattern's tag, after its last "/" and ":", becomes the
// ImageMatcher's tag); an image is verified when one of the keys of a matching pattern
// signed it; excluded namespaces are not enforced at all; unmatched images
// are denied unless allow_unmatched_images. Key signatures are accepted
// without a transparency log entry (the cosign of its era did not look).
var tanzuFormat = Format{
	Name:        "tanzu",
	Description: "Tanzu Supply Chain Security Tools - Sign ClusterImagePolicy (signing.apps.tanzu.vmware.com/v1beta1)",
	yaml:        true,
	convert:     convertTanzu,
}

var tanzuDialect = dialect{dockerHost: "docker.io", hubAmbiguous: true, suffix: suffixNone, subject: "the image name"}

type tzPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Verification struct {
			Exclude *struct {
				Resources struct {
					Namespaces []string `json:"namespaces"`
				} `json:"resources"`
			} `json:"exclude"`
			Keys []struct {
				Name      string `json:"name"`
				PublicKey string `json:"publicKey"`
			} `json:"keys"`
			Images []struct {
				NamePattern string `json:"namePattern"`
				Keys        []struct {
					Name string `json:"name"`
				} `json:"keys"`
				SecretRef *struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"secretRef"`
			} `json:"images"`
		} `json:"verification"`
	} `json:"spec"`
	Status json.RawMessage `json:"status"`
}

func convertTanzu(c *conv, docs []manifests.Document) {
	for _, doc := range docs {
		c.source = doc.Source
		switch {
		case doc.APIVersion == "signing.apps.tanzu.vmware.com/v1beta1" && doc.Kind == "ClusterImagePolicy":
			var p tzPolicy
			if c.decode(doc.JSON, &p) {
				c.tzPolicy(&p)
			}
		case doc.Kind == "Secret":
		default:
			c.invalid("kind", "%s %s is not a Tanzu ClusterImagePolicy (signing.apps.tanzu.vmware.com/v1beta1)", doc.APIVersion, doc.Kind)
		}
	}
	c.clusterNote("Tanzu also reads registry credentials from the imagePullSecrets of the service account image-policy-registry-credentials in its namespace, after the workloads' and the policy's secretRef: to keep that, create it with its Secrets in signet's namespace and run signet serve --fallback-service-account image-policy-registry-credentials (Helm value fallbackServiceAccount)")
	c.clusterNote("Tanzu denies images no pattern matches unless allow_unmatched_images is true: run signet serve --unmatched=deny (the default), or --unmatched=warn where allow_unmatched_images is true (admitted with \"<image> did not match any image policies; admitted because signet runs with --unmatched=warn\")")
}

type tzEntry struct {
	pattern string // without the tag
	tag     string // the tag pattern, "*" for every tag
	keys    string // sorted key names, to compare entries
}

func (c *conv) tzPolicy(p *tzPolicy) {
	if p.Name != "image-policy" {
		c.invalid("metadata.name", "%q: Tanzu enforces only the ClusterImagePolicy named image-policy, so this one decides nothing", p.Name)
		return
	}
	v := p.Spec.Verification
	if v.Exclude != nil && len(v.Exclude.Resources.Namespaces) > 0 {
		flags := make([]string, len(v.Exclude.Resources.Namespaces))
		for i, ns := range v.Exclude.Resources.Namespaces {
			flags[i] = "--exclude-namespace=" + ns
		}
		c.note("spec.verification.exclude.resources.namespaces", "excluded namespaces are not enforced at all: run signet serve %s", strings.Join(flags, " "))
	}
	keys := map[string]string{}
	for i, k := range v.Keys {
		if _, dup := keys[k.Name]; dup {
			c.invalid(fmt.Sprintf("spec.verification.keys[%d].name", i), "%q is defined twice", k.Name)
			return
		}
		keys[k.Name] = strings.TrimSpace(k.PublicKey) + "\n"
	}
	var entries []tzEntry
	for i, im := range v.Images {
		path := fmt.Sprintf("spec.verification.images[%d]", i)
		if strings.Contains(im.NamePattern, "@") {
			c.refuse(path+".namePattern", "entry skipped", "%q names a digest; signet selects images by repository and tag, and verifies the digest each image has", im.NamePattern)
			continue
		}
		// A pattern without a tag matches every tag; so does ":*".
		pattern, tag := im.NamePattern, "*"
		if slash := strings.LastIndex(pattern, "/"); strings.Contains(pattern[slash+1:], ":") {
			name, t, _ := strings.Cut(pattern[slash+1:], ":")
			if t == "" || strings.IndexFunc(t, notTagGlob) >= 0 {
				c.note(path+".namePattern", "%q selects no image in Tanzu (no tag is %q); dropped, which changes nothing", im.NamePattern, t)
				continue
			}
			pattern, tag = pattern[:slash+1]+name, t
			if strings.Trim(tag, "*") == "" {
				tag = "*"
			}
		}
		spec := v1alpha1.ImagePolicySpec{}
		if !c.addGlobs(&spec, path+".namePattern", im.NamePattern, starTokens(pattern), tanzuDialect) {
			continue
		}
		if tag != "*" {
			for j := range spec.Images {
				spec.Images[j].Tag = tag
			}
		}
		if len(im.Keys) == 0 {
			c.invalid(path+".keys", "at least one key is required")
			continue
		}
		var data []string
		var names []string
		for j, k := range im.Keys {
			pem, ok := keys[k.Name]
			if !ok {
				c.invalid(fmt.Sprintf("%s.keys[%d].name", path, j), "%q is not among spec.verification.keys", k.Name)
				return
			}
			data = append(data, pem)
			names = append(names, k.Name)
		}
		sort.Strings(names)
		if im.SecretRef != nil {
			switch {
			case im.SecretRef.Name == "":
				c.invalid(path+".secretRef.name", "a secretRef needs a name")
				continue
			case im.SecretRef.Namespace == "":
				c.note(path+".secretRef", "Secret %s is read from signet's namespace: give its namespace if it is elsewhere", im.SecretRef.Name)
			}
			spec.PullSecrets = []v1alpha1.PullSecretReference{{Name: im.SecretRef.Name, Namespace: im.SecretRef.Namespace}}
		}
		spec.Authorities = []v1alpha1.Authority{{
			Name:               "tanzu-keys",
			Key:                &v1alpha1.KeyAuthority{Data: strings.Join(data, "")},
			InsecureIgnoreTlog: true,
		}}
		e := tzEntry{pattern: pattern, tag: tag, keys: strings.Join(names, ",")}
		conflict := false
		for _, prev := range entries {
			if prev.keys == e.keys || !wildIntersect(prev.pattern, e.pattern) {
				continue
			}
			if wildIntersect(prev.tag, e.tag) {
				conflict = !c.refuse(path+".namePattern", "both entries are required of images both match", "%q and %q can match the same image with different keys: Tanzu accepts either entry's keys, signet requires every matching policy", prev.pattern+":"+prev.tag, e.pattern+":"+e.tag)
				continue
			}
			// Different tags: only an image given by digest alone is
			// selected by both.
			c.note(path+".namePattern", "%q and %q select different tags of the same repositories; an image given by digest alone (no tag) is selected by both in signet and needs a signature by a key of each", prev.pattern+":"+prev.tag, e.pattern+":"+e.tag)
		}
		if conflict {
			continue
		}
		if tag != "*" {
			c.note(path+".namePattern", "%q selects tag %q; an image given by digest alone (no tag to compare) is selected too, so deploying by digest cannot escape it", im.NamePattern, tag)
		}
		entries = append(entries, e)
		name := c.objectName("image-policy", pattern)
		if tag != "*" {
			name = c.objectName("image-policy", pattern, tag)
		}
		c.addCluster(name, "Tanzu ClusterImagePolicy image-policy "+path, spec)
	}
}

// notTagGlob reports whether r cannot appear in a tag pattern: a tag's
// characters and "*".
func notTagGlob(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-' || r == '*')
}

// wildIntersect reports whether some string matches both patterns, where
// "*" matches any run of characters.
func wildIntersect(a, b string) bool {
	type key struct{ i, j int }
	memo := map[key]bool{}
	var f func(i, j int) bool
	f = func(i, j int) bool {
		k := key{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(a) && j == len(b):
			r = true
		case i < len(a) && a[i] == '*':
			r = f(i+1, j) || (j < len(b) && f(i, j+1)) || (j < len(b) && b[j] == '*' && f(i+1, j+1))
		case j < len(b) && b[j] == '*':
			r = f(i, j+1) || (i < len(a) && f(i+1, j))
		case i < len(a) && j < len(b):
			r = a[i] == b[j] && f(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return f(0, 0)
}
