package servingcert

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

// TestNew: the certificate verifies against its CA for every host asked,
// DNS names and IP addresses alike, for a server, and for no other host.
func TestNew(t *testing.T) {
	hosts := []string{"signet-webhook.signet-system.svc", "127.0.0.1", "::1"}
	c, err := New(hosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CAPEM) {
		t.Fatal("CAPEM holds no certificate")
	}
	leaf, err := x509.ParseCertificate(c.Cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if d := c.NotAfter.Sub(leaf.NotAfter); d < 0 || d >= time.Second { // the certificate keeps whole seconds
		t.Errorf("NotAfter %v, the certificate says %v", c.NotAfter, leaf.NotAfter)
	}
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: pool}); err == nil {
		t.Error("the certificate verifies for a host it was not made for")
	}
}

// TestGenerateAndRotation: a rotation keeps the old CA as the previous one
// (so replicas still serving the old certificate stay trusted), and is due
// once less than a third of the validity is left.
func TestGenerateAndRotation(t *testing.T) {
	m := &Manager{Hosts: []string{"localhost"}, Validity: time.Hour}
	first, err := m.generate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := first[secretPreviousCA]; ok {
		t.Error("a first certificate has a previous CA")
	}
	if due, err := m.rotationDue(first); err != nil || due {
		t.Errorf("a new certificate is due for rotation (%v)", err)
	}
	second, err := m.generate(first)
	if err != nil {
		t.Fatal(err)
	}
	if string(second[secretPreviousCA]) != string(first[secretCACert]) {
		t.Error("the rotated Secret does not keep the old CA as the previous one")
	}
	if string(second[secretCACert]) == string(first[secretCACert]) {
		t.Error("a rotation kept the CA")
	}
	block, _ := pem.Decode(second[secretTLSCert])
	if block == nil {
		t.Fatal("no certificate PEM")
	}

	short := &Manager{Hosts: []string{"localhost"}, Validity: 3 * time.Hour}
	if due, err := short.rotationDue(first); err != nil || !due {
		t.Errorf("a certificate with under a third of its validity left is not due (%v)", err)
	}
	if due, err := m.rotationDue(map[string][]byte{}); err == nil || !due {
		t.Errorf("a Secret without a certificate: due %v, err %v; want due with an error", due, err)
	}
}

// TestMergeBundle: the bundle a replica writes trusts the CAs it wants
// first, then keeps every unexpired CA already trusted (another replica
// may serve a certificate of one), once each; expired CAs, certificates
// that are no CA and anything not PEM drop out.
func TestMergeBundle(t *testing.T) {
	now := time.Now()
	current, err := New([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	newer, err := New([]string{"localhost"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := New([]string{"localhost"}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: current.Cert.Certificate[0]})

	have := append(append(append([]byte("placeholder\n"), current.CAPEM...), expired.CAPEM...), leafPEM...)
	got := mergeBundle(have, newer.CAPEM, now.Add(2*time.Minute))
	want := append(append([]byte{}, newer.CAPEM...), current.CAPEM...)
	if string(got) != string(want) {
		t.Errorf("merged bundle:\n%s\nwant the new CA then the current one:\n%s", got, want)
	}
	// Merging again changes nothing (no write in the steady state).
	if again := mergeBundle(got, newer.CAPEM, now.Add(2*time.Minute)); string(again) != string(got) {
		t.Errorf("merging a merged bundle changed it:\n%s", again)
	}
	// A stale replica wanting the old CA alone keeps the new one trusted.
	if stale := mergeBundle(got, current.CAPEM, now.Add(2*time.Minute)); !strings.Contains(string(stale), string(newer.CAPEM)) {
		t.Errorf("a stale replica's merge untrusted the new CA:\n%s", stale)
	}
}
