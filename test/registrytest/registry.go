package registrytest

import (
	"io"
	"log"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Registry is an OCI registry listening on a loopback address over plain HTTP.
type Registry struct {
	// Host is "127.0.0.1:PORT", the registry part of image references.
	Host string
	// Kind says which implementation serves: "distribution" or "in-process".
	Kind string
	// Referrers reports whether the registry serves the OCI 1.1 referrers API.
	// Without it, clients fall back to the referrers tag schema.
	Referrers bool
}

// Repo returns the reference of repository name in this registry.
func (r *Registry) Repo(name string) string { return r.Host + "/" + name }

// StartInProcess serves go-containerregistry's registry from the test
// process, with or without the OCI referrers API.
func StartInProcess(t testing.TB, referrers bool) *Registry {
	t.Helper()
	srv := httptest.NewServer(registry.New(
		registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithReferrersSupport(referrers),
	))
	t.Cleanup(srv.Close)
	return &Registry{Host: strings.TrimPrefix(srv.URL, "http://"), Kind: "in-process", Referrers: referrers}
}

// UnreachableHost returns a loopback "127.0.0.1:PORT" on which nothing
// listens (a port just freed), for a registry that cannot be reached.
func UnreachableHost(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
