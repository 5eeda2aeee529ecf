package trust

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

// MaxTUFFileSize caps every file a TUF client reads, whatever the metadata
// says: go-tuf's own per-role limits (512 KB for root.json, 16 KB for
// timestamp.json, ...) and a target's signed length apply first.
const MaxTUFFileSize = 10 << 20 // 10 MiB

// ErrUnsafeName is wrapped by errors about a target or archive entry name
// that is not a clean relative path (empty, absolute, "..", backslashes).
var ErrUnsafeName = errors.New("unsafe path")

// Origin is where a TUF client reads a repository from: a mirror over HTTP
// ([NewMirror]) or a serialized repository held in memory
// ([ReadRepository]).
type Origin interface {
	// Fetch returns the file at name, a slash-separated path relative to
	// the repository's metadata directory ("2.root.json",
	// "targets/<hash>.trusted_root.json"), reading at most max bytes.
	Fetch(ctx context.Context, name string, max int64) ([]byte, error)
	// String names the source in messages.
	String() string
}

// ErrNotFound is wrapped by an Origin's error for a file it does not have.
var ErrNotFound = errors.New("not found")

// CheckName reports whether name is a clean, relative, slash-separated path
// with no "." or ".." element, as target names and archive entries must be.
func CheckName(name string) error {
	if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, "\\") || strings.ContainsRune(name, 0) || path.Clean(name) != name {
		return fmt.Errorf("%w: %q", ErrUnsafeName, name)
	}
	for _, el := range strings.Split(name, "/") {
		if el == "." || el == ".." {
			return fmt.Errorf("%w: %q", ErrUnsafeName, name)
		}
	}
	return nil
}

// Mirror is a TUF repository served over HTTP(S): metadata at its URL,
// targets under targets/. Plain HTTP is accepted: TUF metadata is signed
// and every target is checked against the signed length and hashes, which
// is what lets a repository be mirrored by anyone.
type Mirror struct {
	base   *url.URL
	client *http.Client
}

// NewMirror returns the mirror at rawURL. client may be nil for a client
// with a 30s timeout; at most 3 redirects are followed, to http(s) only.
func NewMirror(rawURL string, client *http.Client) (*Mirror, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("TUF mirror %q: %w", rawURL, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("TUF mirror %q: want an http:// or https:// URL", rawURL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("TUF mirror %q: credentials, queries and fragments are not supported", u.Redacted())
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	c := *client
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 3 {
			return errors.New("more than 3 redirects")
		}
		if req.URL.Scheme != "https" && req.URL.Scheme != "http" {
			return fmt.Errorf("redirect to %s URL", req.URL.Scheme)
		}
		return nil
	}
	return &Mirror{base: u, client: &c}, nil
}

func (m *Mirror) String() string { return m.base.String() }

// Fetch implements Origin.
func (m *Mirror) Fetch(ctx context.Context, name string, max int64) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	u := m.base.JoinPath(name)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusForbidden:
		// Object stores answer 403 for a missing key.
		return nil, fmt.Errorf("fetching %s: %w (HTTP %d)", u, ErrNotFound, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("fetching %s: HTTP %d", u, resp.StatusCode)
	}
	max = min(max, MaxTUFFileSize)
	if resp.ContentLength > max {
		return nil, fmt.Errorf("fetching %s: %w: %d bytes, the limit is %d", u, ErrTooLarge, resp.ContentLength, max)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("fetching %s: %w: over %d bytes", u, ErrTooLarge, max)
	}
	return data, nil
}

var _ Origin = (*Mirror)(nil)
