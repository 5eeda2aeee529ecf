package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"

	"github.com/signet-dev/signet/internal/controller/servingcert"
)

// servingTLS is the listener's TLS configuration with its serving
// certificate: with --tls-secret, the one kept in that Secret, loaded now
// and kept current by the returned Manager's Run; otherwise the one in
// --tls-cert-dir, or one made now, whose CA is written to --ca-out and
// injected into the webhook configurations named. With --client-ca-file,
// client certificates are asked for.
func (o *serveOptions) servingTLS(ctx context.Context, log *slog.Logger, cluster *rest.Config) (*tls.Config, *servingcert.Manager, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	var certs *servingcert.Manager
	if o.tlsSecret != "" {
		certs = &servingcert.Manager{Config: cluster, Namespace: o.namespace, SecretName: o.tlsSecret, Hosts: o.tlsHosts,
			Validity: o.certValidity, Validating: o.validatingName, Mutating: o.mutatingName, CAFile: o.caOut, Log: log}
		if err := certs.Load(ctx); err != nil {
			return nil, nil, fmt.Errorf("serving certificate: %w", err)
		}
		cfg.GetCertificate = certs.GetCertificate
	} else {
		cert, caPEM, err := o.certificate()
		if err != nil {
			return nil, nil, err
		}
		if o.caOut != "" && caPEM != nil {
			if err := os.WriteFile(o.caOut, caPEM, 0o644); err != nil { //nolint:gosec // G306: a CA certificate is public; other tools read it
				return nil, nil, err
			}
		}
		if caPEM != nil && (o.validatingName != "" || o.mutatingName != "") {
			if err := servingcert.InjectCABundle(ctx, cluster, o.validatingName, o.mutatingName, caPEM); err != nil {
				return nil, nil, fmt.Errorf("injecting the CA bundle: %w", err)
			}
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if err := o.serving.clientAuth(cfg); err != nil {
		return nil, nil, err
	}
	return cfg, certs, nil
}

// certificate is the certificate of --tls-cert-dir, or a self-generated
// one for --tls-host with its CA.
func (o *serveOptions) certificate() (tls.Certificate, []byte, error) {
	if o.tlsCertDir != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(o.tlsCertDir, "tls.crt"), filepath.Join(o.tlsCertDir, "tls.key"))
		return cert, nil, err
	}
	sc, err := servingcert.New(o.tlsHosts, o.certValidity)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return sc.Cert, sc.CAPEM, nil
}
