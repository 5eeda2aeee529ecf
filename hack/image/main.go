// Command image builds signet's container image without a container runtime:
// signet and signet-server, built for Linux, in one layer on an empty base
// with the build machine's CA bundle. It pushes the image, or writes it as an
// OCI layout, and prints its digest. `make image` runs it; see
// docs/architecture.md.
//
//	go run ./hack/image --push registry.example.org/signet:v0.1.0
//	go run ./hack/image --platforms linux/amd64,linux/arm64 --oci-layout out/
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Where the image puts things.
const (
	binDir   = "usr/local/bin"
	caBundle = "etc/ssl/certs/ca-certificates.crt"
	// nonRoot is the image's user: numeric, as runAsNonRoot needs.
	nonRoot = "65532:65532"
	source  = "https://github.com/signet-dev/signet"
)

// binaries are the commands the image holds; the first is the entrypoint.
var binaries = []string{"signet", "signet-server"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	push, layoutDir   string
	platforms         []v1.Platform
	src, goCmd        string
	ldflags           string
	version, revision string
	caBundle          string
	created           time.Time
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 2
	}
	digest, err := build(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "image: %v\n", err)
		return 1
	}
	if o.push != "" {
		fmt.Fprintf(stdout, "%s@%s\n", o.push, digest)
	} else {
		fmt.Fprintf(stdout, "%s\n", digest)
	}
	return 0
}

func parse(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: go run ./hack/image (--push IMAGE | --oci-layout DIR) [flags]\n\n"+
			"Builds signet's container image (signet and signet-server for Linux on an empty base) and\n"+
			"prints its digest. No container runtime is needed.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	var o options
	platforms := fs.String("platforms", "linux/"+runtime.GOARCH, "comma-separated `os/arch[/variant]` to build for; several make an OCI index")
	fs.StringVar(&o.push, "push", "", "push the image to this `reference` (tag), with the Docker config's credentials")
	fs.StringVar(&o.layoutDir, "oci-layout", "", "write the image into this OCI layout `directory` instead (created if missing)")
	fs.StringVar(&o.src, "source", ".", "the signet source tree to build")
	fs.StringVar(&o.goCmd, "go", "go", "the go command")
	fs.StringVar(&o.ldflags, "ldflags", "", "-ldflags for go build (the Makefile passes its version stamps)")
	fs.StringVar(&o.version, "version", "", "the org.opencontainers.image.version label")
	fs.StringVar(&o.revision, "revision", "", "the org.opencontainers.image.revision label (a commit)")
	fs.StringVar(&o.caBundle, "ca-bundle", "/etc/ssl/certs/ca-certificates.crt", "the PEM bundle of CA certificates to put in the image")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q (flags only; see --help)", fs.Args())
	}
	if (o.push == "") == (o.layoutDir == "") {
		return o, errors.New("give one of --push IMAGE or --oci-layout DIR")
	}
	if o.push != "" {
		if _, err := name.NewTag(o.push); err != nil {
			return o, fmt.Errorf("--push %q: %w (a tag, such as registry.example.org/signet:v0.1.0)", o.push, err)
		}
	}
	for _, p := range strings.Split(*platforms, ",") {
		pl, err := parsePlatform(strings.TrimSpace(p))
		if err != nil {
			return o, fmt.Errorf("--platforms: %w", err)
		}
		for _, seen := range o.platforms {
			if seen.Equals(pl) {
				return o, fmt.Errorf("--platforms: %s given twice", pl)
			}
		}
		o.platforms = append(o.platforms, pl)
	}
	o.created = time.Unix(0, 0).UTC()
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return o, fmt.Errorf("SOURCE_DATE_EPOCH=%q: not a number of seconds", s)
		}
		o.created = time.Unix(sec, 0).UTC()
	}
	return o, nil
}

func parsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return v1.Platform{}, fmt.Errorf("%q: want os/arch or os/arch/variant, such as linux/amd64", s)
	}
	if parts[0] != "linux" {
		return v1.Platform{}, fmt.Errorf("%q: signet's image runs on linux only", s)
	}
	p := v1.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// build builds every platform's image and writes or pushes the result,
// returning its digest.
func build(ctx context.Context, o options, log io.Writer) (v1.Hash, error) {
	if o.layoutDir != "" {
		if err := checkLayoutDir(o.layoutDir); err != nil {
			return v1.Hash{}, err
		}
	}
	ca, err := os.ReadFile(o.caBundle)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading the CA bundle (--ca-bundle): %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(ca) {
		return v1.Hash{}, fmt.Errorf("--ca-bundle %s holds no PEM certificate", o.caBundle)
	}
	images := make([]v1.Image, len(o.platforms))
	for i, p := range o.platforms {
		fmt.Fprintf(log, "building %s for %s\n", strings.Join(binaries, " and "), p)
		if images[i], err = platformImage(ctx, o, p, ca); err != nil {
			return v1.Hash{}, err
		}
	}
	if len(images) == 1 {
		return write(ctx, o, images[0], nil)
	}
	var adds []mutate.IndexAddendum
	for i, img := range images {
		p := o.platforms[i]
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	return write(ctx, o, nil, idx)
}

// platformImage builds the binaries for p and puts them in an image.
func platformImage(ctx context.Context, o options, p v1.Platform, ca []byte) (v1.Image, error) {
	dir, err := os.MkdirTemp("", "signet-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	args := []string{"build", "-trimpath", "-ldflags", o.ldflags, "-o", dir + string(filepath.Separator)}
	for _, b := range binaries {
		args = append(args, "./cmd/"+b)
	}
	cmd := exec.CommandContext(ctx, o.goCmd, args...) //nolint:gosec // G204: the go command the user named, building signet
	cmd.Dir = o.src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture, "GOARM=", "GOAMD64=")
	switch {
	case p.Architecture == "arm" && p.Variant != "":
		cmd.Env = append(cmd.Env, "GOARM="+strings.TrimPrefix(p.Variant, "v"))
	case p.Architecture == "amd64" && p.Variant != "":
		cmd.Env = append(cmd.Env, "GOAMD64="+p.Variant)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build for %s: %w\n%s", p, err, out)
	}
	files := []file{{name: caBundle, mode: 0o644, data: ca}}
	for _, b := range binaries {
		data, err := os.ReadFile(filepath.Join(dir, b)) //nolint:gosec // G304: our own build output
		if err != nil {
			return nil, err
		}
		files = append(files, file{name: binDir + "/" + b, mode: 0o755, data: data})
	}
	tarBytes, err := layerTar(files, o.created)
	if err != nil {
		return nil, err
	}
	layer, err := newLayer(tarBytes)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: o.created}, CreatedBy: "hack/image: " + strings.Join(binaries, ", ") + ", CA bundle"},
	})
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	cf.Created = v1.Time{Time: o.created}
	cf.Config = v1.Config{
		Entrypoint: []string{"/" + binDir + "/" + binaries[0]},
		User:       nonRoot,
		WorkingDir: "/",
		Env:        []string{"PATH=/" + binDir + ":/usr/bin:/bin", "SSL_CERT_FILE=/" + caBundle},
		Labels:     labels(o),
	}
	return mutate.ConfigFile(img, cf)
}

func labels(o options) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.source":      source,
		"org.opencontainers.image.title":       "signet",
		"org.opencontainers.image.description": "Container image signature and attestation policies for Kubernetes",
	}
	if o.version != "" {
		l["org.opencontainers.image.version"] = o.version
	}
	if o.revision != "" {
		l["org.opencontainers.image.revision"] = o.revision
	}
	return l
}

type file struct {
	name string
	mode int64
	data []byte
}

// layerTar is a tar of files and their parent directories, owned by root,
// with every timestamp set to at: the same files give the same bytes.
func layerTar(files []file, at time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		var parents []string
		for d := filepath.Dir(f.name); d != "." && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			parents = append([]string{d}, parents...)
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: at, Format: tar.FormatPAX}); err != nil {
				return nil, err
			}
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: at, Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// newLayer is the gzip-compressed layer of an uncompressed tar.
func newLayer(tarBytes []byte) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// write pushes img or idx (one is nil) or writes it into the layout, and
// returns its digest.
func write(ctx context.Context, o options, img v1.Image, idx v1.ImageIndex) (v1.Hash, error) {
	var d interface{ Digest() (v1.Hash, error) } = img
	if idx != nil {
		d = idx
	}
	digest, err := d.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	if o.push != "" {
		ref, err := name.NewTag(o.push)
		if err != nil {
			return v1.Hash{}, err
		}
		opts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)}
		if idx != nil {
			err = remote.WriteIndex(ref, idx, opts...)
		} else {
			err = remote.Write(ref, img, opts...)
		}
		if err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %s: %w", o.push, err)
		}
		return digest, nil
	}
	p, err := layout.FromPath(o.layoutDir)
	if err != nil { // missing or empty: checkLayoutDir said so before the build
		if p, err = layout.Write(o.layoutDir, empty.Index); err != nil {
			return v1.Hash{}, fmt.Errorf("creating the OCI layout %s: %w", o.layoutDir, err)
		}
	}
	if idx != nil {
		err = p.AppendIndex(idx)
	} else {
		err = p.AppendImage(img)
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing into the OCI layout %s: %w", o.layoutDir, err)
	}
	return digest, nil
}

// checkLayoutDir accepts an OCI layout to add to, or a missing or empty
// directory to create one in; nothing else is written over.
func checkLayoutDir(dir string) error {
	_, err := layout.FromPath(dir)
	if err == nil {
		return nil
	}
	if entries, rerr := os.ReadDir(dir); rerr == nil && len(entries) > 0 {
		return fmt.Errorf("--oci-layout %s: the directory is not empty and not an OCI layout (%w)", dir, err)
	}
	return nil
}
