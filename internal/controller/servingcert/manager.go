package servingcert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Keys of the TLS Secret Manager keeps.
const (
	secretCACert     = "ca.crt"
	secretPreviousCA = "previous-ca.crt"
	secretTLSCert    = "tls.crt"
	secretTLSKey     = "tls.key"
)

// Manager keeps the webhook's serving certificate: self-generated,
// shared by every replica through a Secret in signet's namespace, rotated
// when two thirds of its validity have passed, with the CA bundle (the
// current and the previous CA, so a rotation never breaks a request)
// injected into the webhook configurations. Load serves the first
// certificate; Run keeps it current.
//
// A replica serves a certificate only once the configurations trust its
// CA. A rotation trusts the new CA first, waits for the API servers to
// see it (propagation), then writes the Secret; the other replicas load it
// at their next sync. Replicas add CAs to the configurations and never
// take an unexpired one out (mergeCABundles), so a replica that read the
// Secret before a rotation cannot untrust the new CA.
type Manager struct {
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
}

// GetCertificate serves the current certificate (tls.Config.GetCertificate).
func (m *Manager) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := m.current.Load()
	if c == nil {
		return nil, errors.New("no serving certificate yet")
	}
	return c, nil
}

// Load makes sure the Secret holds a certificate (creating it when no
// replica has), injects its CA bundle and serves it. Call it before
// serving: GetCertificate has nothing to serve until it returns nil.
func (m *Manager) Load(ctx context.Context) error {
	var err error
	if m.client, err = client.New(m.Config, client.Options{}); err != nil {
		return err
	}
	if m.Log == nil {
		m.Log = slog.Default()
	}
	return m.sync(ctx)
}

// Run keeps the certificate current until ctx ends: every tenth of its
// validity (at most a minute) it re-reads the Secret (another replica may
// have rotated it), rotates it when due and serves what it holds. A
// failure is logged; the certificate served stays. Call it after Load.
func (m *Manager) Run(ctx context.Context) {
	t := time.NewTicker(min(m.Validity/10, time.Minute))
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
}

// sync reads (or creates) the Secret, rotates it when due, injects the CA
// bundle and serves the Secret's certificate.
func (m *Manager) sync(ctx context.Context) error {
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
		// Trust the new CA everywhere before anyone serves its certificate,
		// and give the API servers time to see it.
		if err := m.inject(ctx, data); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(m.propagation()):
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

func (m *Manager) rotationDue(data map[string][]byte) (bool, error) {
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
func (m *Manager) generate(old map[string][]byte) (map[string][]byte, error) {
	// The CA signs once and is thrown away: a rotation makes a new one.
	sc, _, err := newWithCAKey(m.Hosts, m.Validity)
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

// inject makes the webhook configurations trust the current and previous
// CA of data, keeping the unexpired CAs they already trust.
func (m *Manager) inject(ctx context.Context, data map[string][]byte) error {
	if m.Validating == "" && m.Mutating == "" {
		return nil
	}
	bundle := append(append([]byte{}, data[secretCACert]...), data[secretPreviousCA]...)
	return mergeCABundles(ctx, m.client, m.Validating, m.Mutating, bundle, time.Now())
}

// propagation is how long a rotation waits between trusting the new CA and
// writing the Secret whose certificate the replicas will serve: the API
// servers read webhook configurations through informers. A twentieth of
// the validity, at most 10 s (a year's certificate: 10 s).
func (m *Manager) propagation() time.Duration {
	return min(m.Validity/20, 10*time.Second)
}
