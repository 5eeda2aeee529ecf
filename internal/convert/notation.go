package convert

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/notaryproject/notation-go/verifier/trustpolicy"
	"github.com/notaryproject/notation-go/verifier/truststore"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/manifests"
)

// A Notation configuration: the OCI trust policy (trustpolicy.json, or
// trustpolicy.oci.json since notation 1.2) and the trust stores it names,
// laid out as notation keeps them: truststore/x509/<type>/<name>/<file>.
// Semantics followed (notation-go v1.3 verifier/trustpolicy, truststore
// and verifier): the policy is decoded by encoding/json (field names match
// case-insensitively, unknown fields are ignored) and validated as a
// whole; an artifact is verified by the one statement whose registryScopes
// lists its repository ("registry/repo", compared exactly), else by the
// statement of scope "*", else it fails; every file of a named store is a
// PEM or DER certificate file, each certificate a CA or self-signed, tsa
// ones roots, and a store that does not exist fails verification; stores
// of one type are concatenated; the tsa store makes timestamps required
// ("always") or required once the certificate has expired
// ("afterCertExpiry"); without one, timestamps are ignored and the
// certificate must be valid now.
var notationFormat = Format{
	Name:        "notation",
	Description: "Notary Project trust policy (notation's trustpolicy.json) with its trust store: --notation-trust-store DIR, or the files truststore/x509/<type>/<name>/* as arguments",
	convert:     convertNotation,
}

// notationStores are the trust store certificates given, by "type:name".
type notationStores map[string][]*x509.Certificate

func convertNotation(c *conv, docs []manifests.Document) {
	stores := notationStores{}
	var policies []manifests.Document
	for _, doc := range docs {
		if typ, name, ok := notationStoreOf(doc.Source); ok {
			c.source = doc.Source
			c.notationStoreFile(stores, typ, name, doc.JSON)
			continue
		}
		policies = append(policies, doc)
	}
	if dir := c.opts.NotationTrustStore; dir != "" {
		if err := c.readNotationTrustStore(stores, dir); err != nil {
			c.fatal = err
			return
		}
	}
	if len(policies) == 0 {
		c.source = ""
		c.invalid("", "no trust policy given: only trust store files")
		return
	}
	for _, doc := range policies {
		c.source = doc.Source
		c.notationPolicy(stores, doc.JSON)
	}
}

// notationStoreOf reports the trust store a file belongs to by notation's
// layout: .../x509/<type>/<name>/<file>.
func notationStoreOf(path string) (typ, name string, ok bool) {
	parts := strings.Split(filepath.ToSlash(filepath.Clean(path)), "/")
	n := len(parts)
	if n < 4 || parts[n-4] != "x509" || !slices.Contains(truststore.Types, truststore.Type(parts[n-3])) {
		return "", "", false
	}
	return parts[n-3], parts[n-2], true
}

// readNotationTrustStore reads every store under dir: notation's
// truststore directory (holding x509/), or its configuration directory
// (holding truststore/x509/).
func (c *conv) readNotationTrustStore(stores notationStores, dir string) error {
	x509Dir := filepath.Join(dir, "x509")
	if _, err := os.Stat(x509Dir); errors.Is(err, fs.ErrNotExist) {
		x509Dir = filepath.Join(dir, "truststore", "x509")
	}
	if _, err := os.Stat(x509Dir); err != nil {
		return fmt.Errorf("--notation-trust-store %s: no x509 or truststore/x509 directory in it: %w", dir, err)
	}
	for _, typ := range truststore.Types {
		named, err := os.ReadDir(filepath.Join(x509Dir, string(typ)))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		for _, n := range named {
			storeDir := filepath.Join(x509Dir, string(typ), n.Name())
			if !n.IsDir() {
				continue // notation looks up stores by name: a stray file is no store
			}
			files, err := os.ReadDir(storeDir)
			if err != nil {
				return err
			}
			stores.ensure(string(typ), n.Name())
			for _, f := range files {
				path := filepath.Join(storeDir, f.Name())
				c.source = path
				if !f.Type().IsRegular() {
					// notation fails the whole store then.
					c.invalid("", "trust store %s:%s: not a regular file (notation refuses directories and symlinks in a store, failing every verification that needs it)", typ, n.Name())
					continue
				}
				data, err := readFile(path)
				if err != nil {
					return err
				}
				c.notationStoreFile(stores, string(typ), n.Name(), data)
			}
		}
	}
	return nil
}

func (s notationStores) ensure(typ, name string) {
	if _, ok := s[typ+":"+name]; !ok {
		s[typ+":"+name] = nil
	}
}

// notationStoreFile adds one certificate file of a store, checked as
// notation checks it when it loads the store (a file it refuses fails
// every verification that needs the store).
func (c *conv) notationStoreFile(stores notationStores, typ, name string, data []byte) {
	stores.ensure(typ, name)
	certs, err := parseCertificateFile(data)
	if err == nil {
		err = truststore.ValidateCertificates(certs)
	}
	if err == nil && typ == string(truststore.TypeTSA) {
		for _, cert := range certs {
			if cert.CheckSignatureFrom(cert) != nil || string(cert.RawIssuer) != string(cert.RawSubject) {
				err = fmt.Errorf("certificate %s is not a root CA certificate", cert.Subject)
				break
			}
		}
	}
	if err != nil {
		c.invalid("", "trust store %s:%s: %v (notation fails every verification that needs this store)", typ, name, err)
		return
	}
	stores[typ+":"+name] = append(stores[typ+":"+name], certs...)
}

// parseCertificateFile reads certificates as notation-core-go's
// ReadCertificateFile does: PEM blocks, else DER.
func parseCertificateFile(data []byte) ([]*x509.Certificate, error) {
	b, rest := pem.Decode(data)
	if b == nil {
		return x509.ParseCertificates(data)
	}
	var certs []*x509.Certificate
	for b != nil {
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, cert)
		b, rest = pem.Decode(rest)
	}
	return certs, nil
}

// notationDialect: registryScopes are repositories compared exactly with
// the repository of the reference verified.
var notationDialect = dialect{dockerHost: "docker.io", suffix: suffixNone, subject: "the repository (registry/path) of the reference verified"}

// notationLevels are the levels a signet notation authority takes, in the
// order tried when an override makes a statement's checks those of another
// level.
var notationLevels = []*trustpolicy.VerificationLevel{trustpolicy.LevelStrict, trustpolicy.LevelPermissive, trustpolicy.LevelAudit}

func (c *conv) notationPolicy(stores notationStores, js []byte) {
	var doc trustpolicy.Document
	if err := json.Unmarshal(js, &doc); err != nil {
		c.invalid("", "not a trust policy: %v", err)
		return
	}
	if err := doc.Validate(); err != nil {
		c.invalid("", "notation rejects it: %v", err)
		return
	}
	// The images each statement governs, by statement: the "*" statement
	// governs every image the others do not.
	scoped := make([][]string, len(doc.TrustPolicies))
	wildcard := -1
	for i, st := range doc.TrustPolicies {
		for j, scope := range st.RegistryScopes {
			path := fmt.Sprintf("trustPolicies[%d].registryScopes[%d]", i, j)
			if scope == "*" {
				wildcard = i
				continue
			}
			if host, repo, _ := strings.Cut(scope, "/"); isDockerHubName(host) && !strings.Contains(repo, "/") {
				c.refuse(path, "scope skipped", "%q: notation compares the reference as the caller spells it, and signet names this image docker.io/library/%s: write the scope docker.io/library/%s", scope, repo, repo)
				continue
			}
			globs, dead, reason := translate([]tok{{kind: tLit, s: scope}}, notationDialect)
			switch {
			case reason != "":
				c.refuse(path, "scope skipped", "%q: %s", scope, reason)
			case dead:
				c.note(path, "%q selects no image signet verifies (signet names Docker Hub docker.io); dropped", scope)
			default:
				scoped[i] = append(scoped[i], globs...)
			}
		}
	}
	for i, st := range doc.TrustPolicies {
		path := fmt.Sprintf("trustPolicies[%d]", i)
		spec := v1alpha1.ImagePolicySpec{}
		if i == wildcard {
			spec.Images = []v1alpha1.ImageMatcher{{Glob: "**"}}
			for j, globs := range scoped {
				if j == i {
					continue
				}
				for _, g := range globs {
					spec.ExcludeImages = append(spec.ExcludeImages, v1alpha1.ImageMatcher{Glob: g})
				}
			}
			if len(spec.ExcludeImages) > maxExcludes {
				c.refuse(path+".registryScopes", "statement skipped", "the other statements' %d scopes are more than the %d patterns a signet policy excludes", len(spec.ExcludeImages), maxExcludes)
				continue
			}
		} else {
			for _, g := range scoped[i] {
				spec.Images = append(spec.Images, v1alpha1.ImageMatcher{Glob: g})
			}
		}
		if len(spec.Images) == 0 {
			continue
		}
		au, ok := c.notationStatement(path, stores, st)
		if !ok {
			continue
		}
		spec.Authorities = []v1alpha1.Authority{au}
		c.addCluster(c.objectName("notation", st.Name), fmt.Sprintf("Notation trust policy statement %s", st.Name), spec)
	}
	c.clusterNote("notation fails images no statement's registryScopes covers: signet does the same with its default --unmatched=deny")
}

// notationStatement converts one statement's verification settings, trust
// stores and identities to an authority.
func (c *conv) notationStatement(path string, stores notationStores, st trustpolicy.TrustPolicy) (v1alpha1.Authority, bool) {
	name := truncate(sanitizeName(st.Name), 63)
	sv := st.SignatureVerification
	level, _ := sv.GetVerificationLevel() // Validate checked it
	if level.Name == trustpolicy.LevelSkip.Name {
		c.note(path+".signatureVerification.level", "skip: notation verifies no signature of these images; converted to a static pass authority")
		return v1alpha1.Authority{Name: name, Static: &v1alpha1.StaticAuthority{Action: "pass", Message: "Notation trust policy statement " + st.Name + " skips verification"}}, true
	}
	n := &v1alpha1.NotationAuthority{TrustedIdentities: st.TrustedIdentities}
	var ok bool
	if n.VerificationLevel, n.Revocation, ok = c.notationLevel(path+".signatureVerification", sv, level); !ok {
		return v1alpha1.Authority{}, false
	}
	var ca, sa, tsa []*x509.Certificate
	for j, ref := range st.TrustStores {
		certs, given := stores[ref]
		if !given {
			typ, store, _ := strings.Cut(ref, ":")
			c.invalid(fmt.Sprintf("%s.trustStores[%d]", path, j), "trust store %s is not given (notation fails every verification that needs a store that does not exist): give --notation-trust-store DIR, or its files truststore/x509/%s/%s/*", ref, typ, store)
			return v1alpha1.Authority{}, false
		}
		switch truststore.Type(strings.SplitN(ref, ":", 2)[0]) {
		case truststore.TypeCA:
			ca = append(ca, certs...)
		case truststore.TypeSigningAuthority:
			sa = append(sa, certs...)
		case truststore.TypeTSA:
			tsa = append(tsa, certs...)
		}
	}
	for _, f := range []struct {
		typ   truststore.Type
		certs []*x509.Certificate
		into  *string
	}{{truststore.TypeCA, ca, &n.CertificateAuthorities}, {truststore.TypeSigningAuthority, sa, &n.SigningAuthorities}, {truststore.TypeTSA, tsa, &n.TimestampAuthorities}} {
		if *f.into, ok = c.notationPEM(fmt.Sprintf("%s.trustStores (%s)", path, f.typ), f.certs); !ok {
			return v1alpha1.Authority{}, false
		}
	}
	if n.CertificateAuthorities == "" && n.SigningAuthorities == "" {
		c.refuse(path+".trustStores", "statement skipped", "only tsa stores: notation verifies no signature without a ca or signingAuthority store, and a signet notation authority needs one")
		return v1alpha1.Authority{}, false
	}
	if sv.VerifyTimestamp == trustpolicy.OptionAfterCertExpiry {
		switch {
		case len(tsa) == 0:
			c.note(path+".signatureVerification.verifyTimestamp", "afterCertExpiry changes nothing without a tsa store: notation and signet ignore timestamps and require the certificate to be valid now")
		case level.Enforcement[trustpolicy.TypeAuthenticTimestamp] != trustpolicy.ActionEnforce:
			c.note(path+".signatureVerification.verifyTimestamp", "afterCertExpiry changes no decision at this level: timestamp failures are only logged (signet verifies timestamps always)")
		default:
			if !c.refuse(path+".signatureVerification.verifyTimestamp", "timestamps are verified always: a signature without a timestamp of a trusted TSA is denied even while its certificate is valid",
				"afterCertExpiry (verify the timestamp only once the signing certificate has expired): signet's notation authority verifies timestamps always when it has timestampAuthorities") {
				return v1alpha1.Authority{}, false
			}
		}
	}
	return v1alpha1.Authority{Name: name, Notation: n}, true
}

// notationLevel finds the signet level and revocation override that
// enforce, log and skip exactly what the statement's level and overrides
// do. signet overrides only revocation; an override of another check is
// expressible when it makes the statement's checks those of another level.
func (c *conv) notationLevel(path string, sv trustpolicy.SignatureVerification, eff *trustpolicy.VerificationLevel) (level, revocation string, ok bool) {
	cands := slices.Clone(notationLevels)
	if i := slices.IndexFunc(cands, func(l *trustpolicy.VerificationLevel) bool { return l.Name == sv.VerificationLevel }); i > 0 {
		cands[0], cands[i] = cands[i], cands[0]
	}
	for _, l := range cands {
		same := true
		for _, t := range trustpolicy.ValidationTypes {
			if t != trustpolicy.TypeRevocation && l.Enforcement[t] != eff.Enforcement[t] {
				same = false
			}
		}
		if !same {
			continue
		}
		if r := eff.Enforcement[trustpolicy.TypeRevocation]; r != l.Enforcement[trustpolicy.TypeRevocation] {
			revocation = string(r)
		}
		if l.Name != sv.VerificationLevel {
			c.note(path+".override", "the %s level with these overrides enforces and logs what the %s level does: converted to verificationLevel %s", sv.VerificationLevel, l.Name, l.Name)
		}
		return l.Name, revocation, true
	}
	var keys []string
	for k := range sv.Override {
		if k != trustpolicy.TypeRevocation {
			keys = append(keys, string(k))
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !c.refuse(path+".override."+k, "the override is dropped: the "+sv.VerificationLevel+" level's action applies",
			"%s: %s with the %s level: a signet notation authority overrides revocation only, and no level enforces and logs these checks", k, sv.Override[trustpolicy.ValidationType(k)], sv.VerificationLevel) {
			return "", "", false
		}
	}
	level = sv.VerificationLevel
	if r, set := sv.Override[trustpolicy.TypeRevocation]; set {
		revocation = string(r)
	}
	return level, revocation, true
}

// maxNotationPEM is signet's limit on a notation authority's certificate
// field.
const maxNotationPEM = 262144

// notationPEM writes certificates of a notation trust store field in PEM
// (CA certificates, or self-signed signing certificates trusted as they
// are, as notation and Kyverno trust them).
func (c *conv) notationPEM(path string, certs []*x509.Certificate) (string, bool) {
	var b strings.Builder
	for _, cert := range certs {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}))
	}
	if b.Len() > maxNotationPEM {
		c.refuse(path, "policy skipped", "%d bytes of certificates, over the %d a notation authority holds inline: give them in a Secret (notation.secretRef)", b.Len(), maxNotationPEM)
		return "", false
	}
	return b.String(), true
}
