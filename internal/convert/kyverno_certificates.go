package convert

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"slices"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/verify"
)

// Kyverno's Cosign certificates attestor (ClusterPolicy certificates,
// ImageValidatingPolicy cosign.certificate). Semantics followed (Kyverno's
// buildCosignOptions and ivpol checkOptions, cosign's verify.go):
//
//   - cert alone: cosign's SigVerifier is the certificate's public key;
//     the signature's own certificate is not trusted (cosign checks only
//     that it was valid at the time of signing) and the log entry is
//     compared with it. Nothing of cert is checked but its key.
//   - cert with certChain: ValidateAndUnpackCertWithChain, once, when the
//     policy is loaded: cert must chain to the last certificate of
//     certChain through the others (TrustedCert: code-signing usage, at
//     cert's NotBefore, so time never matters) and, unless ctlog.ignoreSCT,
//     carry an embedded SCT that a trusted CT log key verifies. Either
//     failing fails every image. Then as cert alone.
//   - certChain alone: every certificate of it is a root (RootCerts) for
//     the signature's own certificate, with the intermediates the
//     signature carries; no identity is checked; the SCT as above.
//   - rekor/ctlog as for keys; the log is required unless ignoreTlog.

// maxKyChain is Kyverno's bound on certChain (maxIntermediateCerts + 1).
const maxKyChain = 11

// kyCertificates converts a Cosign certificates attestor: a key authority
// for cert, a certificate authority for certChain alone. certField and
// chainField are the fields' paths; ignoreSCT and ignoreTlog Kyverno's
// settings. au gets Key or Certificate (without TrustRootRef).
func (c *conv) kyCertificates(certField, chainField, cert, chain string, ignoreSCT, ignoreTlog bool, au *v1alpha1.Authority) bool {
	var chainCerts []*x509.Certificate
	if chain != "" {
		var why string
		if chainCerts, why = kyPEMCertificates(chain); why != "" {
			c.invalid(chainField, "%s: Kyverno fails every image", why)
			return false
		}
		if len(chainCerts) > maxKyChain {
			c.invalid(chainField, "%d certificates, Kyverno takes at most %d: it fails every image", len(chainCerts), maxKyChain)
			return false
		}
	}
	if cert == "" {
		return c.kyCertChainOnly(chainField, chainCerts, ignoreSCT, au)
	}
	leaf, why := kyLoadCert(cert)
	if why != "" {
		c.invalid(certField, "%s: Kyverno fails every image", why)
		return false
	}
	if len(chainCerts) > 0 {
		roots, inter := x509.NewCertPool(), x509.NewCertPool()
		roots.AddCert(chainCerts[len(chainCerts)-1])
		for _, ic := range chainCerts[:len(chainCerts)-1] {
			inter.AddCert(ic)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{CurrentTime: leaf.NotBefore, Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}); err != nil {
			c.invalid(chainField, "the certificate does not chain to the last certificate of certChain (%v): Kyverno fails every image", err)
			return false
		}
		if !ignoreSCT {
			if !hasEmbeddedSCT(leaf) {
				c.invalid(certField, "the certificate carries no embedded SCT and ctlog.ignoreSCT is not set: Kyverno fails every image")
				return false
			}
			if !c.refuse(certField, "its SCT is not checked", "Kyverno verifies the certificate's embedded SCT with the CT log keys when it loads the policy, which the conversion does not do (set ctlog.ignoreSCT once you have checked it)") {
				return false
			}
		}
	}
	if _, err := verify.NewPublicKey(leaf.PublicKey); err != nil {
		c.refuse(certField, "policy skipped", "the certificate's key: %v", err)
		return false
	}
	der, err := x509.MarshalPKIXPublicKey(leaf.PublicKey)
	if err != nil {
		c.refuse(certField, "policy skipped", "the certificate's key: %v", err)
		return false
	}
	au.Key = &v1alpha1.KeyAuthority{Data: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
	c.note(certField, "the certificate's public key (subject %s) becomes a key authority, as Kyverno verifies with it; the certificate a signature carries is neither trusted nor required, and unlike Kyverno (cosign) signet does not check that it was valid when the signature was made", leaf.Subject)
	if !ignoreTlog {
		if !c.refuse(certField, "signatures that carry a certificate are denied", "with the transparency log required: cosign logs a signature made with a certificate under that certificate, which Kyverno accepts when its key is this one, and signet's key authority compares log entries with the key alone, so it admits only signatures logged under the key (give rekor.ignoreTlog, or convert certChain alone to a certificate authority)") {
			return false
		}
	}
	return true
}

// kyCertChainOnly converts certChain alone: a certificate authority whose
// roots are every certificate of the chain, for any identity.
func (c *conv) kyCertChainOnly(chainField string, chain []*x509.Certificate, ignoreSCT bool, au *v1alpha1.Authority) bool {
	if len(chain) == 0 {
		c.invalid(chainField, "give cert or certChain")
		return false
	}
	if !ignoreSCT && !c.refuse(chainField, "certificates are accepted without an SCT", "Kyverno requires each signature's certificate to carry an SCT verified with the CT log keys unless ctlog.ignoreSCT; signet's certificate authority checks no SCT (enterprise CAs issue none: Kyverno then fails every image)") {
		return false
	}
	var roots []byte
	for _, ca := range chain {
		roots = append(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	}
	au.Certificate = &v1alpha1.CertificateAuthority{Roots: string(roots), Identities: []v1alpha1.CertificateIdentity{{SubjectRegExp: ".*"}}}
	c.note(chainField, "every certificate of certChain is a root of a certificate authority, as Kyverno trusts them; Kyverno checks no identity, so any code-signing certificate they issue passes (subjectRegExp \".*\": narrow it); Kyverno also takes intermediates from the chain a signature carries, signet only from the policy (give them in certChain)")
	return true
}

// kyLoadCert reads Kyverno's cert as it does: base64 of PEM, or PEM; the
// first certificate.
func kyLoadCert(s string) (*x509.Certificate, string) {
	data := []byte(s)
	if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
		data = dec
	}
	certs, why := kyPEMCertificates(string(data))
	if why != "" {
		return nil, why
	}
	return certs[0], ""
}

// kyPEMCertificates parses PEM certificates; every block must be one.
func kyPEMCertificates(s string) ([]*x509.Certificate, string) {
	var out []*x509.Certificate
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Sprintf("a %s block where certificates are expected", b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err.Error()
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, noPEMCertificate
	}
	return out, ""
}

// noPEMCertificate is kyPEMCertificates' reason for text without one.
const noPEMCertificate = "no PEM certificate"

// oidSCTList is the embedded SCT list extension (RFC 6962).
var oidSCTList = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 2}

func hasEmbeddedSCT(cert *x509.Certificate) bool {
	return slices.ContainsFunc(cert.Extensions, func(e pkix.Extension) bool { return e.Id.Equal(oidSCTList) })
}
