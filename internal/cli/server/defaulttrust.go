package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgtuf "github.com/sigstore/sigstore-go/pkg/tuf"
	"github.com/spf13/pflag"

	"github.com/signet-dev/signet/internal/controller"
	"github.com/signet-dev/signet/internal/local"
	"github.com/signet-dev/signet/internal/trust"
)

// PublicGoodMirror is the Sigstore public-good TUF repository.
const PublicGoodMirror = "https://tuf-repo-cdn.sigstore.dev"

// tufOptions choose how signet serve keeps its default trusted root (the
// one keyless authorities without a trustRootRef use).
type tufOptions struct {
	enabled  bool
	mirror   string
	rootFile string
	interval time.Duration
	flags    *pflag.FlagSet
}

// AddFlags registers --tuf, --tuf-mirror, --tuf-root and
// --tuf-refresh-interval.
func (o *tufOptions) AddFlags(f *pflag.FlagSet) {
	o.flags = f
	f.BoolVar(&o.enabled, "tuf", false, "refresh the default trusted root over TUF from --tuf-mirror (off by default: start-up and the default root need no network; the embedded public-good root is used)")
	f.StringVar(&o.mirror, "tuf-mirror", PublicGoodMirror, "TUF repository (or a mirror of it) to refresh the default trusted root from; giving it turns --tuf on")
	f.StringVar(&o.rootFile, "tuf-root", "", "initial root.json of --tuf-mirror (default: the public-good root.json built into signet)")
	f.DurationVar(&o.interval, "tuf-refresh-interval", controller.DefaultRefreshInterval, "how often the default trusted root is refreshed over TUF")
}

// Validate resolves --tuf-mirror implying --tuf and rejects conflicts.
func (o *tufOptions) Validate(trustedRoot string) error {
	mirrorSet := o.flags != nil && o.flags.Changed("tuf-mirror")
	tufSet := o.flags != nil && o.flags.Changed("tuf")
	switch {
	case mirrorSet && tufSet && !o.enabled:
		return errors.New("--tuf=false turns TUF off but --tuf-mirror asks for it: give one of them")
	case mirrorSet:
		o.enabled = true
	}
	if o.rootFile != "" && !o.enabled {
		return errors.New("--tuf-root needs --tuf or --tuf-mirror")
	}
	if o.enabled && trustedRoot != "" {
		return errors.New("--trusted-root replaces the default root with a file and --tuf refreshes it over TUF: give one of them")
	}
	if o.enabled && o.interval < time.Minute {
		return errors.New("--tuf-refresh-interval must be at least 1m")
	}
	if o.enabled {
		if _, err := trust.NewMirror(o.mirror, nil); err != nil {
			return err
		}
	}
	return nil
}

// defaultTrust is signet serve's default trusted material: the embedded
// public-good root, a --trusted-root file, or (with --tuf) the last good
// root fetched over TUF, starting from the embedded one.
type defaultTrust struct {
	file     string
	tuf      *trust.TUF
	interval time.Duration
	metrics  *controller.TrustRootMetrics

	mu       sync.Mutex
	material root.TrustedMaterial
	version  string
}

// defaultTrustName labels the default root in metrics.
const defaultTrustName = "(default)"

func newDefaultTrust(trustedRoot string, o tufOptions, metrics *controller.TrustRootMetrics) (*defaultTrust, error) {
	d := &defaultTrust{file: trustedRoot, interval: o.interval, metrics: metrics}
	if trustedRoot != "" {
		data, err := local.ReadFile(trustedRoot, trust.MaxTrustedRootFileSize)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		d.version = "file:" + hex.EncodeToString(sum[:8])
	} else {
		d.version = "embedded:" + trust.EmbeddedSource().SHA256
	}
	if !o.enabled {
		return d, nil
	}
	initial := sgtuf.DefaultRoot()
	if o.rootFile != "" {
		var err error
		if initial, err = local.ReadFile(o.rootFile, trust.MaxTUFFileSize); err != nil {
			return nil, err
		}
	}
	m, err := trust.NewMirror(o.mirror, nil)
	if err != nil {
		return nil, err
	}
	if d.tuf, err = trust.NewTUF(initial, m); err != nil {
		return nil, err
	}
	return d, nil
}

// Material returns the default trusted material (policy compilers call it
// lazily: a policy with only keys never loads a root).
func (d *defaultTrust) Material() (root.TrustedMaterial, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.material != nil {
		return d.material, nil
	}
	tr, err := local.TrustedRoot(d.file)
	if err != nil {
		return nil, err
	}
	d.material = tr
	return tr, nil
}

// Version names the default material now.
func (d *defaultTrust) Version() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.version
}

// Run refreshes the default root over TUF (when --tuf is on) right away in
// the background, then every interval, retrying a failure after a minute
// (doubling up to the interval). A new root calls changed; a failure keeps
// the current root and is logged. It returns when ctx ends.
func (d *defaultTrust) Run(ctx context.Context, log *slog.Logger, changed func()) {
	if d.tuf == nil {
		return
	}
	wait, failures := time.Duration(0), 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		m, err := d.tuf.Refresh(rctx)
		cancel()
		d.metrics.Observe(defaultTrustName, m, err, time.Now())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait = min(time.Minute<<min(failures-1, 16), d.interval)
			log.Warn("refreshing the default trusted root over TUF; keeping the current one", "err", err, "retry", wait.String())
			continue
		}
		failures, wait = 0, d.interval
		d.mu.Lock()
		newVersion := "tuf:" + m.Version
		update := newVersion != d.version
		d.material, d.version = m.TrustedRoot, newVersion
		d.mu.Unlock()
		if update {
			log.Info("default trusted root refreshed over TUF", "version", m.Version, "rootVersion", m.RootVersion)
			changed()
		}
	}
}
