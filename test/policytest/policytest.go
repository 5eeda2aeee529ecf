// Package policytest makes compiled policies and snapshots for tests, in Go
// only (no binaries): one ClusterImagePolicy from its spec, and a key
// authority with a fresh key.
package policytest

import (
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/policy"
	"github.com/signet-dev/signet/test/sigstoretest"
)

// Snapshot compiles a ClusterImagePolicy named name with spec (secretRefs
// and TrustRoots resolved by r, which may be nil) into a snapshot with cfg.
// A policy that does not compile fails the test.
func Snapshot(t testing.TB, name string, spec v1alpha1.ImagePolicySpec, r policy.Resolver, cfg policy.Config) *policy.Snapshot {
	t.Helper()
	ctx := t.Context()
	p := policy.CompileObject(ctx, policy.Object{Kind: policy.KindClusterImagePolicy, Name: name, Spec: spec}, r)
	if p.Err != nil {
		t.Fatal(p.Err)
	}
	snap, err := policy.NewSnapshot([]*policy.Policy{p}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// KeyAuthority requires a signature by a fresh ECDSA key (nothing is signed
// with it unless the test does), without a transparency log; source, when
// set, is where its signatures are (source.oci).
func KeyAuthority(t testing.TB, name, source string) v1alpha1.Authority {
	t.Helper()
	a := v1alpha1.Authority{Name: name, InsecureIgnoreTlog: true,
		Key: &v1alpha1.KeyAuthority{Data: string(sigstoretest.PublicKeyPEM(t, sigstoretest.NewKey(t)))}}
	if source != "" {
		a.Source = &v1alpha1.Source{OCI: source}
	}
	return a
}
