package trust

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"github.com/theupdateframework/go-tuf/v2/metadata/config"
	"github.com/theupdateframework/go-tuf/v2/metadata/updater"
)

// DefaultTrustedRootTarget is the TUF target name of a Sigstore trusted root.
const DefaultTrustedRootTarget = "trusted_root.json"

// Errors of a TUF refresh, matched with errors.Is.
var (
	// ErrMetadataExpired: the repository's metadata (root, timestamp,
	// snapshot or targets) has expired. The TUF specification forbids
	// using it; the client keeps its last good material.
	ErrMetadataExpired = errors.New("TUF metadata expired")
	// ErrRollback: the repository offered a timestamp or snapshot older
	// than one this client already trusted.
	ErrRollback = errors.New("TUF metadata rolled back")
)

// Material is trusted material resolved from a source, with what it is
// known by.
type Material struct {
	// TrustedRoot is the parsed trusted root.
	TrustedRoot *root.TrustedRoot
	// JSON is the trusted root as fetched.
	JSON []byte
	// Version is "sha256:" and the hex sha256 of JSON: equal versions mean
	// equal material.
	Version string
	// MetadataExpires is when the TUF metadata it came through expires
	// (the earliest of root, timestamp, snapshot and targets); zero when it
	// did not come through TUF.
	MetadataExpires time.Time
	// RootVersion is the version of the TUF root.json it was verified
	// with; 0 when it did not come through TUF.
	RootVersion int64
}

// NewMaterial parses a trusted root JSON (at most [MaxTrustedRootFileSize]
// bytes) into Material.
func NewMaterial(data []byte) (*Material, error) {
	if len(data) > MaxTrustedRootFileSize {
		return nil, fmt.Errorf("%w: over %d bytes", ErrTooLarge, MaxTrustedRootFileSize)
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parsing the trusted root: %w", err)
	}
	sum := sha256.Sum256(data)
	return &Material{TrustedRoot: tr, JSON: append([]byte(nil), data...), Version: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// TUF fetches a Sigstore trusted root from a TUF repository and keeps the
// last good one. It is safe for concurrent use; Refresh calls are
// serialized.
//
// Each refresh starts from the newest root.json this client has verified,
// so a rotation is walked once and a repository cannot roll the root back;
// timestamp and snapshot versions lower than the last ones trusted are
// refused ([ErrRollback]); expired metadata is refused
// ([ErrMetadataExpired]). Metadata is held in memory: go-tuf's disk cache
// is off.
type TUF struct {
	src     Origin
	target  string
	targets string

	mu       sync.Mutex // serializes Refresh
	rootJSON []byte     // newest verified root.json
	tsVer    int64
	snapVer  int64
	// kept are the files of the last good state: every root version
	// fetched since the initial root, and the timestamp, snapshot, targets
	// and target of the last successful refresh ([TUF.Export]).
	kept map[string][]byte

	cur  sync.Mutex
	last *Material
}

// TUFOption configures NewTUF.
type TUFOption func(*TUF) error

// WithTarget names the trusted root's TUF target (default
// [DefaultTrustedRootTarget]). The name must be a clean relative path.
func WithTarget(name string) TUFOption {
	return func(c *TUF) error {
		if err := CheckName(name); err != nil {
			return fmt.Errorf("trusted root target: %w", err)
		}
		c.target = name
		return nil
	}
}

// WithTargetsDir names the repository directory holding the targets
// (default "targets"). The name must be a clean relative path.
func WithTargetsDir(dir string) TUFOption {
	return func(c *TUF) error {
		if err := CheckName(dir); err != nil {
			return fmt.Errorf("targets directory: %w", err)
		}
		c.targets = dir
		return nil
	}
}

// NewTUF returns a client of the repository at src that trusts initialRoot
// (a TUF root.json) to begin with. It parses the root and touches nothing
// else: the first [TUF.Refresh] is the first fetch.
func NewTUF(initialRoot []byte, src Origin, opts ...TUFOption) (*TUF, error) {
	if len(initialRoot) == 0 {
		return nil, errors.New("the initial TUF root is empty")
	}
	if len(initialRoot) > MaxTUFFileSize {
		return nil, fmt.Errorf("the initial TUF root: %w", ErrTooLarge)
	}
	if _, err := (&metadata.Metadata[metadata.RootType]{}).FromBytes(initialRoot); err != nil {
		return nil, fmt.Errorf("parsing the initial TUF root: %w", err)
	}
	c := &TUF{src: src, target: DefaultTrustedRootTarget, targets: "targets", rootJSON: append([]byte(nil), initialRoot...)}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Current returns the last good material, or nil before the first
// successful refresh.
func (c *TUF) Current() *Material {
	c.cur.Lock()
	defer c.cur.Unlock()
	return c.last
}

// Refresh runs the TUF client workflow against the source and fetches the
// trusted root target. On success it returns the new material (which may
// equal the previous one); on failure it returns the error and the client
// keeps its last good material ([TUF.Current]).
func (c *TUF) Refresh(ctx context.Context) (*Material, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh(ctx, c.src)
}

// Restore refreshes from a repository [TUF.Export] wrote (of this client,
// or of another with the same initial root, before a restart) instead of
// the source. It is verified as any refresh is, from the newest root this
// client trusts: an export that is expired, rolled back or not signed by
// this repository's keys is refused and changes nothing.
func (c *TUF) Restore(ctx context.Context, exported []byte) (*Material, error) {
	r, err := ReadRepository(exported)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh(ctx, r)
}

// Export packs the files of the last good state as a serialized
// repository ([ReadRepository]) that [TUF.Restore] verifies from the
// initial root; nil before the first success.
func (c *TUF) Export() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.kept) == 0 {
		return nil, nil
	}
	return Pack(c.kept)
}

func (c *TUF) refresh(ctx context.Context, src Origin) (*Material, error) {
	cfg, err := config.New(tufBaseURL, c.rootJSON)
	if err != nil {
		return nil, err
	}
	rec := &fetcher{ctx: ctx, src: src, got: map[string][]byte{}}
	cfg.Fetcher = rec
	cfg.RemoteTargetsURL = tufBaseURL + c.targets + "/"
	cfg.DisableLocalCache = true
	up, err := updater.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("refreshing from %s: %w", src, err)
	}
	if err := up.Refresh(); err != nil {
		return nil, fmt.Errorf("refreshing from %s: %w", src, tufError(err))
	}
	tm := up.GetTrustedMetadataSet()
	ts, snap := tm.Timestamp.Signed.Version, tm.Snapshot.Signed.Version
	if ts < c.tsVer || snap < c.snapVer {
		return nil, fmt.Errorf("refreshing from %s: %w: timestamp version %d (had %d), snapshot version %d (had %d)",
			src, ErrRollback, ts, c.tsVer, snap, c.snapVer)
	}
	info, err := up.GetTargetInfo(c.target)
	if err != nil {
		return nil, fmt.Errorf("refreshing from %s: target %s: %w", src, c.target, tufError(err))
	}
	if err := CheckName(info.Path); err != nil {
		return nil, fmt.Errorf("refreshing from %s: target %w", src, err)
	}
	_, data, err := up.DownloadTarget(info, "", "")
	if err != nil {
		return nil, fmt.Errorf("refreshing from %s: downloading %s: %w", src, c.target, tufError(err))
	}
	m, err := NewMaterial(data)
	if err != nil {
		return nil, fmt.Errorf("refreshing from %s: target %s: %w", src, c.target, err)
	}
	newRoot, err := tm.Root.ToBytes(false)
	if err != nil {
		return nil, err
	}
	m.RootVersion = tm.Root.Signed.Version
	m.MetadataExpires = earliest(tm.Root.Signed.Expires, tm.Timestamp.Signed.Expires, tm.Snapshot.Signed.Expires, tm.Targets[metadata.TARGETS].Signed.Expires)

	c.rootJSON, c.tsVer, c.snapVer = newRoot, ts, snap
	kept := map[string][]byte{}
	for name, data := range c.kept {
		if isRootVersion(name) {
			kept[name] = data
		}
	}
	for name, data := range rec.got {
		kept[name] = data
	}
	c.kept = kept
	c.cur.Lock()
	c.last = m
	c.cur.Unlock()
	return m, nil
}

func earliest(ts ...time.Time) time.Time {
	var e time.Time
	for _, t := range ts {
		if e.IsZero() || t.Before(e) {
			e = t
		}
	}
	return e.UTC()
}

func tufError(err error) error {
	if errors.Is(err, &metadata.ErrExpiredMetadata{}) {
		return fmt.Errorf("%w: %w", ErrMetadataExpired, err)
	}
	return err
}

// tufBaseURL is the base URL go-tuf builds file URLs on; fetcher strips it
// and asks the Origin for the relative name.
const tufBaseURL = "tuf:/repository/"

// fetcher adapts an Origin to go-tuf's Fetcher for one refresh (go-tuf's
// interface carries no context, so each refresh makes its own).
type fetcher struct {
	ctx context.Context //nolint:containedctx // lives for one Refresh call only
	src Origin
	got map[string][]byte // what it fetched, by name
}

// isRootVersion reports whether name is "N.root.json".
func isRootVersion(name string) bool {
	v, ok := strings.CutSuffix(name, ".root.json")
	if !ok || v == "" {
		return false
	}
	for _, r := range v {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (f *fetcher) DownloadFile(u string, maxLength int64, _ time.Duration) ([]byte, error) {
	name, ok := strings.CutPrefix(u, tufBaseURL)
	if !ok {
		return nil, fmt.Errorf("unexpected TUF URL %q", u)
	}
	data, err := f.src.Fetch(f.ctx, name, min(maxLength, MaxTUFFileSize))
	if errors.Is(err, ErrNotFound) {
		// go-tuf ends a root rotation walk on a 404 (ErrDownloadHTTP).
		return nil, &metadata.ErrDownloadHTTP{StatusCode: 404, URL: u}
	}
	if err == nil {
		f.got[name] = data
	}
	return data, err
}
