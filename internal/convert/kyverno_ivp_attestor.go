package convert

import (
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	"github.com/signet-dev/signet/api/v1alpha1"
)

// ImageValidatingPolicy attestors. Semantics followed (Kyverno's
// pkg/image/verifiers/ivpol/cosign, which hands identities to cosign's
// CheckOpts): an identity's subjectRegExp and issuerRegExp are unanchored
// regular expressions and win over subject and issuer, which compare
// exactly ("*" is a plain character); an identity without either accepts
// any; the transparency log is required unless ctlog.insecureIgnoreTlog;
// ctlog.url and rekorPubKey name a private Rekor, roots a private Fulcio,
// tuf and trustedRoot another Sigstore trusted root.

type ivAttestor struct {
	Name   string          `json:"name"`
	Cosign *ivCosign       `json:"cosign"`
	Notary json.RawMessage `json:"notary"`
}

type ivCosign struct {
	Key         *ivKey          `json:"key"`
	Keyless     *ivKeyless      `json:"keyless"`
	Certificate *ivCertificate  `json:"certificate"`
	CTLog       *ivCTLog        `json:"ctlog"`
	TUF         *ivTUF          `json:"tuf"`
	TrustedRoot *ivValue        `json:"trustedRoot"`
	Source      *ivSource       `json:"source"`
	Annotations json.RawMessage `json:"annotations"`
}

// ivCertificate is a certificate attestor (kyverno_certificates.go).
type ivCertificate struct {
	Cert      *ivValue `json:"cert"`
	CertChain *ivValue `json:"certChain"`
}

type ivKey struct {
	Data          string `json:"data"`
	Expression    string `json:"expression"`
	KMS           string `json:"kms"`
	HashAlgorithm string `json:"hashAlgorithm"`
}

type ivKeyless struct {
	Identities           []ivIdentity    `json:"identities"`
	Roots                string          `json:"roots"`
	AdditionalExtensions json.RawMessage `json:"additionalExtensions"`
}

type ivIdentity struct {
	Issuer            string `json:"issuer"`
	IssuerRegExp      string `json:"issuerRegExp"`
	Subject           string `json:"subject"`
	SubjectRegExp     string `json:"subjectRegExp"`
	SubjectExpression string `json:"subjectExpression"`
}

type ivCTLog struct {
	URL                string `json:"url"`
	RekorPubKey        string `json:"rekorPubKey"`
	CTLogPubKey        string `json:"ctLogPubKey"`
	TSACertChain       string `json:"tsaCertChain"`
	InsecureIgnoreTlog bool   `json:"insecureIgnoreTlog"`
	InsecureIgnoreSCT  bool   `json:"insecureIgnoreSCT"`
}

type ivTUF struct {
	Mirror string `json:"mirror"`
	Root   *struct {
		Path string `json:"path"`
		Data string `json:"data"`
	} `json:"root"`
}

type ivValue struct {
	Value      string `json:"value"`
	Expression string `json:"expression"`
}

type ivSource struct {
	Repository  string            `json:"repository"`
	PullSecrets []json.RawMessage `json:"PullSecrets"` // the CRD's spelling
	PullSecret2 []json.RawMessage `json:"pullSecrets"` // the documentation's
	TagPrefix   string            `json:"tagPrefix"`
}

// ivPolicyOut is one signet policy: the authorities one validation
// requires.
type ivPolicyOut struct {
	path        string
	authorities []v1alpha1.Authority
	threshold   int32
}

// ivAuthorities turns the validations into policies: each signature or
// attestation check one policy, each payload condition added to the
// attestation check of its attestation.
func (c *conv) ivAuthorities(s *ivSpec, checks []ivCheck) ([]ivPolicyOut, bool) {
	attestors := map[string]int{}
	for i, a := range s.Attestors {
		if _, dup := attestors[a.Name]; dup || a.Name == "" {
			c.invalid(fmt.Sprintf("spec.attestors[%d].name", i), "%q: names must be given and unique", a.Name)
			return nil, false
		}
		attestors[a.Name] = i
	}
	attestations := map[string]int{}
	for i, a := range s.Attestations {
		attestations[a.Name] = i
	}
	converted := map[string][]v1alpha1.Authority{}
	authoritiesOf := func(ck ivCheck) ([]v1alpha1.Authority, bool) {
		var out []v1alpha1.Authority
		for _, name := range ck.attestors {
			i, ok := attestors[name]
			if !ok {
				c.invalid(ck.path, "attestors.%s is not in spec.attestors", name)
				return nil, false
			}
			auths, done := converted[name]
			if !done {
				if auths, ok = c.ivAttestor(fmt.Sprintf("spec.attestors[%d]", i), s.Attestors[i]); !ok {
					return nil, false
				}
				converted[name] = auths
			}
			for _, a := range auths {
				a.Attestations = slices.Clone(a.Attestations)
				out = append(out, a)
			}
		}
		return out, true
	}
	var out []ivPolicyOut
	verified := map[string][]int{} // attestation name → its policies
	for _, ck := range checks {
		switch ck.kind {
		case ivSignatures:
			auths, ok := authoritiesOf(ck)
			if !ok {
				return nil, false
			}
			out = append(out, ivPolicyOut{path: ck.path, authorities: auths, threshold: ck.min})
		case ivAttestationCheck:
			i, ok := attestations[ck.attestation]
			if !ok {
				c.invalid(ck.path, "attestations.%s is not in spec.attestations", ck.attestation)
				return nil, false
			}
			apath := fmt.Sprintf("spec.attestations[%d]", i)
			typ, ok := c.ivAttestationType(apath, s.Attestations[i])
			if !ok {
				return nil, false
			}
			for _, name := range ck.attestors {
				if j, ok := attestors[name]; ok && present(s.Attestors[j].Notary) {
					c.refuse(ck.path, "policy skipped", "attestors.%s is a notary attestor: Kyverno verifies OCI referrers only with it (an in-toto attestation fails the evaluation), and signet's notation authority verifies image signatures only", name)
					return nil, false
				}
			}
			auths, ok := authoritiesOf(ck)
			if !ok {
				return nil, false
			}
			for j := range auths {
				auths[j].Attestations = []v1alpha1.Attestation{{Name: ck.attestation, PredicateType: typ}}
			}
			verified[ck.attestation] = append(verified[ck.attestation], len(out))
			out = append(out, ivPolicyOut{path: ck.path, authorities: auths, threshold: ck.min})
		case ivPayload:
			targets := verified[ck.attestation]
			if len(targets) == 0 {
				if !c.refuse(ck.path, "validation dropped", "extractPayload(image, attestations.%s) needs a verifyAttestationSignatures of that attestation in an earlier validation (Kyverno fails the evaluation otherwise)", ck.attestation) {
					return nil, false
				}
				continue
			}
			for _, t := range targets {
				for j := range out[t].authorities {
					at := &out[t].authorities[j].Attestations[0]
					at.Conditions = append(at.Conditions, ck.condition)
					at.Match = "all"
				}
			}
			c.note(ck.path, "Kyverno tests the statement it verified last; signet requires every statement of the type each attestor signed to meet the condition")
		}
	}
	return out, true
}

// ivAttestationType is an intoto attestation's predicate type.
func (c *conv) ivAttestationType(path string, a ivAttestation) (string, bool) {
	switch {
	case a.Referrer != nil:
		c.refuse(path+".referrer", "policy skipped", "OCI referrers of artifact type %q are not in-toto statements: signet verifies in-toto attestations by predicate type", a.Referrer.Type)
		return "", false
	case a.InToto == nil || a.InToto.Type == "":
		c.invalid(path+".intoto.type", "required")
		return "", false
	case !strings.Contains(a.InToto.Type, "/"):
		c.refuse(path+".intoto.type", "policy skipped", "%q is one of cosign's short names: give the predicate type URI it stands for", a.InToto.Type)
		return "", false
	}
	return a.InToto.Type, true
}

// ivAttestor converts one attestor to signet authorities.
func (c *conv) ivAttestor(path string, a ivAttestor) ([]v1alpha1.Authority, bool) {
	if present(a.Notary) {
		if a.Cosign != nil {
			c.invalid(path, "give cosign or notary, not both")
			return nil, false
		}
		return c.ivNotaryAttestor(path+".notary", a.Name, a.Notary)
	}
	if a.Cosign == nil {
		c.invalid(path, "give cosign or notary")
		return nil, false
	}
	k := a.Cosign
	cpath := path + ".cosign"
	for _, f := range []struct {
		field, why string
		raw        json.RawMessage
	}{
		{"annotations", "signature annotations are not checked by signet", k.Annotations},
	} {
		if present(f.raw) {
			c.refuse(cpath+"."+f.field, "policy skipped", "%s", f.why)
			return nil, false
		}
	}
	name := sanitizeName(a.Name)
	au := v1alpha1.Authority{Name: truncate(name, 63)}
	if src := k.Source; src != nil {
		if src.TagPrefix != "" {
			c.refuse(cpath+".source.tagPrefix", "policy skipped", "signature tags with a prefix are not expressible")
			return nil, false
		}
		if src.Repository != "" {
			au.Source = &v1alpha1.Source{OCI: src.Repository}
		}
		if len(src.PullSecrets)+len(src.PullSecret2) > 0 {
			c.note(cpath+".source.pullSecrets", "Kyverno reads them in the workload's namespace; signet reads registry credentials from the workload's imagePullSecrets and service account (give source.signaturePullSecrets in signet's namespace for a separate signature repository)")
		}
	}
	trustRoot, ok := c.ivTrustRoot(cpath, a.Name, k)
	if !ok {
		return nil, false
	}
	if ct := k.CTLog; ct != nil {
		au.InsecureIgnoreSCT = ct.InsecureIgnoreSCT
		if ct.InsecureIgnoreTlog {
			if k.Keyless != nil {
				c.refuse(cpath+".ctlog.insecureIgnoreTlog", "policy skipped", "signet always checks the transparency log for keyless signatures")
				return nil, false
			}
			au.InsecureIgnoreTlog = true
		}
	}
	switch {
	case k.Certificate != nil && k.Key == nil && k.Keyless == nil:
		ct := k.Certificate
		var cert, chain string
		for _, f := range []struct {
			field string
			v     *ivValue
			into  *string
		}{{"cert", ct.Cert, &cert}, {"certChain", ct.CertChain, &chain}} {
			if f.v == nil {
				continue
			}
			if f.v.Expression != "" {
				c.refuse(cpath+".certificate."+f.field+".expression", "policy skipped", "certificates computed by CEL are not expressible; give the value")
				return nil, false
			}
			*f.into = f.v.Value
		}
		ignoreSCT := k.CTLog != nil && k.CTLog.InsecureIgnoreSCT
		if !c.kyCertificates(cpath+".certificate.cert", cpath+".certificate.certChain", cert, chain, ignoreSCT, au.InsecureIgnoreTlog, &au) {
			return nil, false
		}
		if au.Key != nil {
			au.Key.TrustRootRef = trustRoot
			au.InsecureIgnoreSCT = false
		} else {
			au.Certificate.TrustRootRef = trustRoot
			au.InsecureIgnoreSCT = false
		}
	case k.Key != nil && k.Keyless == nil && k.Certificate == nil:
		key := k.Key
		switch {
		case key.KMS != "":
			c.refuse(cpath+".key.kms", "policy skipped", "KMS keys are not supported by signet; give the public key in data")
			return nil, false
		case key.Expression != "":
			c.refuse(cpath+".key.expression", "policy skipped", "keys computed by CEL (ConfigMaps, resources) are not expressible; give the public key in data")
			return nil, false
		case key.HashAlgorithm != "" && !strings.EqualFold(key.HashAlgorithm, "sha256"):
			c.refuse(cpath+".key.hashAlgorithm", "policy skipped", "%q: signet verifies SHA-256 signatures", key.HashAlgorithm)
			return nil, false
		}
		b, rest := pem.Decode([]byte(key.Data))
		if b == nil {
			c.invalid(cpath+".key.data", "no PEM public key")
			return nil, false
		}
		if extra, _ := pem.Decode(rest); extra != nil {
			c.refuse(cpath+".key.data", "policy skipped", "several PEM blocks: Kyverno reads the first key only; give one attestor per key")
			return nil, false
		}
		au.Key = &v1alpha1.KeyAuthority{Data: string(pem.EncodeToMemory(b)), TrustRootRef: trustRoot}
	case k.Keyless != nil && k.Key == nil && k.Certificate == nil:
		kl := k.Keyless
		if present(kl.AdditionalExtensions) {
			c.refuse(cpath+".keyless.additionalExtensions", "policy skipped", "certificate extension checks are not expressible; fold them into subjectRegExp where the subject carries them")
			return nil, false
		}
		if len(kl.Identities) == 0 {
			c.refuse(cpath+".keyless.identities", "policy skipped", "without identities Kyverno accepts any certificate of the Fulcio; signet requires an identity")
			return nil, false
		}
		var ids []v1alpha1.Identity
		for i, id := range kl.Identities {
			ipath := fmt.Sprintf("%s.keyless.identities[%d]", cpath, i)
			if id.SubjectExpression != "" {
				c.refuse(ipath+".subjectExpression", "policy skipped", "subjects computed by CEL are not expressible")
				return nil, false
			}
			var sid v1alpha1.Identity
			var ok bool
			if sid.Issuer, sid.IssuerRegExp, ok = c.ivIdentityField(ipath, "issuer", id.Issuer, id.IssuerRegExp); !ok {
				return nil, false
			}
			if sid.Subject, sid.SubjectRegExp, ok = c.ivIdentityField(ipath, "subject", id.Subject, id.SubjectRegExp); !ok {
				return nil, false
			}
			if strings.Contains(sid.Subject, "*") {
				c.note(ipath+".subject", "%q: Kyverno (cosign) compares subject exactly, so \"*\" is a plain character; kept so (use subjectRegExp for a pattern)", sid.Subject)
			}
			ids = append(ids, sid)
		}
		au.Keyless = &v1alpha1.KeylessAuthority{Identities: ids, TrustRootRef: trustRoot}
	default:
		c.invalid(cpath, "give exactly one of key, keyless or certificate")
		return nil, false
	}
	return []v1alpha1.Authority{au}, true
}

// ivIdentityField converts an identity's issuer or subject: the regular
// expression (unanchored) when given, else the exact value.
func (c *conv) ivIdentityField(path, field, exact, re string) (string, string, bool) {
	switch {
	case re != "":
		if exact != "" {
			c.note(path+"."+field, "%q is ignored: cosign reads %sRegExp first", exact, field)
		}
		return "", unanchored(re), true
	case exact != "":
		return exact, "", true
	}
	c.refuse(path+"."+field, "policy skipped", "without %s or %sRegExp Kyverno accepts any %s; signet requires one", field, field, field)
	return "", "", false
}

// ivTrustRoot converts the attestor's Sigstore settings (ctlog, roots,
// tuf, trustedRoot) to a TrustRoot, returning its name ("" for signet's
// built-in public-good root).
func (c *conv) ivTrustRoot(cpath, attestor string, k *ivCosign) (string, bool) {
	ct := k.CTLog
	if ct == nil {
		ct = &ivCTLog{}
	}
	privateRekor := ct.RekorPubKey != "" || (ct.URL != "" && strings.TrimSuffix(ct.URL, "/") != publicRekor)
	roots := k.Keyless != nil && k.Keyless.Roots != ""
	sources := 0
	for _, b := range []bool{k.TUF != nil, k.TrustedRoot != nil, roots || privateRekor} {
		if b {
			sources++
		}
	}
	if sources > 1 {
		c.refuse(cpath, "policy skipped", "tuf, trustedRoot and private roots or logs together: a signet TrustRoot holds one Sigstore trusted root")
		return "", false
	}
	from := "Kyverno " + cpath
	switch {
	case k.TUF != nil:
		t := k.TUF
		if t.Root == nil || t.Root.Data == "" {
			c.refuse(cpath+".tuf.root", "policy skipped", "signet needs the repository's initial root.json inline (root.data); a path or URL on Kyverno's pod is not expressible")
			return "", false
		}
		root, err := base64.StdEncoding.DecodeString(t.Root.Data)
		if err != nil {
			c.invalid(cpath+".tuf.root.data", "not base64: %v", err)
			return "", false
		}
		if t.Mirror == "" {
			c.refuse(cpath+".tuf.mirror", "policy skipped", "signet needs the mirror to fetch the trusted root from")
			return "", false
		}
		return c.addTrustRoot(c.objectName("kyverno", attestor, "tuf"), from+".tuf", v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: t.Mirror, Root: root}}), true
	case k.TrustedRoot != nil:
		if k.TrustedRoot.Expression != "" || k.TrustedRoot.Value == "" {
			c.refuse(cpath+".trustedRoot.expression", "policy skipped", "a trusted root computed by CEL is not expressible; give it in value")
			return "", false
		}
		return c.addTrustRoot(c.objectName("kyverno", attestor, "trusted-root"), from+".trustedRoot", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: k.TrustedRoot.Value}}), true
	}
	if !privateRekor && !roots {
		if ct.CTLogPubKey != "" || ct.TSACertChain != "" {
			c.refuse(cpath+".ctlog", "policy skipped", "a private CT log or timestamp authority with the public-good Sigstore: a signet TrustRoot holds one Sigstore")
			return "", false
		}
		return "", true
	}
	if k.Keyless != nil && !roots {
		c.refuse(cpath+".ctlog", "policy skipped", "a private Rekor with the public-good Fulcio: a signet TrustRoot holds one Sigstore (give keyless.roots too)")
		return "", false
	}
	if ct.RekorPubKey == "" {
		c.refuse(cpath+".ctlog.rekorPubKey", "policy skipped", "a private Rekor or Fulcio needs the Rekor's public key: a signet TrustRoot holds one Sigstore")
		return "", false
	}
	b, _ := pem.Decode([]byte(ct.RekorPubKey))
	if b == nil {
		c.invalid(cpath+".ctlog.rekorPubKey", "not a PEM public key")
		return "", false
	}
	url := ct.URL
	if url == "" {
		url = publicRekor
	}
	keys := v1alpha1.TrustRootKeys{TransparencyLogs: []v1alpha1.LogPublicKey{{BaseURL: url, PublicKey: string(pem.EncodeToMemory(b))}}}
	if roots {
		cas, why := kyRoots(k.Keyless.Roots)
		if why != "" {
			c.invalid(cpath+".keyless.roots", "%s", why)
			return "", false
		}
		keys.CertificateAuthorities = cas
		c.note(cpath+".keyless.roots", "signet builds certificate chains from the TrustRoot alone (not the chain stored with a signature): roots must include the intermediates")
		if ct.CTLogPubKey == "" && !ct.InsecureIgnoreSCT {
			c.note(cpath+".ctlog", "no CT log key is given: certificates of the private Fulcio carry SCTs no listed log can verify, so every signature is refused (as in Kyverno) unless ctlog.insecureIgnoreSCT")
		}
	} else if ct.CTLogPubKey != "" {
		c.refuse(cpath+".ctlog.ctLogPubKey", "policy skipped", "a private CT log with the public-good Fulcio: a signet TrustRoot holds one Sigstore")
		return "", false
	}
	if ct.CTLogPubKey != "" {
		b, _ := pem.Decode([]byte(ct.CTLogPubKey))
		if b == nil {
			c.invalid(cpath+".ctlog.ctLogPubKey", "not a PEM public key")
			return "", false
		}
		keys.CTLogs = []v1alpha1.LogPublicKey{{PublicKey: string(pem.EncodeToMemory(b))}}
	}
	if ct.TSACertChain != "" {
		tsa, why := kyRoots(ct.TSACertChain)
		if why != "" || len(tsa) != 1 {
			c.invalid(cpath+".ctlog.tsaCertChain", "not one PEM certificate chain %s", why)
			return "", false
		}
		keys.TimestampAuthorities = tsa
	}
	return c.addTrustRoot(c.objectName("kyverno", attestor, "sigstore"), from, v1alpha1.TrustRootSpec{Keys: &keys}), true
}
