// Package trustspec turns the spec of a TrustRoot into trust material: the
// part of TrustRoot handling that needs no cluster. The controller builds on
// it (adding ConfigMaps, background refreshes and status); the commands that
// read TrustRoots from files (signet trustroot, policy test, verify
// --policy, export, policy convert) and the node agent use Resolve. It does
// not import the Kubernetes client libraries, so the signet CLI does not
// pay their start-up.
package trustspec

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-dev/signet/api/v1alpha1"
	"github.com/signet-dev/signet/internal/trust"
)

// DefaultRefreshInterval is how often a remote TrustRoot is refreshed when
// its refreshInterval is not set.
const DefaultRefreshInterval = 24 * time.Hour

// The kinds of TrustRoot, as Kind names them.
const (
	KindRemote      = "remote"
	KindRepository  = "repository"
	KindConfigMap   = "configMap"
	KindTrustedRoot = "trustedRoot"
	KindKeys        = "keys"
)

// Kind names the source s gives (one of the Kind constants), or "" when it
// gives none. The API server's validation allows exactly one.
func Kind(s v1alpha1.TrustRootSpec) string {
	switch {
	case s.Remote != nil:
		return KindRemote
	case s.Repository != nil:
		return KindRepository
	case s.TrustedRoot != nil && s.TrustedRoot.ConfigMapRef != nil:
		return KindConfigMap
	case s.TrustedRoot != nil:
		return KindTrustedRoot
	case s.Keys != nil:
		return KindKeys
	}
	return ""
}

// ErrNoKind is the error of a spec that gives no source.
var ErrNoKind = errors.New("spec: give exactly one of remote, repository, trustedRoot or keys")

// Remote returns the TUF client of a remote TrustRoot and how often it is
// refreshed. Nothing is fetched.
func Remote(s *v1alpha1.TUFRemote) (*trust.TUF, time.Duration, error) {
	interval := DefaultRefreshInterval
	if s.RefreshInterval != nil && s.RefreshInterval.Duration > 0 {
		interval = s.RefreshInterval.Duration
	}
	m, err := trust.NewMirror(s.Mirror, nil)
	if err != nil {
		return nil, interval, FieldErr("spec.remote", err)
	}
	tuf, err := trust.NewTUF(s.Root, m, targetOpts(s.TrustedRootTarget, "")...)
	return tuf, interval, FieldErr("spec.remote", err)
}

// Repository returns the TUF client of an in-line repository and its
// material, verified in memory (no network).
func Repository(s *v1alpha1.TUFRepository) (*trust.TUF, *trust.Material, error) {
	r, err := trust.ReadRepository(s.MirrorFS)
	if err != nil {
		return nil, nil, FieldErr("spec.repository", err)
	}
	tuf, err := trust.NewTUF(s.Root, r, targetOpts(s.TrustedRootTarget, s.Targets)...)
	if err != nil {
		return nil, nil, FieldErr("spec.repository", err)
	}
	m, err := tuf.Refresh(context.Background())
	return tuf, m, FieldErr("spec.repository", err)
}

// TrustedRoot reads an in-line trusted_root.json.
func TrustedRoot(data string) (*trust.Material, error) {
	m, err := trust.NewMaterial([]byte(data))
	return m, FieldErr("spec.trustedRoot.data", err)
}

// Keys builds the material of a TrustRoot of keys.
func Keys(k *v1alpha1.TrustRootKeys) (*trust.Material, error) {
	m, err := keysOf(k).Material()
	return m, FieldErr("spec.keys", err)
}

// Resolve resolves a TrustRoot spec outside a cluster: a remote one is
// fetched from its mirror once; a ConfigMap reference cannot be resolved.
func Resolve(ctx context.Context, s v1alpha1.TrustRootSpec) (*trust.Material, error) {
	switch Kind(s) {
	case KindRemote:
		tuf, _, err := Remote(s.Remote)
		if err != nil {
			return nil, err
		}
		m, err := tuf.Refresh(ctx)
		return m, FieldErr("spec.remote", err)
	case KindRepository:
		_, m, err := Repository(s.Repository)
		return m, err
	case KindConfigMap:
		return nil, errors.New("spec.trustedRoot.configMapRef: a ConfigMap can only be read in a cluster")
	case KindTrustedRoot:
		return TrustedRoot(s.TrustedRoot.Data)
	case KindKeys:
		return Keys(s.Keys)
	}
	return nil, ErrNoKind
}

// FieldErr prefixes err, if any, with the field it is about.
func FieldErr(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", path, err)
}

func targetOpts(target, dir string) []trust.TUFOption {
	var opts []trust.TUFOption
	if target != "" {
		opts = append(opts, trust.WithTarget(target))
	}
	if dir != "" {
		opts = append(opts, trust.WithTargetsDir(dir))
	}
	return opts
}

func keysOf(k *v1alpha1.TrustRootKeys) trust.Keys {
	ca := func(in []v1alpha1.CertificateAuthorityKey) []trust.CertificateAuthority {
		var out []trust.CertificateAuthority
		for _, c := range in {
			out = append(out, trust.CertificateAuthority{URI: c.URI, CertChain: []byte(c.CertChain), Start: timeOf(c.ValidFrom), End: timeOf(c.ValidUntil)})
		}
		return out
	}
	logs := func(in []v1alpha1.LogPublicKey) []trust.LogKey {
		var out []trust.LogKey
		for _, l := range in {
			out = append(out, trust.LogKey{BaseURL: l.BaseURL, PublicKey: []byte(l.PublicKey), Start: timeOf(l.ValidFrom), End: timeOf(l.ValidUntil)})
		}
		return out
	}
	return trust.Keys{CertificateAuthorities: ca(k.CertificateAuthorities), TimestampAuthorities: ca(k.TimestampAuthorities),
		TransparencyLogs: logs(k.TransparencyLogs), CTLogs: logs(k.CTLogs)}
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
