package trust

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sigstore/sigstore-go/pkg/root"
)

// MaxTrustedRootFileSize is the largest trusted root file
// [LoadTrustedRootFile] reads. The public-good root is under 10 KiB.
const MaxTrustedRootFileSize = 10 << 20 // 10 MiB

// ErrTooLarge is wrapped by errors about data over a size limit: a trusted
// root file over [MaxTrustedRootFileSize], a TUF file over its limit, a
// serialized repository over [MaxRepositorySize].
var ErrTooLarge = errors.New("too large")

// LoadTrustedRootFile reads and parses the Sigstore trusted root JSON at
// path, as given to --trusted-root. It reads at most
// [MaxTrustedRootFileSize] bytes and refuses a larger file with an error
// wrapping [ErrTooLarge]. Every error names the file.
func LoadTrustedRootFile(path string) (*root.TrustedRoot, error) {
	f, err := os.Open(path) //nolint:gosec // G304: path is the operator's --trusted-root; reading it is the point
	if err != nil {
		return nil, fmt.Errorf("reading trusted root: %w", err) // *PathError names the file
	}
	defer f.Close()

	data, err := io.ReadAll(io.LimitReader(f, MaxTrustedRootFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading trusted root %s: %w", path, err)
	}
	if len(data) > MaxTrustedRootFileSize {
		return nil, fmt.Errorf("reading trusted root %s: %w: over %d bytes", path, ErrTooLarge, MaxTrustedRootFileSize)
	}
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("parsing trusted root %s: %w", path, err)
	}
	return tr, nil
}
