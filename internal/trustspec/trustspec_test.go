package trustspec_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/internal/trustspec"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

// Resolve gives the material of every kind that needs no cluster, and
// errors that name the field.
func TestResolve(t *testing.T) {
	s := sigstoretest.New(t)
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	packed, err := trust.PackDirectory(repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec v1alpha1.TrustRootSpec
		kind string
		want string // error; "" for material
	}{
		{"trusted root", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: string(s.TrustedRootJSON())}}, trustspec.KindTrustedRoot, ""},
		{"broken trusted root", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{Data: "{"}}, trustspec.KindTrustedRoot, "spec.trustedRoot.data: "},
		{"repository", v1alpha1.TrustRootSpec{Repository: &v1alpha1.TUFRepository{MirrorFS: packed, Root: repo.InitialRoot()}}, trustspec.KindRepository, ""},
		{"repository with another root", v1alpha1.TrustRootSpec{Repository: &v1alpha1.TUFRepository{MirrorFS: packed, Root: tuftest.New(t).InitialRoot()}}, trustspec.KindRepository, "spec.repository: "},
		{"config map", v1alpha1.TrustRootSpec{TrustedRoot: &v1alpha1.TrustedRootSource{ConfigMapRef: &v1alpha1.ConfigMapKeyRef{Name: "roots"}}}, trustspec.KindConfigMap, "spec.trustedRoot.configMapRef: a ConfigMap can only be read in a cluster"},
		{"keys without a key", v1alpha1.TrustRootSpec{Keys: &v1alpha1.TrustRootKeys{TransparencyLogs: []v1alpha1.LogPublicKey{{BaseURL: "https://rekor.example", PublicKey: "not PEM"}}}}, trustspec.KindKeys, "spec.keys: "},
		{"remote with a bad mirror", v1alpha1.TrustRootSpec{Remote: &v1alpha1.TUFRemote{Mirror: "ftp://mirror"}}, trustspec.KindRemote, "spec.remote: "},
		{"nothing", v1alpha1.TrustRootSpec{}, "", trustspec.ErrNoKind.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if k := trustspec.Kind(tc.spec); k != tc.kind {
				t.Errorf("Kind = %q, want %q", k, tc.kind)
			}
			m, err := trustspec.Resolve(context.Background(), tc.spec)
			switch {
			case tc.want == "" && (err != nil || m == nil || m.TrustedRoot == nil):
				t.Fatalf("Resolve: %v, %v; want material", m, err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("Resolve: %v; want an error starting %q", err, tc.want)
			}
			if tc.kind == "" && !errors.Is(err, trustspec.ErrNoKind) {
				t.Errorf("Resolve: %v, want ErrNoKind", err)
			}
		})
	}
}
