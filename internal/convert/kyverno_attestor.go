package convert

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// kyAttestor converts one Kyverno attestor (keys or keyless, with their
// Rekor and CT log settings) to signet authorities.
func (c *conv) kyAttestor(path, name string, a kyAttestor, repository string) ([]v1alpha1.Authority, bool) {
	if a.Certificates != nil {
		if a.Keys != nil || a.Keyless != nil {
			c.invalid(path, "give exactly one of keys, keyless or certificates")
			return nil, false
		}
		return c.kyCertificatesAttestor(path, name, a, repository)
	}
	for field, given := range map[string]bool{"attestor": present(a.Attestor), "annotations": present(a.Annotations)} {
		if given {
			c.refuse(path+"."+field, "policy skipped", "not expressible in signet (nested attestor sets and signature annotations)")
			return nil, false
		}
	}
	if a.Repository != "" {
		repository = a.Repository
	}
	var src *v1alpha1.Source
	if repository != "" {
		src = &v1alpha1.Source{OCI: repository}
	}
	switch {
	case a.Keys != nil && a.Keyless == nil:
		k := a.Keys
		if k.KMS != "" {
			c.refuse(path+".keys.kms", "policy skipped", "KMS keys are not supported by signet; give publicKeys")
			return nil, false
		}
		if !strings.EqualFold(k.SignatureAlgorithm, "sha256") && k.SignatureAlgorithm != "" {
			c.refuse(path+".keys.signatureAlgorithm", "policy skipped", "%q: signet verifies SHA-256 signatures", k.SignatureAlgorithm)
			return nil, false
		}
		var keys []*v1alpha1.KeyAuthority
		switch {
		case strings.HasPrefix(k.PublicKeys, "k8s://"):
			ns, n, _ := strings.Cut(strings.TrimPrefix(k.PublicKeys, "k8s://"), "/")
			if ka := c.secretKey(path+".keys.publicKeys", n, ns, kySecretKey); ka != nil {
				keys = append(keys, ka)
			}
		case k.PublicKeys != "":
			rest := []byte(k.PublicKeys)
			for {
				var b *pem.Block
				b, rest = pem.Decode(rest)
				if b == nil {
					break
				}
				keys = append(keys, &v1alpha1.KeyAuthority{Data: string(pem.EncodeToMemory(b))})
			}
			if len(keys) == 0 {
				c.invalid(path+".keys.publicKeys", "no PEM public key")
			}
		case k.Secret != nil:
			if ka := c.secretKey(path+".keys.secret", k.Secret.Name, k.Secret.Namespace, kySecretKey); ka != nil {
				keys = append(keys, ka)
			}
		default:
			c.invalid(path+".keys", "give publicKeys, secret or kms")
		}
		if len(keys) == 0 {
			return nil, false
		}
		var trustRoot string
		if r := k.Rekor; r != nil && !r.IgnoreTlog && r.PubKey != "" {
			// A private Rekor for key signatures: its key dates them.
			b, _ := pem.Decode([]byte(r.PubKey))
			if b == nil {
				c.invalid(path+".keys.rekor.pubkey", "not a PEM public key")
				return nil, false
			}
			trustRoot = c.addTrustRoot(c.objectName("kyverno", name, "rekor"), "Kyverno "+path+".keys.rekor",
				v1alpha1.TrustRootSpec{Keys: &v1alpha1.TrustRootKeys{TransparencyLogs: []v1alpha1.LogPublicKey{{BaseURL: r.URL, PublicKey: string(pem.EncodeToMemory(b))}}}})
			rk := *r
			rk.PubKey, rk.URL = "", ""
			k.Rekor = &rk
		}
		ignoreTlog, ignoreSCT, ok := c.kyLogs(path+".keys", k.Rekor, k.CTLog, false)
		if !ok {
			return nil, false
		}
		for _, ka := range keys {
			ka.TrustRootRef = trustRoot
		}
		var out []v1alpha1.Authority
		for i, ka := range keys {
			n := name
			if len(keys) > 1 {
				n = fmt.Sprintf("%s-key-%d", name, i)
			}
			out = append(out, v1alpha1.Authority{Name: n, Key: ka, Source: src, InsecureIgnoreTlog: ignoreTlog, InsecureIgnoreSCT: ignoreSCT})
		}
		return out, true
	case a.Keyless != nil && a.Keys == nil:
		k := *a.Keyless
		var trustRoot string
		if k.Roots != "" {
			var ok bool
			if trustRoot, ok = c.kyPrivateSigstore(path+".keyless", name, &k); !ok {
				return nil, false
			}
		}
		if present(k.AdditionalExtensions) {
			if !c.refuse(path+".keyless.additionalExtensions", "ignored: any certificate of the identity passes", "certificate extension checks (workflow trigger, repository, ...) are not expressible; fold them into subjectRegExp where the subject carries them") {
				return nil, false
			}
		}
		_, ignoreSCT, ok := c.kyLogs(path+".keyless", k.Rekor, k.CTLog, true)
		if !ok {
			return nil, false
		}
		id := v1alpha1.Identity{}
		if id.Issuer, id.IssuerRegExp, ok = c.kyIdentityField(path, "issuer", k.Issuer, k.IssuerRegExp, "without an issuer Kyverno accepts any OIDC issuer"); !ok {
			return nil, false
		}
		if id.Subject, id.SubjectRegExp, ok = c.kyIdentityField(path, "subject", k.Subject, k.SubjectRegExp, "without a subject Kyverno accepts any identity of the issuer"); !ok {
			return nil, false
		}
		return []v1alpha1.Authority{{Name: name, Keyless: &v1alpha1.KeylessAuthority{TrustRootRef: trustRoot, Identities: []v1alpha1.Identity{id}}, Source: src, InsecureIgnoreSCT: ignoreSCT}}, true
	}
	c.invalid(path, "give exactly one of keys or keyless")
	return nil, false
}

// kyCertificatesAttestor converts a Cosign certificates attestor
// (kyverno_certificates.go): cert becomes a keys attestor of its public
// key, with the attestor's rekor and ctlog; certChain alone a certificate
// authority.
func (c *conv) kyCertificatesAttestor(path, name string, a kyAttestor, repository string) ([]v1alpha1.Authority, bool) {
	ct := a.Certificates
	cp := path + ".certificates"
	ignoreSCT := ct.CTLog != nil && ct.CTLog.IgnoreSCT
	ignoreTlog := ct.Rekor != nil && ct.Rekor.IgnoreTlog
	var au v1alpha1.Authority
	if !c.kyCertificates(cp+".cert", cp+".certChain", ct.Cert, ct.CertChain, ignoreSCT, ignoreTlog, &au) {
		return nil, false
	}
	if au.Key != nil {
		keys := a
		keys.Certificates = nil
		keys.Keys = &kyKeys{PublicKeys: au.Key.Data, Rekor: ct.Rekor, CTLog: ct.CTLog}
		return c.kyAttestor(path, name, keys, repository)
	}
	for field, given := range map[string]bool{"attestor": present(a.Attestor), "annotations": present(a.Annotations)} {
		if given {
			c.refuse(path+"."+field, "policy skipped", "not expressible in signet (nested attestor sets and signature annotations)")
			return nil, false
		}
	}
	if a.Repository != "" {
		repository = a.Repository
	}
	if repository != "" {
		au.Source = &v1alpha1.Source{OCI: repository}
	}
	au.Name = name
	if r := ct.Rekor; r != nil && !r.IgnoreTlog && r.PubKey != "" {
		b, _ := pem.Decode([]byte(r.PubKey))
		if b == nil {
			c.invalid(cp+".rekor.pubkey", "not a PEM public key")
			return nil, false
		}
		au.Certificate.TrustRootRef = c.addTrustRoot(c.objectName("kyverno", name, "rekor"), "Kyverno "+cp+".rekor",
			v1alpha1.TrustRootSpec{Keys: &v1alpha1.TrustRootKeys{TransparencyLogs: []v1alpha1.LogPublicKey{{BaseURL: r.URL, PublicKey: string(pem.EncodeToMemory(b))}}}})
		rk := *r
		rk.PubKey, rk.URL = "", ""
		ct = &kyCertificates{Rekor: &rk, CTLog: ct.CTLog}
	}
	var ctlog *kyCTLog
	if ct.CTLog != nil {
		// ignoreSCT was taken above; the certificate authority has no CT log.
		cl := *ct.CTLog
		cl.IgnoreSCT = false
		ctlog = &cl
	}
	var ok bool
	if au.InsecureIgnoreTlog, _, ok = c.kyLogs(cp, ct.Rekor, ctlog, false); !ok {
		return nil, false
	}
	return []v1alpha1.Authority{au}, true
}

// kyIdentityField converts a keyless issuer or subject: a Kyverno wildcard
// (field) or an unanchored regular expression (fieldRegExp), one of them
// required. without says what Kyverno accepts when both are missing.
func (c *conv) kyIdentityField(path, field, value, re, without string) (exact, regex string, ok bool) {
	switch {
	case re != "" && value != "":
		c.invalid(path+".keyless", "give %s or %sRegExp, not both", field, field)
		return "", "", false
	case re != "":
		return "", unanchored(re), true
	case value != "":
		exact, regex = wildcard(value)
		return exact, regex, true
	}
	c.refuse(path+".keyless."+field, "policy skipped", "%s; signet requires one (give %s or %sRegExp)", without, field, field)
	return "", "", false
}

// wildcard converts a Kyverno wildcard ("*" any run, "?" one character)
// into an exact value, or a regular expression over the whole value.
func wildcard(s string) (exact, re string) {
	if !strings.ContainsAny(s, "*?") {
		return s, ""
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*':
			b.WriteString("(?s:.*)")
		case '?':
			b.WriteString("(?s:.)")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	return "", b.String()
}

// kyLogs converts rekor and ctlog blocks.
func (c *conv) kyLogs(path string, rekor *kyRekor, ctlog *kyCTLog, keyless bool) (ignoreTlog, ignoreSCT, ok bool) {
	if rekor != nil {
		switch {
		case rekor.IgnoreTlog && keyless:
			if !c.refuse(path+".rekor.ignoreTlog", "the transparency log is required", "signet always checks the transparency log for keyless signatures") {
				return false, false, false
			}
		case rekor.IgnoreTlog:
			ignoreTlog = true
		case rekor.PubKey != "" || (rekor.URL != "" && rekor.URL != publicRekor):
			if !c.refuse(path+".rekor", "the default trust root's transparency logs are used", "a private Rekor needs a signet TrustRoot, which only keyless authorities can name") {
				return false, false, false
			}
		}
	}
	if ctlog != nil {
		ignoreSCT = ctlog.IgnoreSCT
		if ctlog.PubKey != "" || ctlog.TSACertChain != "" {
			if !c.refuse(path+".ctlog", "the default trust root's CT logs and timestamp authorities are used", "private CT logs and timestamp authorities need a signet TrustRoot") {
				return false, false, false
			}
		}
	}
	return ignoreTlog, ignoreSCT, true
}

// kyPrivateSigstore converts a keyless attestor of a private Sigstore
// (custom Fulcio roots) into a TrustRoot of keys: the roots, with the
// Rekor key the attestor gives (required: signet's TrustRoot cannot mix a
// private Fulcio with the public-good logs), its CT log key and
// timestamp authority when given. It clears what it took from k, so
// kyLogs does not refuse it.
func (c *conv) kyPrivateSigstore(path, name string, k *kyKeyless) (string, bool) {
	cas, why := kyRoots(k.Roots)
	if why != "" {
		c.invalid(path+".roots", "%s", why)
		return "", false
	}
	if k.Rekor == nil || k.Rekor.PubKey == "" {
		// With --allow-lossy the attestor falls back to the public-good
		// Sigstore, which verifies none of the private Fulcio's certificates.
		k.Roots = ""
		return "", c.refuse(path+".rekor.pubkey", "the public-good Sigstore is used", "custom Fulcio roots with the public-good Rekor: a signet TrustRoot holds one Sigstore, so give the private Rekor's pubkey")
	}
	b, _ := pem.Decode([]byte(k.Rekor.PubKey))
	if b == nil {
		c.invalid(path+".rekor.pubkey", "not a PEM public key")
		return "", false
	}
	spec := v1alpha1.TrustRootKeys{CertificateAuthorities: cas,
		TransparencyLogs: []v1alpha1.LogPublicKey{{BaseURL: k.Rekor.URL, PublicKey: string(pem.EncodeToMemory(b))}}}
	rekor := *k.Rekor
	rekor.PubKey, rekor.URL = "", ""
	k.Rekor = &rekor
	if ct := k.CTLog; ct != nil {
		if ct.PubKey != "" {
			b, _ := pem.Decode([]byte(ct.PubKey))
			if b == nil {
				c.invalid(path+".ctlog.pubkey", "not a PEM public key")
				return "", false
			}
			spec.CTLogs = []v1alpha1.LogPublicKey{{PublicKey: string(pem.EncodeToMemory(b))}}
		}
		if ct.TSACertChain != "" {
			tsa, why := kyRoots(ct.TSACertChain)
			if why != "" || len(tsa) != 1 {
				c.invalid(path+".ctlog.tsaCertChain", "not one PEM certificate chain %s", why)
				return "", false
			}
			spec.TimestampAuthorities = tsa
		}
		clean := *ct
		clean.PubKey, clean.TSACertChain = "", ""
		k.CTLog = &clean
	}
	if len(spec.CTLogs) == 0 && (k.CTLog == nil || !k.CTLog.IgnoreSCT) {
		c.note(path+".ctlog", "no CT log key is given: certificates of the private Fulcio carry SCTs no listed log can verify, so every signature is refused (as in Kyverno) unless ctlog.ignoreSCT")
	}
	c.note(path+".roots", "signet builds certificate chains from the TrustRoot alone (not the chain stored with a signature): roots must include the intermediates")
	return c.addTrustRoot(c.objectName("kyverno", name, "sigstore"), "Kyverno "+path, v1alpha1.TrustRootSpec{Keys: &spec}), true
}

// kyRoots reads PEM certificates as certificate authorities: each
// self-signed certificate is a root, and the others must form one line of
// intermediates below a single root (ordered child first, as TrustRoot
// chains are).
func kyRoots(data string) ([]v1alpha1.CertificateAuthorityKey, string) {
	certs, why := kyPEMCertificates(data)
	if why != "" && why != noPEMCertificate {
		return nil, why
	}
	var roots, inter []*x509.Certificate
	for _, cert := range certs {
		if cert.CheckSignatureFrom(cert) == nil && bytes.Equal(cert.RawIssuer, cert.RawSubject) {
			roots = append(roots, cert)
		} else {
			inter = append(inter, cert)
		}
	}
	switch {
	case len(roots) == 0:
		return nil, "no self-signed root certificate"
	case len(inter) > 0 && len(roots) > 1:
		return nil, "intermediates with several roots: give one chain per attestor"
	}
	var out []v1alpha1.CertificateAuthorityKey
	if len(inter) == 0 {
		for _, r := range roots {
			out = append(out, v1alpha1.CertificateAuthorityKey{CertChain: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw}))})
		}
		return out, ""
	}
	// Walk down from the root: each step is the one certificate it signed.
	chain := []*x509.Certificate{roots[0]}
	for len(inter) > 0 {
		i := slices.IndexFunc(inter, func(c *x509.Certificate) bool { return c.CheckSignatureFrom(chain[len(chain)-1]) == nil })
		if i < 0 {
			return nil, "intermediates that do not chain to the root"
		}
		chain = append(chain, inter[i])
		inter = slices.Delete(inter, i, i+1)
	}
	var pemChain []byte
	for i := len(chain) - 1; i >= 0; i-- {
		pemChain = append(pemChain, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[i].Raw})...)
	}
	return []v1alpha1.CertificateAuthorityKey{{CertChain: string(pemChain)}}, ""
}
