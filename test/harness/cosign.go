package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Format is a signature storage format cosign can write.
type Format int

const (
	// Legacy is cosign's original format: simple-signing payloads (and DSSE
	// envelopes for attestations) as layers of sha256-<hex>.sig / .att tags.
	Legacy Format = iota
	// Bundle is a Sigstore bundle attached to the image as an OCI 1.1 referrer
	// (or through the referrers tag schema where the registry has no API).
	Bundle
)

func (f Format) String() string {
	if f == Bundle {
		return "bundle"
	}
	return "legacy"
}

// Formats lists every format, for table tests.
var Formats = []Format{Legacy, Bundle}

// Cosign runs the real cosign CLI (bin/cosign) with a private HOME, so no
// user configuration, credentials or TUF cache leak into a test, and nothing
// leaves the machine: signatures are made with keys and without a transparency
// log.
type Cosign struct {
	bin  string
	dir  string
	env  []string
	keys int
}

// KeyPair is a cosign key pair on disk.
type KeyPair struct {
	// Private is the path of the encrypted private key (empty password).
	Private string
	// Public is the path of the PEM public key.
	Public string
}

// NewCosign returns a cosign runner for the test.
func NewCosign(t testing.TB) *Cosign {
	t.Helper()
	dir := t.TempDir()
	env := []string{
		"HOME=" + dir,
		"PATH=" + os.Getenv("PATH"),
		"TUF_ROOT=" + filepath.Join(dir, "tuf"),
		"COSIGN_PASSWORD=",
		"COSIGN_EXPERIMENTAL=",
		"DOCKER_CONFIG=" + filepath.Join(dir, "docker"),
		"SIGSTORE_NO_CACHE=true",
	}
	return &Cosign{bin: Binary(t, "cosign"), dir: dir, env: env}
}

// Run runs cosign with args and returns its combined output. It fails after
// two minutes.
func (c *Cosign) Run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("cosign %s: %w\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

func (c *Cosign) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := c.Run(t.Context(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// GenerateKeyPair makes a new ECDSA P-256 cosign key pair.
func (c *Cosign) GenerateKeyPair(t testing.TB) KeyPair {
	t.Helper()
	c.keys++
	prefix := filepath.Join(c.dir, "key"+strconv.Itoa(c.keys))
	c.must(t, "generate-key-pair", "--output-key-prefix", prefix)
	return KeyPair{Private: prefix + ".key", Public: prefix + ".pub"}
}

// offlineFlags make cosign sign with a key, without a transparency log or a
// signing configuration fetched from the network.
func offlineFlags(f Format) []string {
	return []string{
		"--yes",
		"--tlog-upload=false",
		"--use-signing-config=false",
		"--new-bundle-format=" + strconv.FormatBool(f == Bundle),
		"--allow-http-registry",
		"--allow-insecure-registry",
	}
}

// Sign signs image (a reference by digest or tag) with key in format f.
func (c *Cosign) Sign(t testing.TB, image string, key KeyPair, f Format, extra ...string) {
	t.Helper()
	args := append([]string{"sign", "--key", key.Private}, offlineFlags(f)...)
	args = append(append(args, extra...), image)
	c.must(t, args...)
}

// Attest attaches an in-toto attestation with the given predicate type and
// predicate (JSON) to image, signed with key, in format f; extra are more
// cosign attest flags (e.g. --certificate).
func (c *Cosign) Attest(t testing.TB, image string, key KeyPair, predicateType string, predicate []byte, f Format, extra ...string) {
	t.Helper()
	path := filepath.Join(c.dir, fmt.Sprintf("predicate-%d.json", time.Now().UnixNano()))
	if err := os.WriteFile(path, predicate, 0o600); err != nil {
		t.Fatalf("writing the predicate: %v", err)
	}
	args := append([]string{"attest", "--key", key.Private, "--type", predicateType, "--predicate", path}, offlineFlags(f)...)
	args = append(args, extra...)
	c.must(t, append(args, image)...)
}

func verifyFlags(key KeyPair, f Format) []string {
	return []string{
		"--key", key.Public,
		"--insecure-ignore-tlog",
		"--new-bundle-format=" + strconv.FormatBool(f == Bundle),
		"--allow-http-registry",
		"--allow-insecure-registry",
	}
}

// Verify runs `cosign verify` on image with key and returns its output, or an
// error if cosign did not accept the signature.
func (c *Cosign) Verify(ctx context.Context, image string, key KeyPair, f Format) (string, error) {
	return c.Run(ctx, append(append([]string{"verify"}, verifyFlags(key, f)...), image)...)
}

// VerifyAttestation runs `cosign verify-attestation` for predicateType.
func (c *Cosign) VerifyAttestation(ctx context.Context, image string, key KeyPair, predicateType string, f Format) (string, error) {
	args := append([]string{"verify-attestation", "--type", predicateType}, verifyFlags(key, f)...)
	return c.Run(ctx, append(args, image)...)
}

// WithEnv returns a cosign runner sharing c's keys and home that also sets the
// given KEY=value environment variables, e.g. COSIGN_REPOSITORY.
func (c *Cosign) WithEnv(kv ...string) *Cosign {
	cp := *c
	cp.env = append(append([]string(nil), c.env...), kv...)
	return &cp
}

// SignBlob signs the file at path with key, offline, and returns the path of
// the Sigstore bundle (v0.3, message signature) cosign wrote.
func (c *Cosign) SignBlob(t testing.TB, path string, key KeyPair) string {
	t.Helper()
	c.keys++
	out := filepath.Join(c.dir, "blob-"+strconv.Itoa(c.keys)+".sigstore.json")
	c.must(t, "sign-blob", "--key", key.Private, "--bundle", out, "--new-bundle-format=true",
		"--use-signing-config=false", "--tlog-upload=false", "--yes", path)
	return out
}
