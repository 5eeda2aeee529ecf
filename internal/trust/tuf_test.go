package trust_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/signet-dev/signet/internal/trust"
	"github.com/signet-dev/signet/test/sigstoretest"
	"github.com/signet-dev/signet/test/tuftest"
)

func newMirrorClient(t *testing.T, repo *tuftest.Repo, srv *tuftest.Server, opts ...trust.TUFOption) *trust.TUF {
	t.Helper()
	m, err := trust.NewMirror(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := trust.NewTUF(repo.InitialRoot(), m, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTUFMirror(t *testing.T) {
	ctx := context.Background()
	repo := tuftest.New(t)
	first := sigstoretest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, first.TrustedRootJSON())
	srv := repo.Serve(t)
	c := newMirrorClient(t, repo, srv)

	if c.Current() != nil {
		t.Fatal("material before the first refresh")
	}
	if srv.Requests() != 0 {
		t.Fatalf("NewTUF made %d requests; it must not touch the network", srv.Requests())
	}

	// First fetch.
	m, err := c.Refresh(ctx)
	if err != nil {
		t.Fatalf("first fetch: %v", err)
	}
	want, _ := trust.NewMaterial(first.TrustedRootJSON())
	if m.Version != want.Version || m.RootVersion != 1 || m.MetadataExpires.IsZero() {
		t.Fatalf("first fetch: version %s root v%d expires %v, want %s root v1", m.Version, m.RootVersion, m.MetadataExpires, want.Version)
	}
	if got := len(m.TrustedRoot.FulcioCertificateAuthorities()); got != 1 {
		t.Fatalf("first fetch: %d CAs, want 1", got)
	}

	// Root key rotation: two new root versions, the second signed by a key
	// the client never saw in version 1.
	repo.RotateRoot()
	repo.RotateRoot()
	repo.Refresh()
	if m, err = c.Refresh(ctx); err != nil {
		t.Fatalf("after root rotation: %v", err)
	}
	if m.RootVersion != 3 {
		t.Fatalf("after root rotation: root v%d, want v3", m.RootVersion)
	}
	// The next refresh starts from v3: it asks for 4.root.json only.
	before := srv.Requests()
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	// 4.root.json (404), timestamp, snapshot, targets, the target.
	if n := srv.Requests() - before; n != 5 {
		t.Errorf("a refresh after rotation made %d requests, want 5 (no re-walk of old roots)", n)
	}

	// Target update: a new Sigstore instance's trusted root.
	second := sigstoretest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, second.TrustedRootJSON())
	if m, err = c.Refresh(ctx); err != nil {
		t.Fatalf("after target update: %v", err)
	}
	want2, _ := trust.NewMaterial(second.TrustedRootJSON())
	if m.Version != want2.Version {
		t.Fatalf("after target update: version %s, want %s", m.Version, want2.Version)
	}

	// Expired timestamp: rejected, the last good material stays.
	repo.ExpireTimestamp()
	_, err = c.Refresh(ctx)
	if !errors.Is(err, trust.ErrMetadataExpired) {
		t.Fatalf("expired timestamp: err = %v, want ErrMetadataExpired", err)
	}
	if cur := c.Current(); cur == nil || cur.Version != want2.Version {
		t.Fatalf("expired timestamp: the last good material was not kept")
	}

	// Mirror down: the refresh fails, the last good material stays.
	repo.Refresh()
	srv.SetDown(true)
	if _, err := c.Refresh(ctx); err == nil {
		t.Fatal("refresh against a down mirror succeeded")
	}
	if cur := c.Current(); cur == nil || cur.Version != want2.Version {
		t.Fatalf("mirror down: the last good material was not kept")
	}
	srv.SetDown(false)
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatalf("mirror back: %v", err)
	}
}

func TestTUFRollbackRefused(t *testing.T) {
	ctx := context.Background()
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, sigstoretest.New(t).TrustedRootJSON())
	// Keep the current timestamp to replay it after newer ones.
	old, err := os.ReadFile(filepath.Join(repo.Dir(), "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	repo.Refresh()
	c := newMirrorClient(t, repo, repo.Serve(t))
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo.Dir(), "timestamp.json"), old, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Refresh(ctx); !errors.Is(err, trust.ErrRollback) {
		t.Fatalf("replayed timestamp: err = %v, want ErrRollback", err)
	}
}

func TestTUFMirrorDownAtStart(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, sigstoretest.New(t).TrustedRootJSON())
	srv := repo.Serve(t)
	srv.SetDown(true)
	c := newMirrorClient(t, repo, srv)
	if _, err := c.Refresh(context.Background()); err == nil {
		t.Fatal("refresh against a down mirror succeeded")
	}
	if c.Current() != nil {
		t.Fatal("material without any successful refresh")
	}
}

func TestTUFMissingTarget(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget("other.json", []byte("{}"))
	c := newMirrorClient(t, repo, repo.Serve(t))
	_, err := c.Refresh(context.Background())
	if err == nil || !strings.Contains(err.Error(), "trusted_root.json") {
		t.Fatalf("err = %v, want one naming trusted_root.json", err)
	}
}

func TestTUFTargetTampered(t *testing.T) {
	repo := tuftest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, sigstoretest.New(t).TrustedRootJSON())
	// Replace the target file with another root of the same length class:
	// the signed hash no longer matches.
	matches, err := filepath.Glob(filepath.Join(repo.Dir(), "targets", "*.trusted_root.json"))
	if err != nil || len(matches) != 1 {
		t.Fatalf("target files: %v %v", matches, err)
	}
	other := sigstoretest.New(t).TrustedRootJSON()
	if err := os.WriteFile(matches[0], other, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newMirrorClient(t, repo, repo.Serve(t))
	if _, err := c.Refresh(context.Background()); err == nil {
		t.Fatal("a tampered target was accepted")
	}
}

func TestPathTraversalRefused(t *testing.T) {
	for _, name := range []string{"../trusted_root.json", "a/../../b", "/etc/passwd", "targets/./x", "", `..\x`, "a//b"} {
		t.Run(name, func(t *testing.T) {
			if err := trust.CheckName(name); !errors.Is(err, trust.ErrUnsafeName) {
				t.Errorf("CheckName(%q) = %v, want ErrUnsafeName", name, err)
			}
			if _, err := trust.NewTUF([]byte("{}"), nil, trust.WithTarget(name)); err == nil {
				t.Errorf("WithTarget(%q) accepted", name)
			}
		})
	}
	for _, name := range []string{"trusted_root.json", "sub/dir/trusted_root.json"} {
		if err := trust.CheckName(name); err != nil {
			t.Errorf("CheckName(%q) = %v", name, err)
		}
	}

	// The origins refuse such names too, whoever asks.
	repo := tuftest.New(t)
	m, err := trust.NewMirror(repo.Serve(t).URL+"/metadata/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Fetch(context.Background(), "../root.json", 1<<20); !errors.Is(err, trust.ErrUnsafeName) {
		t.Errorf("Mirror.Fetch(../root.json) = %v, want ErrUnsafeName", err)
	}
	packed, err := trust.PackDirectory(repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := trust.ReadRepository(packed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fetch(context.Background(), "targets/../root.json", 1<<20); !errors.Is(err, trust.ErrUnsafeName) {
		t.Errorf("Repository.Fetch(targets/../root.json) = %v, want ErrUnsafeName", err)
	}

	// An archive entry outside the repository is refused.
	bad := tarGz(t, map[string]string{"../evil.json": "{}", "timestamp.json": "{}"})
	if _, err := trust.ReadRepository(bad); !errors.Is(err, trust.ErrUnsafeName) {
		t.Fatalf("ReadRepository with ../evil.json: %v, want ErrUnsafeName", err)
	}
}

func TestSerializedRepository(t *testing.T) {
	repo := tuftest.New(t)
	s := sigstoretest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	repo.RotateRoot()
	repo.Refresh()
	packed, err := trust.PackDirectory(repo.Dir())
	if err != nil {
		t.Fatal(err)
	}
	again, err := trust.PackDirectory(repo.Dir())
	if err != nil || string(again) != string(packed) {
		t.Fatalf("packing is not deterministic (err %v)", err)
	}
	r, err := trust.ReadRepository(packed)
	if err != nil {
		t.Fatal(err)
	}
	c, err := trust.NewTUF(repo.InitialRoot(), r)
	if err != nil {
		t.Fatal(err)
	}
	m, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatalf("refresh from the serialized repository: %v", err)
	}
	if m.RootVersion != 2 {
		t.Errorf("root v%d, want v2", m.RootVersion)
	}
	want, _ := trust.NewMaterial(s.TrustedRootJSON())
	if m.Version != want.Version {
		t.Errorf("version %s, want %s", m.Version, want.Version)
	}

	// Packed under a top-level directory, as `tar czf x.tgz repository/`.
	files := map[string]string{}
	for _, n := range r.Names() {
		data, _ := r.Fetch(context.Background(), n, trust.MaxTUFFileSize)
		files["repository/"+n] = string(data)
	}
	r2, err := trust.ReadRepository(tarGz(t, files))
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := trust.NewTUF(repo.InitialRoot(), r2)
	if _, err := c2.Refresh(context.Background()); err != nil {
		t.Fatalf("refresh from a repository under a directory: %v", err)
	}

	// An expired serialized repository is refused.
	repo.ExpireTimestamp()
	packed, _ = trust.PackDirectory(repo.Dir())
	r3, _ := trust.ReadRepository(packed)
	c3, _ := trust.NewTUF(repo.InitialRoot(), r3)
	if _, err := c3.Refresh(context.Background()); !errors.Is(err, trust.ErrMetadataExpired) {
		t.Fatalf("expired repository: %v, want ErrMetadataExpired", err)
	}
}

func TestReadRepositoryLimits(t *testing.T) {
	tests := map[string][]byte{
		"not gzip": []byte("plain"),
		"empty":    tarGz(t, nil),
		"symlink":  tarGzLink(t),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := trust.ReadRepository(data); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		big := tarGz(t, map[string]string{"a": strings.Repeat("x", trust.MaxRepositorySize+1)})
		if _, err := trust.ReadRepository(big); !errors.Is(err, trust.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
}

// TestTUFExportRestore: the last good state, exported, is verified again
// from the initial root by a fresh client (as after a restart) with the
// mirror down; an export a different repository signed is refused.
func TestTUFExportRestore(t *testing.T) {
	ctx := context.Background()
	repo := tuftest.New(t)
	s := sigstoretest.New(t)
	repo.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	srv := repo.Serve(t)
	c := newMirrorClient(t, repo, srv)
	if got, _ := c.Export(); got != nil {
		t.Fatal("an export before any refresh")
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	repo.RotateRoot()
	repo.Refresh()
	m, err := c.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	exported, err := c.Export()
	if err != nil {
		t.Fatal(err)
	}

	srv.SetDown(true)
	fresh := newMirrorClient(t, repo, srv)
	got, err := fresh.Restore(ctx, exported)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got.Version != m.Version || got.RootVersion != 2 {
		t.Fatalf("restored version %s root v%d, want %s root v2", got.Version, got.RootVersion, m.Version)
	}
	if fresh.Current() == nil {
		t.Fatal("restore did not set the current material")
	}

	other := tuftest.New(t)
	other.AddTarget(trust.DefaultTrustedRootTarget, s.TrustedRootJSON())
	foreign, err := trust.PackDirectory(other.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newMirrorClient(t, repo, srv).Restore(ctx, foreign); err == nil {
		t.Fatal("restored another repository's export")
	}
}
