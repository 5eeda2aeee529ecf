// Package tuftest builds real TUF repositories for tests with go-tuf v2's
// metadata API: ed25519 keys per role, consistent snapshots, targets stored
// as <sha256>.<name> as the Sigstore repository stores them. A Repo is
// written to a directory (served with [Repo.Serve], packed by the code under
// test) after every change; nothing is mocked.
package tuftest

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Repo is a TUF repository on disk with one key per role.
type Repo struct {
	t   testing.TB
	dir string

	mu        sync.Mutex
	keys      map[string]ed25519.PrivateKey
	root      *metadata.Metadata[metadata.RootType]
	targets   *metadata.Metadata[metadata.TargetsType]
	snapshot  *metadata.Metadata[metadata.SnapshotType]
	timestamp *metadata.Metadata[metadata.TimestampType]
	rootV1    []byte
	expires   time.Time
}

// New creates a repository whose metadata expires in a week, with no
// targets yet, in a temporary directory.
func New(t testing.TB) *Repo {
	t.Helper()
	r := &Repo{t: t, dir: t.TempDir(), keys: map[string]ed25519.PrivateKey{}, expires: time.Now().Add(7 * 24 * time.Hour).UTC().Truncate(time.Second)}
	r.root = metadata.Root(r.expires)
	for _, role := range []string{metadata.ROOT, metadata.TIMESTAMP, metadata.SNAPSHOT, metadata.TARGETS} {
		r.keys[role] = newKey(t)
		r.addKey(role, r.keys[role])
	}
	r.targets = metadata.Targets(r.expires)
	r.snapshot = metadata.Snapshot(r.expires)
	r.timestamp = metadata.Timestamp(r.expires)
	r.writeRoot(r.keys[metadata.ROOT])
	r.rootV1 = r.read("1.root.json")
	r.publish(0)
	return r
}

// Dir is the repository directory: N.root.json, root.json, timestamp.json,
// N.snapshot.json, N.targets.json, targets/<sha256>.<name>.
func (r *Repo) Dir() string { return r.dir }

// InitialRoot is version 1 of root.json, what a client starts from.
func (r *Repo) InitialRoot() []byte { return append([]byte(nil), r.rootV1...) }

// RootVersion is the current root version.
func (r *Repo) RootVersion() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.root.Signed.Version
}

// AddTarget adds (or replaces) a target and publishes new targets, snapshot
// and timestamp metadata. The name is written into the metadata as given;
// only the file on disk uses its base name.
func (r *Repo) AddTarget(name string, data []byte) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	tf, err := metadata.TargetFile().FromBytes(name, data, "sha256")
	if err != nil {
		r.t.Fatalf("tuftest: target %s: %v", name, err)
	}
	r.targets.Signed.Targets[name] = tf
	sum := sha256.Sum256(data)
	dir, base := path.Split(name)
	if dir == "" || filepath.IsLocal(dir) {
		p := filepath.Join(r.dir, "targets", filepath.FromSlash(dir), hex.EncodeToString(sum[:])+"."+base)
		r.write(p, data)
	}
	r.targets.Signed.Version++
	r.publish(0)
}

// RotateRoot publishes a new root version with a new root key, signed by the
// old and the new root keys, as a real key rotation is.
func (r *Repo) RotateRoot() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.keys[metadata.ROOT]
	oldID := keyID(r.t, old)
	if err := r.root.Signed.RevokeKey(oldID, metadata.ROOT); err != nil {
		r.t.Fatal(err)
	}
	r.keys[metadata.ROOT] = newKey(r.t)
	r.addKey(metadata.ROOT, r.keys[metadata.ROOT])
	r.root.Signed.Version++
	r.writeRoot(old, r.keys[metadata.ROOT])
}

// ExpireTimestamp publishes a new timestamp that expired an hour ago.
func (r *Repo) ExpireTimestamp() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publish(-time.Hour - time.Until(r.expires))
}

// Refresh re-signs the snapshot and timestamp with fresh versions and
// expiry, undoing ExpireTimestamp.
func (r *Repo) Refresh() {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.publish(0)
}

// publish writes targets (if changed), snapshot and timestamp, the
// timestamp's expiry shifted by shift.
func (r *Repo) publish(shift time.Duration) {
	r.t.Helper()
	targetsJSON := r.sign(r.targets, metadata.TARGETS)
	r.write(filepath.Join(r.dir, fmt.Sprintf("%d.targets.json", r.targets.Signed.Version)), targetsJSON)
	r.snapshot.Signed.Meta["targets.json"] = metadata.MetaFile(r.targets.Signed.Version)
	r.snapshot.Signed.Version++
	snapJSON := r.sign(r.snapshot, metadata.SNAPSHOT)
	r.write(filepath.Join(r.dir, fmt.Sprintf("%d.snapshot.json", r.snapshot.Signed.Version)), snapJSON)
	r.timestamp.Signed.Meta["snapshot.json"] = metadata.MetaFile(r.snapshot.Signed.Version)
	r.timestamp.Signed.Version++
	r.timestamp.Signed.Expires = r.expires.Add(shift)
	r.write(filepath.Join(r.dir, "timestamp.json"), r.sign(r.timestamp, metadata.TIMESTAMP))
}

func (r *Repo) writeRoot(signers ...ed25519.PrivateKey) {
	r.t.Helper()
	r.root.ClearSignatures()
	for _, k := range signers {
		s, err := signature.LoadSigner(k, crypto.Hash(0))
		if err != nil {
			r.t.Fatal(err)
		}
		if _, err := r.root.Sign(s); err != nil {
			r.t.Fatal(err)
		}
	}
	data, err := r.root.ToBytes(true)
	if err != nil {
		r.t.Fatal(err)
	}
	r.write(filepath.Join(r.dir, fmt.Sprintf("%d.root.json", r.root.Signed.Version)), data)
	r.write(filepath.Join(r.dir, "root.json"), data)
}

func sign[T metadata.Roles](t testing.TB, m *metadata.Metadata[T], key ed25519.PrivateKey) []byte {
	t.Helper()
	m.ClearSignatures()
	s, err := signature.LoadSigner(key, crypto.Hash(0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sign(s); err != nil {
		t.Fatal(err)
	}
	data, err := m.ToBytes(true)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (r *Repo) sign(m any, role string) []byte {
	switch m := m.(type) {
	case *metadata.Metadata[metadata.TargetsType]:
		return sign(r.t, m, r.keys[role])
	case *metadata.Metadata[metadata.SnapshotType]:
		return sign(r.t, m, r.keys[role])
	case *metadata.Metadata[metadata.TimestampType]:
		return sign(r.t, m, r.keys[role])
	}
	r.t.Fatalf("tuftest: cannot sign %T", m)
	return nil
}

func (r *Repo) addKey(role string, k ed25519.PrivateKey) {
	r.t.Helper()
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.root.Signed.AddKey(key, role); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Repo) write(p string, data []byte) {
	r.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
		r.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o600); err != nil {
		r.t.Fatal(err)
	}
}

func (r *Repo) read(name string) []byte {
	r.t.Helper()
	data, err := os.ReadFile(filepath.Join(r.dir, name)) //nolint:gosec // G304: a file of the test repository
	if err != nil {
		r.t.Fatal(err)
	}
	return data
}

func newKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyID(t testing.TB, k ed25519.PrivateKey) string {
	t.Helper()
	key, err := metadata.KeyFromPublicKey(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	id, err := key.ID()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Server serves a Repo over HTTP on loopback and counts requests; it can be
// taken down and brought back.
type Server struct {
	URL      string
	down     atomic.Bool
	requests atomic.Int64
	srv      *httptest.Server
}

// Serve serves the repository directory on a loopback port until the test
// ends.
func (r *Repo) Serve(t testing.TB) *Server {
	s := &Server{}
	files := http.FileServer(http.Dir(r.dir))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.requests.Add(1)
		if s.down.Load() {
			// As a dead mirror behind a proxy answers.
			http.Error(w, "mirror down", http.StatusBadGateway)
			return
		}
		files.ServeHTTP(w, req)
	}))
	t.Cleanup(s.srv.Close)
	s.URL = s.srv.URL
	return s
}

// SetDown makes the server answer 502 to everything (true) or serve again.
func (s *Server) SetDown(down bool) { s.down.Store(down) }

// Requests counts the requests served so far.
func (s *Server) Requests() int64 { return s.requests.Load() }
