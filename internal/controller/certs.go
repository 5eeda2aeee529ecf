package controller

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"sync/atomic"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ServingCert is a self-generated CA and the serving certificate it signed.
type ServingCert struct {
	CAPEM    []byte
	Cert     tls.Certificate
	NotAfter time.Time
}

// NewServingCert makes a CA and a serving certificate for hosts (DNS names
// or IP addresses), valid for validity.
func NewServingCert(hosts []string, validity time.Duration) (*ServingCert, error) {
	sc, _, err := newServingCertWithCAKey(hosts, validity)
	return sc, err
}

// pemPair encodes a tls.Certificate's leaf and ECDSA key as PEM.
func pemPair(c tls.Certificate) (certPEM, keyPEM []byte, err error) {
	key, ok := c.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("serving key is not ECDSA")
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

func newServingCertWithCAKey(hosts []string, validity time.Duration) (*ServingCert, []byte, error) {
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "signet webhook CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "signet webhook"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := tls.X509KeyPair(
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		return nil, nil, err
	}
	caKeyDER, err := x509.MarshalECPrivateKey(caKey)
	if err != nil {
		return nil, nil, err
	}
	return &ServingCert{
		CAPEM:    pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Cert:     cert,
		NotAfter: tmpl.NotAfter,
	}, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: caKeyDER}), nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// InjectCABundle writes caPEM into every webhook of the named validating and
// mutating webhook configurations (either may be absent: "" skips it).
func InjectCABundle(ctx context.Context, cfg *rest.Config, validating, mutating string, caPEM []byte) error {
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if validating != "" {
		var vwc admissionregistrationv1.ValidatingWebhookConfiguration
		if err := cl.Get(ctx, client.ObjectKey{Name: validating}, &vwc); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", validating, err)
		}
		for i := range vwc.Webhooks {
			vwc.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		if err := cl.Update(ctx, &vwc); err != nil {
			return fmt.Errorf("ValidatingWebhookConfiguration %s: %w", validating, err)
		}
	}
	if mutating != "" {
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		if err := cl.Get(ctx, client.ObjectKey{Name: mutating}, &mwc); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", mutating, err)
		}
		for i := range mwc.Webhooks {
			mwc.Webhooks[i].ClientConfig.CABundle = caPEM
		}
		if err := cl.Update(ctx, &mwc); err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", mutating, err)
		}
	}
	return nil
}

// Keys of the TLS Secret CertManager keeps.
const (
	secretCACert     = "ca.crt"
	secretPreviousCA = "previous-ca.crt"
	secretTLSCert    = "tls.crt"
	secretTLSKey     = "tls.key"
)

// CertManager keeps the webhook's serving certificate: self-generated,
// shared by every replica through a Secret in signet's namespace, rotated
// when two thirds of its validity have passed, with the CA bundle (the
// current and the previous CA, so a rotation never breaks a request)
// injected into the webhook configurations.
type CertManager struct {
	Config     *rest.Config
	Namespace  string
	SecretName string
	Hosts      []string
	Validity   time.Duration
	Validating string
	Mutating   string
	// CAFile, when set, receives the CA bundle after every sync.
	CAFile string
	Log    *slog.Logger

	client  client.Client
	current atomic.Pointer[tls.Certificate]
	bundle  []byte
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *CertManager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.current.Load()
	if c == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return c, nil
}

// Start makes sure a certificate exists and is served, then keeps it
// current in the background until ctx ends.
func (m *CertManager) Start(ctx context.Context) error {
	scheme, err := Scheme()
	if err != nil {
		return err
	}
	if m.client, err = client.New(m.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	if err := m.sync(ctx); err != nil {
		return err
	}
	go func() {
		every := min(m.Validity/10, time.Minute)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := m.sync(ctx); err != nil && ctx.Err() == nil {
					m.Log.Warn("keeping the serving certificate current", "err", err)
				}
			}
		}
	}()
	return nil
}

// sync reads (or creates) the Secret, rotates it when due, injects the CA
// bundle and serves the Secret's certificate.
func (m *CertManager) sync(ctx context.Context) error {
	key := client.ObjectKey{Namespace: m.Namespace, Name: m.SecretName}
	var sec corev1.Secret
	err := m.client.Get(ctx, key, &sec)
	switch {
	case apierrors.IsNotFound(err):
		data, err := m.generate(nil)
		if err != nil {
			return err
		}
		sec = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: m.Namespace, Name: m.SecretName}, Type: corev1.SecretTypeOpaque, Data: data}
		if err := m.inject(ctx, data); err != nil {
			return err
		}
		if err := m.client.Create(ctx, &sec); err != nil {
			if !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating Secret %s: %w", key, err)
			}
			if err := m.client.Get(ctx, key, &sec); err != nil { // another replica won
				return err
			}
		}
	case err != nil:
		return fmt.Errorf("reading Secret %s: %w", key, err)
	}

	if due, err := m.rotationDue(sec.Data); err != nil || due {
		data, gerr := m.generate(sec.Data)
		if gerr != nil {
			return gerr
		}
		// Trust the new CA everywhere before anyone serves its certificate.
		if err := m.inject(ctx, data); err != nil {
			return err
		}
		sec.Data = data
		if err := m.client.Update(ctx, &sec); err != nil {
			if apierrors.IsConflict(err) {
				return nil // another replica rotated; the next sync loads it
			}
			return fmt.Errorf("rotating Secret %s: %w", key, err)
		}
		m.Log.Info("rotated the webhook serving certificate")
	}
	if err := m.inject(ctx, sec.Data); err != nil {
		return err
	}
	cert, err := tls.X509KeyPair(sec.Data[secretTLSCert], sec.Data[secretTLSKey])
	if err != nil {
		return fmt.Errorf("the Secret %s holds no usable certificate: %w", key, err)
	}
	m.current.Store(&cert)
	if m.CAFile != "" {
		bundle := append(append([]byte{}, sec.Data[secretCACert]...), sec.Data[secretPreviousCA]...)
		if err := os.WriteFile(m.CAFile, bundle, 0o644); err != nil { //nolint:gosec // G306: a CA bundle is public, written for other tools to read
			return err
		}
	}
	return nil
}

func (m *CertManager) rotationDue(data map[string][]byte) (bool, error) {
	block, _ := pem.Decode(data[secretTLSCert])
	if block == nil {
		return true, errors.New("no certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return true, err
	}
	// Certificates are backdated a minute for clock skew: count from now.
	return time.Until(c.NotAfter) < m.Validity/3, nil
}

// generate makes a new CA and serving certificate; the old CA (if any)
// stays trusted as the previous one.
func (m *CertManager) generate(old map[string][]byte) (map[string][]byte, error) {
	// The CA signs once and is thrown away: a rotation makes a new one.
	sc, _, err := newServingCertWithCAKey(m.Hosts, m.Validity)
	if err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := pemPair(sc.Cert)
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{secretCACert: sc.CAPEM, secretTLSCert: certPEM, secretTLSKey: keyPEM}
	if old != nil && len(old[secretCACert]) > 0 {
		data[secretPreviousCA] = old[secretCACert]
	}
	return data, nil
}

// inject puts the current and previous CA into the webhook configurations
// when they differ from what was last injected.
func (m *CertManager) inject(ctx context.Context, data map[string][]byte) error {
	bundle := append(append([]byte{}, data[secretCACert]...), data[secretPreviousCA]...)
	if bytes.Equal(bundle, m.bundle) || (m.Validating == "" && m.Mutating == "") {
		return nil
	}
	if err := InjectCABundle(ctx, m.Config, m.Validating, m.Mutating, bundle); err != nil {
		return err
	}
	m.bundle = bundle
	return nil
}
