package cli

import (
	"context"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/trustspec"
)

// FileTrustRoot resolves a TrustRoot given among policy files: its keys or
// trusted root as they are, a serialized repository verified with TUF, a
// remote one fetched once from its mirror (within ctx, and at most a
// minute); a ConfigMap reference needs a cluster.
func FileTrustRoot(ctx context.Context, s v1alpha1.TrustRootSpec) (root.TrustedMaterial, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := trustspec.Resolve(ctx, s)
	if err != nil {
		return nil, err
	}
	return m.TrustedRoot, nil
}
