package convert

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// Kyverno's Notary attestors (ClusterPolicy verifyImages of type Notary,
// ImageValidatingPolicy attestors[].notary). Semantics followed (Kyverno's
// pkg/image/verifiers/cpol/notary and ivpol/notary): notation-go verifies
// the image's Notary signatures with a trust policy of one statement,
// scope "*", level strict, trusted identities "*", the trust store "ca"
// holding the attestor's certificates (cert then certChain; certs) and, for
// an ImageValidatingPolicy with tsaCerts, the store "tsa" holding them;
// repository and annotations are not used.

// kyNotaryRule refuses or notes what a verifyImages entry of type Notary
// sets that its attestors do not.
func (c *conv) kyNotaryRule(path string, v kyVerify) bool {
	if len(v.Attestations) > 0 {
		c.refuse(path+".attestations", "entry skipped", "Notary attestations (OCI referrers of an artifact type, signed with notation) are not expressible: signet's notation authority verifies image signatures")
		return false
	}
	if v.Repository != "" {
		c.note(path+".repository", "Kyverno's Notary verifier does not use it: Notary signatures are read from the image's own repository, by Kyverno and signet alike")
	}
	return true
}

// kyNotaryAttestor converts one entry of a Notary attestor set.
func (c *conv) kyNotaryAttestor(path, name string, a kyAttestor) ([]v1alpha1.Authority, bool) {
	switch {
	case a.Keys != nil || a.Keyless != nil:
		c.invalid(path, "keys and keyless are not allowed for type Notary (Kyverno rejects the policy): give certificates")
		return nil, false
	case present(a.Attestor):
		c.refuse(path+".attestor", "policy skipped", "nested attestor sets are not expressible")
		return nil, false
	case a.Certificates == nil:
		c.invalid(path, "give certificates")
		return nil, false
	}
	if a.Repository != "" {
		c.note(path+".repository", "Kyverno's Notary verifier does not use it: Notary signatures are read from the image's own repository, by Kyverno and signet alike")
	}
	if present(a.Annotations) {
		c.note(path+".annotations", "Kyverno's Notary verifier does not check them; signet neither")
	}
	certs := a.Certificates
	if certs.Rekor != nil || certs.CTLog != nil {
		c.note(path+".certificates", "rekor and ctlog do not apply to Notary signatures (Kyverno ignores them)")
	}
	n, ok := c.kyNotaryAuthority(path+".certificates", certs.Cert+"\n"+certs.CertChain, "", "")
	if !ok {
		return nil, false
	}
	return []v1alpha1.Authority{{Name: name, Notation: n}}, true
}

// ivNotary is an ImageValidatingPolicy's notary attestor.
type ivNotary struct {
	Certs    *ivValue `json:"certs"`
	TSACerts *ivValue `json:"tsaCerts"`
}

// ivNotaryAttestor converts an ImageValidatingPolicy notary attestor.
func (c *conv) ivNotaryAttestor(path, name string, raw json.RawMessage) ([]v1alpha1.Authority, bool) {
	var a ivNotary
	if !c.decode(raw, &a) {
		return nil, false
	}
	var certs, tsa string
	for _, f := range []struct {
		field string
		v     *ivValue
		into  *string
	}{{"certs", a.Certs, &certs}, {"tsaCerts", a.TSACerts, &tsa}} {
		if f.v == nil {
			continue
		}
		if f.v.Expression != "" {
			c.refuse(fmt.Sprintf("%s.%s.expression", path, f.field), "policy skipped", "certificates computed by CEL (ConfigMaps, resources) are not expressible; give them in value")
			return nil, false
		}
		*f.into = f.v.Value
	}
	n, ok := c.kyNotaryAuthority(path+".certs", certs, path+".tsaCerts", tsa)
	if !ok {
		return nil, false
	}
	return []v1alpha1.Authority{{Name: truncate(sanitizeName(name), 63), Notation: n}}, true
}

// kyNotaryAuthority is the notation authority of Kyverno's trust policy
// for these CA and TSA certificates (PEM, read as Kyverno reads them: an
// unreadable block fails every verification).
func (c *conv) kyNotaryAuthority(caPath, cas, tsaPath, tsas string) (*v1alpha1.NotationAuthority, bool) {
	n := &v1alpha1.NotationAuthority{TrustedIdentities: []string{"*"}}
	for _, f := range []struct {
		path, data string
		into       *string
	}{{caPath, cas, &n.CertificateAuthorities}, {tsaPath, tsas, &n.TimestampAuthorities}} {
		if strings.TrimSpace(f.data) == "" {
			continue
		}
		certs, err := cryptoutils.UnmarshalCertificatesFromPEM([]byte(f.data))
		if err != nil {
			c.invalid(f.path, "%v (Kyverno fails every verification)", err)
			return nil, false
		}
		var ok bool
		if *f.into, ok = c.notationPEM(f.path, certs); !ok {
			return nil, false
		}
	}
	if n.CertificateAuthorities == "" {
		c.invalid(caPath, "no certificate: Kyverno's trust store is empty and no signature verifies")
		return nil, false
	}
	return n, true
}
