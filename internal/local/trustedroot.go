package local

import (
	"context"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/internal/trustspec"
)

// TrustedRoot reads a trusted_root.json (--trusted-root), or gives the
// embedded public-good root for "".
func TrustedRoot(path string) (*root.TrustedRoot, error) {
	if path == "" {
		return trust.PublicGood()
	}
	return trust.LoadTrustedRootFile(path)
}

// TrustRoot resolves a TrustRoot given among policy files: its keys or
// trusted root as they are, a serialized repository verified with TUF, a
// remote one fetched once from its mirror (within ctx, and at most a
// minute); a ConfigMap reference needs a cluster.
func TrustRoot(ctx context.Context, s v1alpha1.TrustRootSpec) (root.TrustedMaterial, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := trustspec.Resolve(ctx, s)
	if err != nil {
		return nil, err
	}
	return m.TrustedRoot, nil
}
