package sharedcache

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/redis"
	"github.com/signet-dev/signet/test/harness"
)

// TestRedisClient: signet's client against the real redis-server: values
// round-trip, expire, stay in their database, are bounded; a wrong password
// is the server's refusal (never repeated); a server that hangs is given up
// at the deadline.
func TestRedisClient(t *testing.T) {
	t.Parallel()
	srv := harness.StartRedis(t)
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		t.Cleanup(cancel)
		return c
	}
	c := redis.New(redis.Options{Addr: srv.Addr, Password: srv.Password, DB: 3, MaxValue: 1 << 10})
	t.Cleanup(func() { c.Close() })
	value := []byte("binary\x00\r\n\xffvalue")
	if err := c.Set(ctx(), "k", value, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, found, err := c.Get(ctx(), "k")
	if err != nil || !found || string(got) != string(value) {
		t.Fatalf("Get = %q, %v, %v; want %q", got, found, err, value)
	}
	if ttl, err := srv.Do("SELECT", "3"); err != nil || ttl != "OK" {
		t.Fatalf("SELECT 3: %q %v", ttl, err)
	}
	if other, err := srv.Do("GET", "k"); err != nil || other != "" {
		t.Errorf("database 0 holds %q (%v): the value is not in database 3 only", other, err)
	}
	if _, found, err := c.Get(ctx(), "missing"); found || err != nil {
		t.Errorf("a missing key: found %v, %v", found, err)
	}
	if err := c.Set(ctx(), "short", value, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(150 * time.Millisecond)
	if _, found, err := c.Get(ctx(), "short"); found || err != nil {
		t.Errorf("a value past its PX: found %v, %v", found, err)
	}
	if err := c.Set(ctx(), "big", make([]byte, 2<<10), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Get(ctx(), "big"); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a value over MaxValue: %v", err)
	}
	// The connection that refused the big value is closed; others work.
	if _, found, err := c.Get(ctx(), "k"); !found || err != nil {
		t.Errorf("after a refused value: found %v, %v", found, err)
	}

	// Idle connections the server closed (its idle timeout, a restart)
	// are replaced, not reported.
	if _, err := srv.Do("CLIENT", "KILL", "TYPE", "normal"); err != nil {
		t.Fatal(err)
	}
	if _, found, err := c.Get(ctx(), "k"); !found || err != nil {
		t.Errorf("after the server closed the idle connection: found %v, %v", found, err)
	}

	wrong := redis.New(redis.Options{Addr: srv.Addr, Password: "not-" + srv.Password})
	_, _, err = wrong.Get(ctx(), "k")
	var server *redis.Error
	if !errors.As(err, &server) || strings.Contains(err.Error(), srv.Password) {
		t.Errorf("a wrong password: %v", err)
	}
	none := redis.New(redis.Options{Addr: srv.Addr})
	if _, _, err := none.Get(ctx(), "k"); !errors.As(err, &server) {
		t.Errorf("no password: %v", err)
	}

	srv.Pause()
	start := time.Now()
	short, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := c.Get(short, "k"); err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a paused server: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("a paused server held Get for %s", d)
	}
	srv.Resume()
	if _, found, err := c.Get(ctx(), "k"); !found || err != nil {
		t.Errorf("after the server resumed: found %v, %v", found, err)
	}
}

// TestRedisClientTLS: rediss:// against the real redis-server speaking TLS
// only: the server's certificate is verified with the CA given
// (--shared-cache-ca-file), and refused without it.
func TestRedisClientTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	srv := harness.StartRedis(t, harness.RedisTLS(write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER), roots))

	o, err := redis.ParseURL(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	o.Password = srv.Password
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, _, err := redis.New(o).Get(ctx, "k"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a server whose CA is not given: %v, want a certificate error", err)
	}
	o.TLS.RootCAs = roots
	c := redis.New(o)
	if err := c.Set(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if v, found, err := c.Get(ctx, "k"); err != nil || !found || string(v) != "v" {
		t.Errorf("over TLS: %q %v %v", v, found, err)
	}
}
