package main

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	pemlib "encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/signet-dev/signet/test/harness"
	"github.com/signet-dev/signet/test/registrytest"
)

const testVersion = "v9.8.7-imagetest"

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// testCABundle writes a PEM bundle of one self-signed CA certificate.
func testCABundle(t *testing.T) (path string, pem []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "signet image test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	pem = pemlib.EncodeToMemory(&pemlib.Block{Type: "CERTIFICATE", Bytes: der})
	path = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pem
}

// buildImage runs the command with args and returns what it printed.
func buildImage(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	args = append([]string{"--source", repoRoot(t), "--ldflags", "-X github.com/signet-dev/signet/internal/version.version=" + testVersion}, args...)
	if code := run(t.Context(), args, &out, &errb); code != 0 {
		t.Fatalf("image %v: exit %d\n%s", args, code, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// layerFiles reads the files of img's only layer.
func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %d, want 1", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
	}
}

// extract writes the regular files of img's layer named in want into dir,
// by base name.
func extract(t *testing.T, img v1.Image, dir string, want ...string) {
	t.Helper()
	layers, _ := img.Layers()
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(want, h.Name) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(h.Name)), data, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
	}
}

// The image pushed to a registry holds both binaries and the CA bundle, is
// configured to run as a numeric non-root user, and its signet runs, finding
// the signet-server beside it; a second build has the same digest.
func TestImage(t *testing.T) {
	reg := registrytest.StartInProcess(t, false)
	tag := reg.Host + "/signet/signet:test"
	caPath, caPEM := testCABundle(t)
	printed := buildImage(t, "--push", tag, "--version", testVersion, "--revision", "0123abcd", "--ca-bundle", caPath)
	ref, digest, ok := strings.Cut(printed, "@")
	if !ok || ref != tag || !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("printed %q, want %s@sha256:...", printed, tag)
	}

	r, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := img.Digest(); d.String() != digest {
		t.Errorf("the registry holds %s under %s, the command printed %s", d, tag, digest)
	}
	if mt, _ := img.MediaType(); mt != types.OCIManifestSchema1 {
		t.Errorf("manifest media type %s, want %s", mt, types.OCIManifestSchema1)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if !slices.Equal(cf.Config.Entrypoint, []string{"/usr/local/bin/signet"}) || cf.Config.User != "65532:65532" {
		t.Errorf("entrypoint %q user %q, want [/usr/local/bin/signet] 65532:65532", cf.Config.Entrypoint, cf.Config.User)
	}
	if l := cf.Config.Labels; l["org.opencontainers.image.version"] != testVersion || l["org.opencontainers.image.revision"] != "0123abcd" || l["org.opencontainers.image.source"] == "" {
		t.Errorf("labels %v", l)
	}

	files := layerFiles(t, img)
	for _, f := range []string{"usr/local/bin/signet", "usr/local/bin/signet-server"} {
		h := files[f]
		if h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o755 || h.Uid != 0 {
			t.Errorf("%s: %+v, want a root-owned regular file, mode 0755", f, h)
		}
	}
	if h := files["etc/ssl/certs/ca-certificates.crt"]; h == nil || h.Typeflag != tar.TypeReg || h.Mode != 0o644 {
		t.Errorf("the CA bundle: %+v, want a regular file, mode 0644", h)
	}

	// The binaries of the layer run here (the image is for this machine's
	// architecture), and signet finds signet-server beside it, as in the
	// container, not on PATH.
	dir := t.TempDir()
	extract(t, img, dir, "usr/local/bin/signet", "usr/local/bin/signet-server", "etc/ssl/certs/ca-certificates.crt")
	if got, _ := os.ReadFile(filepath.Join(dir, "ca-certificates.crt")); !bytes.Equal(got, caPEM) {
		t.Errorf("the image's CA bundle is not the one given to --ca-bundle:\n%s", got)
	}
	signet := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(filepath.Join(dir, "signet"), args...)
		cmd.Env = []string{"PATH=/nonexistent", "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("signet %v from the image: %v\n%s", args, err, out)
		}
		return string(out)
	}
	if out := signet("version"); !strings.Contains(out, testVersion) {
		t.Errorf("signet version from the image: %q, want %s in it", out, testVersion)
	}
	if out := signet("serve", "--help"); !strings.Contains(out, "--validating-webhook") {
		t.Errorf("signet serve --help from the image does not show serve's flags:\n%s", out)
	}

	// Reproducible: the same source gives the same digest.
	again := buildImage(t, "--oci-layout", t.TempDir(), "--version", testVersion, "--revision", "0123abcd", "--ca-bundle", caPath)
	if again != digest {
		t.Errorf("a second build's digest is %s, the first's %s", again, digest)
	}
}

// Several platforms make an OCI index whose images hold binaries for their
// own architecture.
func TestImageIndex(t *testing.T) {
	dir := t.TempDir()
	caPath, _ := testCABundle(t)
	digest := buildImage(t, "--oci-layout", dir, "--platforms", "linux/amd64,linux/arm64", "--ca-bundle", caPath)
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := v1.NewHash(digest)
	if err != nil {
		t.Fatalf("printed %q: %v", digest, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	idx, err = idx.ImageIndex(h)
	if err != nil {
		t.Fatalf("the layout has no index %s: %v", digest, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex || len(im.Manifests) != 2 {
		t.Fatalf("index %s with %d manifests, want an OCI index of 2", im.MediaType, len(im.Manifests))
	}
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, desc := range im.Manifests {
		arch := desc.Platform.Architecture
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if desc.Platform.OS != "linux" || cf.Architecture != arch {
			t.Errorf("index entry %s/%s holds an image for %s", desc.Platform.OS, arch, cf.Architecture)
		}
		bin := t.TempDir()
		extract(t, img, bin, "usr/local/bin/signet", "usr/local/bin/signet-server")
		for _, b := range []string{"signet", "signet-server"} {
			f, err := elf.Open(filepath.Join(bin, b))
			if err != nil {
				t.Fatalf("%s of the %s image: %v", b, arch, err)
			}
			if f.Machine != machines[arch] {
				t.Errorf("%s of the %s image is for %s", b, arch, f.Machine)
			}
			f.Close()
		}
	}
}

// Bad flags get exit 2 and say what is wrong.
func TestImageFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give one of --push IMAGE or --oci-layout DIR"},
		{[]string{"--push", "r.example/s:v1", "--oci-layout", "x"}, "give one of"},
		{[]string{"--push", "r.example/s:Bad Tag"}, "--push"},
		{[]string{"--oci-layout", "x", "--platforms", "windows/amd64"}, "linux only"},
		{[]string{"--oci-layout", "x", "--platforms", "amd64"}, "want os/arch"},
		{[]string{"--oci-layout", "x", "extra"}, "unexpected arguments"},
		{[]string{"--oci-layout", "x", "--platforms", "linux/amd64, linux/amd64"}, "given twice"},
	} {
		var out, errb bytes.Buffer
		if code := run(t.Context(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("image %q: exit %d, %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
	// A CA bundle without certificates is refused before anything is built.
	notPEM := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	var caErr bytes.Buffer
	if code := run(t.Context(), []string{"--oci-layout", t.TempDir(), "--ca-bundle", notPEM}, io.Discard, &caErr); code != 1 || !strings.Contains(caErr.String(), "holds no PEM certificate") || strings.Contains(caErr.String(), "building") {
		t.Errorf("a CA bundle without certificates: exit %d, %q", code, caErr.String())
	}

	// A directory holding something else is not written over.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "notes.txt"), []byte("my notes"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(t.Context(), []string{"--oci-layout", other}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "not an OCI layout") {
		t.Errorf("a non-layout directory: exit %d, %q", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(other, "index.json")); err == nil {
		t.Errorf("an OCI layout was created among the directory's files")
	}

	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	errb.Reset()
	if code := run(t.Context(), []string{"--oci-layout", "x"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "SOURCE_DATE_EPOCH") {
		t.Errorf("a malformed SOURCE_DATE_EPOCH: exit %d, %q", code, errb.String())
	}
}
