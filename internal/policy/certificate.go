package policy

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/verify"
)

// Keys of a certificate authority's Secret.
const (
	certRootsKey         = "ca.crt"
	certIntermediatesKey = "intermediates.crt"
)

// certificate compiles a certificate authority: its CA roots (inline or
// from a Secret, read as key.secretRef reads its Secret), intermediates
// and identities.
func (c *compiler) certificate(ctx context.Context, path string, ca *v1alpha1.CertificateAuthority, o Object, r Resolver) *verify.Certificate {
	out := &verify.Certificate{}
	var rootsPEM, intermediatesPEM []byte
	rootsField, intermediatesField := path+".roots", path+".intermediates"
	n := 0
	for _, set := range []bool{ca.Roots != "", ca.SecretRef != nil, ca.ConfigMapRef != nil} {
		if set {
			n++
		}
	}
	var (
		values      map[string][]byte
		ref         *v1alpha1.SecretReference
		field, kind string
	)
	switch {
	case n != 1:
		c.fail(path, "give exactly one of roots, secretRef or configMapRef")
	case ca.Roots != "":
		rootsPEM = []byte(ca.Roots)
	case ca.SecretRef != nil:
		ref, field, kind = ca.SecretRef, path+".secretRef", "Secret"
		values = c.secretValues(ctx, field, ref, o, r)
	default:
		ref, field, kind = ca.ConfigMapRef, path+".configMapRef", "ConfigMap"
		values = c.configMapValues(ctx, field, ref, o, r)
	}
	if values != nil {
		key := ref.Key
		if key == "" {
			key = certRootsKey
		}
		rootsField = fmt.Sprintf("%s (%s %s key %s)", field, kind, ref.Name, key)
		if rootsPEM = values[key]; rootsPEM == nil {
			c.fail(field+".key", "%s %s has no key %q", kind, ref.Name, key)
		}
		if v, ok := values[certIntermediatesKey]; ok {
			if ca.Intermediates != "" {
				c.fail(path+".intermediates", "%s %s holds %s too: give intermediates in one place", kind, ref.Name, certIntermediatesKey)
			}
			intermediatesPEM = v
			intermediatesField = fmt.Sprintf("%s (%s %s key %s)", field, kind, ref.Name, certIntermediatesKey)
		}
	}
	if ca.Intermediates != "" {
		intermediatesPEM = []byte(ca.Intermediates)
	}
	if rootsPEM != nil {
		roots, err := verify.ParseCACertificates(rootsPEM)
		if err != nil {
			c.fail(rootsField, "%v", err)
		}
		out.Roots = roots
	}
	if intermediatesPEM != nil {
		im, err := verify.ParseCACertificates(intermediatesPEM)
		if err != nil {
			c.fail(intermediatesField, "%v", err)
		}
		out.Intermediates = im
	}
	if len(ca.Identities) == 0 {
		c.fail(path+".identities", "at least one identity is required")
	}
	for j, id := range ca.Identities {
		vid := verify.CertIdentity{Email: id.Email, EmailRegExp: id.EmailRegExp, URI: id.URI, URIRegExp: id.URIRegExp,
			Hostname: id.Hostname, Subject: id.Subject, SubjectRegExp: id.SubjectRegExp}
		if err := verify.CheckCertIdentity(vid); err != nil {
			c.fail(fmt.Sprintf("%s.identities[%d]", path, j), "%v", err)
		}
		out.Identities = append(out.Identities, vid)
	}
	return out
}

// secretValues reads the Secret ref names for a policy o. Nil after a
// failure.
func (c *compiler) secretValues(ctx context.Context, path string, ref *v1alpha1.SecretReference, o Object, r Resolver) map[string][]byte {
	if r == nil {
		c.fail(path, "secrets are not available here")
		return nil
	}
	return c.objectValues(path, "Secret", ref, o, func(ns string) (map[string][]byte, error) { return r.SecretKeys(ctx, ns, ref.Name) })
}

// configMapValues reads the ConfigMap ref names for a policy o, where
// secretValues would read a Secret of that name. Nil after a failure.
func (c *compiler) configMapValues(ctx context.Context, path string, ref *v1alpha1.SecretReference, o Object, r Resolver) map[string][]byte {
	cr, ok := r.(ConfigMapResolver)
	if !ok {
		c.fail(path, "ConfigMaps are not available here")
		return nil
	}
	return c.objectValues(path, "ConfigMap", ref, o, func(ns string) (map[string][]byte, error) { return cr.ConfigMapData(ctx, ns, ref.Name) })
}

// objectValues reads the values of the Secret or ConfigMap (kind) ref
// names with read: a ClusterImagePolicy from ref.namespace (default:
// signet's), an ImagePolicy from its own namespace only. The values count
// in the policy's hash. Nil after a failure.
func (c *compiler) objectValues(path, kind string, ref *v1alpha1.SecretReference, o Object, read func(namespace string) (map[string][]byte, error)) map[string][]byte {
	ns := ref.Namespace
	if o.Kind == KindImagePolicy {
		if ns != "" && ns != o.Namespace {
			c.fail(path+".namespace", "an ImagePolicy reads %ss of its own namespace only: remove namespace %q (the %s is read from %s)", kind, ns, kind, o.Namespace)
			return nil
		}
		ns = o.Namespace
	}
	values, err := read(ns)
	if err != nil {
		c.fail(path, "%v", err)
		return nil
	}
	for _, v := range values {
		c.secretKeys = append(c.secretKeys, v)
	}
	return values
}

// notation compiles a notation authority: its trust stores (inline, plus a
// Secret's ca.crt, signingAuthority.crt and tsa.crt), identities, level.
func (c *compiler) notation(ctx context.Context, path string, n *v1alpha1.NotationAuthority, o Object, r Resolver) *verify.Notation {
	out := &verify.Notation{TrustedIdentities: n.TrustedIdentities, Level: n.VerificationLevel, Revocation: n.Revocation}
	add := func(field string, data []byte, into *[]*x509.Certificate) {
		if len(data) == 0 {
			return
		}
		parse := verify.ParseTrustStoreCertificates
		if into == &out.TSAs {
			parse = verify.ParseCACertificates
		}
		certs, err := parse(data)
		if err != nil {
			c.fail(field, "%v", err)
			return
		}
		*into = append(*into, certs...)
	}
	add(path+".certificateAuthorities", []byte(n.CertificateAuthorities), &out.CAs)
	add(path+".signingAuthorities", []byte(n.SigningAuthorities), &out.SigningAuthorities)
	add(path+".timestampAuthorities", []byte(n.TimestampAuthorities), &out.TSAs)
	if n.SecretRef != nil {
		if values := c.secretValues(ctx, path+".secretRef", n.SecretRef, o, r); values != nil {
			field := func(key string) string {
				return fmt.Sprintf("%s.secretRef (Secret %s key %s)", path, n.SecretRef.Name, key)
			}
			add(field("ca.crt"), values["ca.crt"], &out.CAs)
			add(field("signingAuthority.crt"), values["signingAuthority.crt"], &out.SigningAuthorities)
			add(field("tsa.crt"), values["tsa.crt"], &out.TSAs)
		}
	}
	if len(out.CAs) == 0 && len(out.SigningAuthorities) == 0 {
		c.fail(path, "no CA or signing authority certificate: give certificateAuthorities, signingAuthorities or a secretRef holding ca.crt or signingAuthority.crt")
	}
	if len(n.TrustedIdentities) == 0 {
		c.fail(path+".trustedIdentities", `at least one identity is required ("*" trusts every identity the trust stores certify)`)
	}
	for i, id := range n.TrustedIdentities {
		if err := verify.CheckNotationIdentity(id); err != nil {
			c.fail(fmt.Sprintf("%s.trustedIdentities[%d]", path, i), "%v", err)
		}
	}
	if len(n.TrustedIdentities) > 1 && slices.Contains(n.TrustedIdentities, "*") {
		c.fail(path+".trustedIdentities", `"*" must be the only identity`)
	}
	c.enum(path+".verificationLevel", n.VerificationLevel, verify.NotationLevels...)
	c.enum(path+".revocation", n.Revocation, verify.NotationActions...)
	return out
}
