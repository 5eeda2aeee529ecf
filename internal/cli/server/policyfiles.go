package server

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/manifests"
	"github.com/signet-dev/signet/internal/policy"
)

// filePolicies are the policies of the files at path, compiled now (an
// invalid one is an error: nothing is served); a new default root (--tuf)
// recompiles them, and a failure then keeps the last snapshot.
func filePolicies(ctx context.Context, log *slog.Logger, path string, cfg policy.Config, defaultRoot *defaultTrust) (*policySource, error) {
	snap, err := loadPolicyFiles(ctx, path, cfg, defaultRoot.Material)
	if err != nil {
		return nil, err
	}
	current := new(atomic.Pointer[policy.Snapshot])
	current.Store(snap)
	ready := make(chan struct{})
	close(ready)
	return &policySource{
		snapshot: current.Load,
		ready:    ready,
		run: func(ctx context.Context) {
			defaultRoot.Run(ctx, log, func() {
				c := cfg
				c.TrustVersion = defaultRoot.Version()
				if snap, err := loadPolicyFiles(ctx, path, c, defaultRoot.Material); err == nil {
					current.Store(snap)
				} else {
					log.Error("recompiling the policy files after a trusted root refresh", "err", err)
				}
			})
		},
	}, nil
}

// loadPolicyFiles compiles the policies of the files at path into a
// snapshot; TrustRoots among the files are resolved as signet policy test
// resolves them.
func loadPolicyFiles(ctx context.Context, path string, cfg policy.Config, trustFn func() (root.TrustedMaterial, error)) (*policy.Snapshot, error) {
	set, err := manifests.Load(path)
	if err != nil {
		return nil, err
	}
	res := manifests.Resolver{Set: set, Default: trustFn, TrustRoot: local.TrustRoot}
	var compiled []*policy.Policy
	var invalid []string
	for _, obj := range set.Policies {
		p := policy.CompileObject(ctx, obj, res)
		if p.Err != nil {
			invalid = append(invalid, p.Err.Error())
		}
		compiled = append(compiled, p)
	}
	if len(invalid) > 0 {
		return nil, fmt.Errorf("invalid policies in %s:\n%s", path, strings.Join(invalid, "\n"))
	}
	return policy.NewSnapshot(compiled, cfg)
}
