package notationtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/digitorus/timestamp"

	"github.com/signet-dev/signet/test/pkitest"
)

// tsaPolicy is the TSA policy OID the test TSA stamps under (a private arc).
var tsaPolicy = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 23, 1}

// TSA is an RFC 3161 time-stamping authority serving plain HTTP on a
// loopback address, as notation sign --timestamp-url uses one. Its
// certificate is issued by its own root, Root, which a verifier must trust
// (the Notary Project trust store of type "tsa").
type TSA struct {
	// URL is the endpoint that takes application/timestamp-query POSTs.
	URL string
	// Root is the TSA's root CA.
	Root *pkitest.CA
	// Cert is the time-stamping certificate, issued by Root, with the
	// critical time-stamping extended key usage.
	Cert *x509.Certificate

	key      crypto.Signer
	serial   atomic.Int64
	requests atomic.Int64
}

// StartTSA starts a test TSA; it stops when the test ends. Each response
// carries the TSA's certificate chain (Cert, then Root's certificate) and
// echoes the request's nonce, as tspclient-go requires.
func StartTSA(t testing.TB) *TSA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	root := pkitest.NewRoot(t, "signet notationtest TSA root")
	a := &TSA{Root: root, Cert: root.IssueTimestamping(t, key.Public(), "signet notationtest TSA"), key: key}
	srv := httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(srv.Close)
	a.URL = srv.URL + "/timestamp"
	return a
}

// Chain is the TSA's certificate chain, leaf first, ending with its root.
func (a *TSA) Chain() []*x509.Certificate {
	return []*x509.Certificate{a.Cert, a.Root.Cert}
}

// Requests is how many time-stamp requests the TSA has answered.
func (a *TSA) Requests() int { return int(a.requests.Load()) }

func (a *TSA) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST a timestamp query", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := timestamp.ParseRequest(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ts := timestamp.Timestamp{
		HashAlgorithm:     req.HashAlgorithm,
		HashedMessage:     req.HashedMessage,
		Time:              time.Now().UTC(),
		Accuracy:          time.Second,
		SerialNumber:      big.NewInt(a.serial.Add(1)),
		Policy:            tsaPolicy,
		Nonce:             req.Nonce,
		AddTSACertificate: req.Certificates,
	}
	if req.TSAPolicyOID != nil {
		ts.Policy = req.TSAPolicyOID
	}
	if req.Certificates {
		ts.Certificates = []*x509.Certificate{a.Root.Cert}
	}
	resp, err := ts.CreateResponseWithOpts(a.Cert, a.key, crypto.SHA256)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	a.requests.Add(1)
	w.Header().Set("Content-Type", "application/timestamp-reply")
	_, _ = w.Write(resp)
}
