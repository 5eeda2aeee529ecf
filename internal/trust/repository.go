package trust

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Limits of a serialized repository ([ReadRepository]).
const (
	// MaxRepositorySize is the most a serialized repository may hold,
	// decompressed. The public-good repository is under 1 MiB.
	MaxRepositorySize = 32 << 20
	// MaxRepositoryEntries is the most files it may hold.
	MaxRepositoryEntries = 1000
)

// Repository is a serialized TUF repository held in memory: the files of a
// repository directory (metadata at the top, targets under a targets
// directory), as `signet trustroot create` packs them and as sigstore
// policy-controller's TrustRoot `repository.mirrorFS` holds them.
type Repository struct {
	files map[string][]byte
}

// ReadRepository unpacks a tar.gz serialized repository into memory. It
// accepts regular files and directories only; an entry whose name is not a
// clean relative path ("../x", "/etc/x"), a duplicate, a link or device,
// more than [MaxRepositoryEntries] entries or [MaxRepositorySize]
// decompressed bytes is refused. A single top-level directory holding
// everything (as `tar czf repo.tgz repository/` makes) is stripped.
func ReadRepository(tarGz []byte) (*Repository, error) {
	zr, err := gzip.NewReader(bytes.NewReader(tarGz))
	if err != nil {
		return nil, fmt.Errorf("reading the serialized repository: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(io.LimitReader(zr, MaxRepositorySize+1))
	files := map[string][]byte{}
	var total int64
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading the serialized repository: %w", err)
		}
		if n >= MaxRepositoryEntries {
			return nil, fmt.Errorf("reading the serialized repository: more than %d entries", MaxRepositoryEntries)
		}
		name := strings.TrimPrefix(h.Name, "./")
		switch h.Typeflag {
		case tar.TypeDir:
			name = strings.TrimSuffix(name, "/")
			if name == "" || name == "." {
				continue
			}
			if err := CheckName(name); err != nil {
				return nil, fmt.Errorf("reading the serialized repository: entry %w", err)
			}
			continue
		case tar.TypeReg:
		default:
			return nil, fmt.Errorf("reading the serialized repository: entry %q is not a regular file or directory", h.Name)
		}
		if err := CheckName(name); err != nil {
			return nil, fmt.Errorf("reading the serialized repository: entry %w", err)
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("reading the serialized repository: entry %q appears twice", name)
		}
		total += h.Size
		if h.Size < 0 || total > MaxRepositorySize {
			return nil, fmt.Errorf("reading the serialized repository: %w: over %d bytes decompressed", ErrTooLarge, MaxRepositorySize)
		}
		data, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, fmt.Errorf("reading the serialized repository: entry %q: %w", name, err)
		}
		files[name] = data
	}
	if len(files) == 0 {
		return nil, errors.New("reading the serialized repository: it is empty")
	}
	return &Repository{files: stripCommonDir(files)}, nil
}

// stripCommonDir removes a single top-level directory that holds every file
// when no metadata sits at the top.
func stripCommonDir(files map[string][]byte) map[string][]byte {
	prefix := ""
	for name := range files {
		dir, _, ok := strings.Cut(name, "/")
		if !ok {
			return files // a file at the top
		}
		if prefix == "" {
			prefix = dir
		} else if prefix != dir {
			return files
		}
	}
	out := make(map[string][]byte, len(files))
	for name, data := range files {
		out[strings.TrimPrefix(name, prefix+"/")] = data
	}
	return out
}

func (r *Repository) String() string { return "serialized repository" }

// Fetch implements Origin.
func (r *Repository) Fetch(_ context.Context, name string, max int64) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	data, ok := r.files[name]
	if !ok {
		return nil, fmt.Errorf("%s: %w in the serialized repository", name, ErrNotFound)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, the limit is %d", name, ErrTooLarge, len(data), max)
	}
	return data, nil
}

// Names lists the repository's files, sorted.
func (r *Repository) Names() []string {
	names := make([]string, 0, len(r.files))
	for n := range r.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var _ Origin = (*Repository)(nil)

// PackDirectory serializes the TUF repository directory dir (metadata at the
// top, targets under targets/) as a tar.gz that [ReadRepository] reads. It
// packs regular files only, in name order with zeroed times and owners, so
// the same directory always packs to the same bytes; symbolic links and
// other special files are refused, without being opened for reading
// ([OpenRegular]). At most [MaxRepositorySize] bytes are read in all: a
// file that would pass it is refused after one byte more.
func PackDirectory(dir string) ([]byte, error) {
	return packDirectory(dir, MaxRepositorySize)
}

func packDirectory(dir string, limit int64) ([]byte, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	defer root.Close()
	files := map[string][]byte{}
	var total int64
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s: %w", rel, ErrNotRegular)
		}
		if len(files) >= MaxRepositoryEntries {
			return fmt.Errorf("more than %d files", MaxRepositoryEntries)
		}
		f, _, err := OpenRegular(root, filepath.FromSlash(rel))
		if err != nil {
			return err
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, limit-total+1))
		if err != nil {
			return fmt.Errorf("reading %s: %w", rel, err)
		}
		if total += int64(len(data)); total > limit {
			return fmt.Errorf("%w: over %d bytes (at %s)", ErrTooLarge, limit, rel)
		}
		files[rel] = data
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packing %s: %w", dir, err)
	}
	return Pack(files)
}

// Pack serializes files (slash-separated relative names → contents) as a
// tar.gz that [ReadRepository] reads, deterministically.
func Pack(files map[string][]byte) ([]byte, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		if err := CheckName(n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[n])), Format: tar.FormatPAX}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(files[n]); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
