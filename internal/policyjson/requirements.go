package policyjson

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/internal/verify"
)

// alternative is one sigstoreSigned requirement an authority accepts.
type alternative struct {
	req Requirement
	// field is the signet field it comes from.
	field string
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
func (c converter) requirements(ctx context.Context, p *policy.Policy, r policy.Resolver) []Requirement {
	spec := p.Object.Spec
	if p.Err != nil {
		if p.Mode() == policy.ModeWarn {
			c.note("the policy is invalid and in warn mode: signet admits with a warning, policy.json accepts")
			return []Requirement{accept}
		}
		c.note("the policy is invalid (%v): the images it selects are rejected, as signet denies them", p.Err)
		return []Requirement{reject}
	}
	if p.Mode() == policy.ModeWarn {
		c.note("warn mode: signet admits with a warning, policy.json accepts")
		return []Requirement{accept}
	}
	if p.Digest() == policy.DigestRequire {
		c.issue("spec.digest", "the images it selects are rejected", "policy.json cannot require references by digest")
		return []Requirement{reject}
	}
	auths, err := p.Authorities(ctx, r)
	if err != nil {
		c.note("the policy no longer compiles (%v): the images it selects are rejected", err)
		return []Requirement{reject}
	}
	identity := &SignedIdentity{Type: "matchRepository"}
	switch p.SignedIdentity() {
	case verify.SignedIdentityOff:
		c.note("signedIdentity off: policy.json always checks the signed reference; matchRepository is used (a signature copied from another repository is rejected)")
	case verify.MatchExact:
		identity.Type = "matchExact"
	case verify.MatchRepoDigestOrExact:
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
			field := "spec.authorities"
			if len(alts) == 1 {
				field = alts[0].field
			}
			return c.fit(field, m)
		}
		c.issue("spec.authorities", "require every one of them", "policy.json cannot express a choice between %d ways of signing (%s): requirements of a scope must all pass, and a sigstoreSigned requirement can only list keys", len(alts), describe(alts))
		return c.fitEach(alts)
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
			field := au.field
			if len(au.alts) == 1 {
				field = au.alts[0].field
			}
			out = append(out, c.fit(field, m)...)
			continue
		}
		c.issue(au.field, "require every one of them", "policy.json cannot express a choice between %d ways of signing (%s)", len(au.alts), describe(au.alts))
		out = append(out, c.fitEach(au.alts)...)
	}
	return out
}

// fitEach is the AND of the alternatives, each fitted to the runtime.
func (c converter) fitEach(alts []alternative) []Requirement {
	var out []Requirement
	for _, a := range alts {
		out = append(out, c.fit(a.field, a.req)...)
	}
	return out
}

// fit writes a requirement with the fields the target runtime reads:
// keyData for one key, keyDatas for several. A runtime before
// containers-image v5.33 reads no keyDatas and a scope's requirements all
// must pass, so "any one of several keys" cannot be written for it: that
// is an issue whose stricter fallback requires a signature by every key.
func (c converter) fit(field string, r Requirement) []Requirement {
	switch {
	case len(r.KeyDatas) == 1:
		r.KeyData, r.KeyDatas = r.KeyDatas[0], nil
		return []Requirement{r}
	case len(r.KeyDatas) < 2 || c.runtime.readsLists():
		return []Requirement{r}
	}
	c.issue(field, "require a signature by every one of the keys", "keyDatas (a signature by any one of %d keys) is read by containers-image v5.%d (CRI-O 1.32) and newer; %s, the oldest runtime the file is for, rejects the whole file with it", len(r.KeyDatas), minImageKeyDatas, c.runtime.describe())
	out := make([]Requirement, 0, len(r.KeyDatas))
	for _, k := range r.KeyDatas {
		q := r
		q.KeyData, q.KeyDatas = k, nil
		out = append(out, q)
	}
	return out
}

func describe(alts []alternative) string {
	var parts []string
	for _, a := range alts {
		switch {
		case a.req.Fulcio != nil:
			parts = append(parts, "keyless "+a.req.Fulcio.SubjectEmail)
		case a.req.PKI != nil:
			parts = append(parts, "certificate "+strings.TrimSpace(a.req.PKI.SubjectEmail+" "+a.req.PKI.SubjectHostname))
		default:
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

// authority translates one key, keyless or certificate authority; an authority that
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
	if a.Certificate != nil {
		return c.certificate(field, a, identity)
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
		alt := alternative{field: field + ".key", rekor: string(joinBytes(rekor))}
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
				field:   ifield,
				signers: []string{id.Issuer + "\x00" + id.Subject},
			})
		}
	}
	return au
}

// certificate translates a certificate authority into pki requirements,
// one per identity. containers-image refuses Rekor keys with pki and checks
// no log, so only an authority with insecureIgnoreTlog can be written; it
// then checks the chain at the current time, as signet does without a log.
func (c converter) certificate(field string, a verify.Authority, identity *SignedIdentity) authority {
	au := authority{field: field}
	never := "the authority never passes"
	if !c.runtime.readsPKI() {
		c.issue(field+".certificate", never, "pki is read by containers-image v5.%d (CRI-O 1.34) and newer; %s, the oldest runtime the file is for, rejects the whole file with it", minImagePKI, c.runtime.describe())
		return au
	}
	if !a.InsecureIgnoreTlog {
		c.issue(field+".insecureIgnoreTlog", never, "not set: the authority requires a transparency log entry, which policy.json's pki cannot check (containers-image refuses Rekor keys with pki and accepts signatures never logged); set insecureIgnoreTlog to export it")
		return au
	}
	cert := a.Certificate
	roots, intermediates := pemCertificates(cert.Roots), pemCertificates(cert.Intermediates)
	c.note("%s.certificate: containers-image also takes intermediates from each signature's certificate chain, all but its last certificate, which it takes for the root (cosign writes the chain without the root): a certificate under an intermediate the authority does not list is accepted by the runtime, denied by signet, when the signature's chain holds another intermediate after it", field)
	for j, id := range cert.Identities {
		ifield := fmt.Sprintf("%s.certificate.identities[%d]", field, j)
		expressible := true
		for _, f := range []struct{ name, value, why string }{
			{"emailRegExp", id.EmailRegExp, "policy.json's pki compares subjectEmail exactly; a regular expression cannot be expressed"},
			{"uri", id.URI, "policy.json's pki matches email and hostname SANs only, not URIs"},
			{"uriRegExp", id.URIRegExp, "policy.json's pki matches email and hostname SANs only, not URIs"},
			{"subject", id.Subject, "policy.json's pki matches email and hostname SANs only, not the subject name"},
			{"subjectRegExp", id.SubjectRegExp, "policy.json's pki matches email and hostname SANs only, not the subject name"},
		} {
			if f.value != "" {
				c.issue(ifield+"."+f.name, "the identity is not accepted", "%s", f.why)
				expressible = false
			}
		}
		if !expressible {
			continue
		}
		au.alts = append(au.alts, alternative{
			req: Requirement{Type: TypeSigstoreSigned, SignedIdentity: identity, PKI: &PKI{
				CARootsData: roots, CAIntermediatesData: intermediates, SubjectEmail: id.Email, SubjectHostname: id.Hostname,
			}},
			field:   ifield,
			signers: []string{"pki\x00" + id.Email + "\x00" + id.Hostname},
		})
	}
	return au
}

// pemCertificates encodes certs as one PEM bundle; nil for none.
func pemCertificates(certs []*x509.Certificate) []byte {
	var out []byte
	for _, cert := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})...)
	}
	return out
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
// runtime accepts only ECDSA ones. A runtime before containers-image v5.33
// reads one (rekorPublicKeyData): with several, that is an issue whose
// stricter fallback keeps the log that started last, the one being
// written to.
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
	var (
		newest      int
		newestURL   string
		newestStart time.Time
	)
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
		if len(out) == 0 || l.ValidityPeriodStart.After(newestStart) {
			newest, newestURL, newestStart = len(out), l.BaseURL, l.ValidityPeriodStart
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	if len(out) == 0 {
		return nil, errors.New("the trusted root has no Rekor log with an ECDSA key, which policy.json requires")
	}
	if len(out) > 1 && !c.runtime.readsLists() {
		c.issue(field, "accept only entries of the Rekor log "+newestURL, "rekorPublicKeyDatas (an entry in any one of %d Rekor logs) is read by containers-image v5.%d (CRI-O 1.32) and newer; %s, the oldest runtime the file is for, rejects the whole file with it", len(out), minImageKeyDatas, c.runtime.describe())
		return out[newest : newest+1], nil
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
