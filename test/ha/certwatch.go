package ha

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/signet-dev/signet/test/harness"
)

// certWatch checks, every 200 ms, that the certificate each running
// replica serves chains to a CA both webhook configurations trust (the
// certificate read first: the bundle only grows, but for expired CAs, so
// a bundle read later trusts at least what was trusted when it was
// served), and counts the rotations (distinct certificates served).
type certWatch struct {
	stopc chan struct{}
	done  chan struct{}
	mu    sync.Mutex
	res   rotationResult
}

type rotationResult struct {
	rotations, checks int
	violations        []string
}

func watchCertificates(t *testing.T, cluster *harness.Cluster, running func() []*replica) *certWatch {
	w := &certWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	seen := map[string]bool{}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
			for _, r := range running() {
				leaf := servedCertificate(r.addr)
				if leaf == nil {
					continue // stopping, or not started
				}
				var vwc admissionregistrationv1.ValidatingWebhookConfiguration
				var mwc admissionregistrationv1.MutatingWebhookConfiguration
				if cluster.Client.Get(t.Context(), client.ObjectKey{Name: "signet"}, &vwc) != nil || cluster.Client.Get(t.Context(), client.ObjectKey{Name: "signet"}, &mwc) != nil {
					continue // the API server is down
				}
				w.mu.Lock()
				if !seen[string(leaf.Raw)] {
					seen[string(leaf.Raw)] = true
					if len(seen) > 1 {
						w.res.rotations++
					}
				}
				w.res.checks++
				for _, bundle := range [][]byte{vwc.Webhooks[0].ClientConfig.CABundle, mwc.Webhooks[0].ClientConfig.CABundle} {
					pool := x509.NewCertPool()
					pool.AppendCertsFromPEM(bundle)
					if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "127.0.0.1"}); err != nil && len(w.res.violations) < 5 {
						w.res.violations = append(w.res.violations, fmt.Sprintf("%s serves a certificate (serial %s) the webhook configuration does not trust: %v; bundle:\n%s",
							r.name, leaf.SerialNumber, err, bundleSubjects(bundle)))
					}
				}
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *certWatch) stop() {
	close(w.stopc)
	<-w.done
}

func (w *certWatch) result() rotationResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.res
}

func servedCertificate(addr string) *x509.Certificate {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // the certificate is what is checked
	if err != nil {
		return nil
	}
	defer conn.Close()
	if cs := conn.ConnectionState().PeerCertificates; len(cs) > 0 {
		return cs[0]
	}
	return nil
}

func bundleSubjects(bundle []byte) string {
	var out []string
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil {
			out = append(out, fmt.Sprintf("  %s serial %s until %s", c.Subject, c.SerialNumber, c.NotAfter.Format(time.TimeOnly)))
		}
	}
	return strings.Join(out, "\n")
}

// waitFreshCertificate waits until the serving certificate in the Secret
// was issued less than 5 s ago and every replica serves it.
func waitFreshCertificate(t *testing.T, cluster *harness.Cluster, replicas []*replica) {
	t.Helper()
	waitFor(t, 2*certValidity, "a certificate rotation", func() error {
		var sec corev1.Secret
		if err := cluster.Client.Get(t.Context(), client.ObjectKey{Namespace: "signet-system", Name: "signet-webhook-tls"}, &sec); err != nil {
			return err
		}
		block, _ := pem.Decode(sec.Data["tls.crt"])
		if block == nil {
			return fmt.Errorf("no certificate in the Secret")
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		if left := time.Until(cert.NotAfter); left < certValidity-5*time.Second {
			return fmt.Errorf("the certificate has %s left", left.Round(time.Second))
		}
		for _, r := range replicas {
			if served := servedCertificate(r.addr); served == nil || !bytes.Equal(served.Raw, cert.Raw) {
				return fmt.Errorf("%s does not serve it yet", r.name)
			}
		}
		return nil
	})
}
