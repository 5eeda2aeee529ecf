package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors returned by the client, matched with errors.Is.
var (
	// ErrNotFound: the registry answered that the manifest, blob or tag does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLimit: what the registry sent exceeds one of the client's Limits.
	ErrLimit = errors.New("exceeds limit")
	// ErrDigestMismatch: bytes fetched by digest do not hash to that digest.
	ErrDigestMismatch = errors.New("digest mismatch")
)

// StatusError is a registry answer other than success or not-found.
type StatusError struct {
	URL        string
	StatusCode int
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: registry answered %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
}

// Repository names a repository in a registry, e.g. Host "ghcr.io", Path
// "acme/app". Host is lower-case and includes the port, if any.
type Repository struct {
	Host string
	Path string
}

func (r Repository) String() string { return r.Host + "/" + r.Path }

// Client fetches manifests, blobs and signature evidence. It is safe for
// concurrent use; it keeps authenticated transports per repository.
type Client struct {
	opts options

	mu         sync.Mutex
	transports map[Repository]http.RoundTripper
}

// New returns a Client.
func New(opts ...Option) (*Client, error) {
	o := options{keychain: authn.NewMultiKeychain(), limits: DefaultLimits, userAgent: "signet"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = 5 * time.Second
		t.ResponseHeaderTimeout = 15 * time.Second
		t.MaxIdleConnsPerHost = 16
		o.transport = t
	}
	return &Client{opts: o, transports: map[Repository]http.RoundTripper{}}, nil
}

// Limits returns the bounds the client enforces.
func (c *Client) Limits() Limits { return c.opts.limits }

func (c *Client) scheme() string {
	if c.opts.allowHTTP {
		return "http"
	}
	return "https"
}

// transportFor returns an authenticated transport scoped to pull repo,
// creating it (and pinging the registry) on first use.
func (c *Client) transportFor(ctx context.Context, repo Repository) (http.RoundTripper, error) {
	c.mu.Lock()
	rt, ok := c.transports[repo]
	c.mu.Unlock()
	if ok {
		return rt, nil
	}
	nameOpts := []name.Option{name.StrictValidation}
	if c.opts.allowHTTP {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.NewRepository(repo.String(), nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", repo, err)
	}
	auth, err := c.opts.keychain.Resolve(r.Registry)
	if err != nil {
		return nil, fmt.Errorf("resolving credentials for %s: %w", repo.Host, err)
	}
	base := transport.NewUserAgent(c.opts.transport, c.opts.userAgent)
	rt, err = transport.NewWithContext(ctx, r.Registry, auth, base, []string{r.Scope(transport.PullScope)})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", repo.Host, redact(err))
	}
	c.mu.Lock()
	c.transports[repo] = rt
	c.mu.Unlock()
	return rt, nil
}

// get fetches path (below /v2/<repo>/) and returns at most max bytes of the
// body, with the response's Content-Type. It retries 429 and 5xx answers and
// transport errors with backoff while ctx allows.
func (c *Client) get(ctx context.Context, repo Repository, path string, accept []string, max int64) ([]byte, string, error) {
	rt, err := c.transportFor(ctx, repo)
	if err != nil {
		return nil, "", err
	}
	hc := &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > c.opts.limits.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrLimit, c.opts.limits.MaxRedirects)
			}
			if req.URL.Scheme != "https" && !c.opts.allowHTTP {
				return fmt.Errorf("refusing redirect to plain HTTP %s", req.URL.Redacted())
			}
			return nil
		},
	}
	url := fmt.Sprintf("%s://%s/v2/%s/%s", c.scheme(), repo.Host, repo.Path, path)

	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		body, ctype, retry, err := c.getOnce(ctx, hc, url, accept, max)
		if err == nil || !retry || attempt == 4 {
			return body, ctype, err
		}
		select {
		case <-ctx.Done():
			return nil, "", fmt.Errorf("GET %s: %w (after %w)", url, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff *= 3
	}
}

func (c *Client) getOnce(ctx context.Context, hc *http.Client, url string, accept []string, max int64) (body []byte, ctype string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", false, err
	}
	if len(accept) > 0 {
		req.Header.Set("Accept", strings.Join(accept, ", "))
	}
	resp, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, ErrLimit) || ctx.Err() != nil {
			return nil, "", false, fmt.Errorf("GET %s: %w", url, redact(err))
		}
		return nil, "", true, fmt.Errorf("GET %s: %w", url, redact(err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", false, fmt.Errorf("GET %s: %w", url, ErrNotFound)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, "", true, &StatusError{URL: url, StatusCode: resp.StatusCode}
	default:
		return nil, "", false, &StatusError{URL: url, StatusCode: resp.StatusCode}
	}
	if resp.ContentLength > max {
		return nil, "", false, fmt.Errorf("GET %s: %w: %d bytes announced, at most %d read", url, ErrLimit, resp.ContentLength, max)
	}
	// The limit applies after any transparent decompression by net/http.
	body, err = io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, "", ctx.Err() == nil, fmt.Errorf("GET %s: reading body: %w", url, err)
	}
	if int64(len(body)) > max {
		return nil, "", false, fmt.Errorf("GET %s: %w: body larger than %d bytes", url, ErrLimit, max)
	}
	return body, resp.Header.Get("Content-Type"), false, nil
}

// redact drops anything after a "?" in URLs inside err's message (tokens in
// query strings of redirect targets).
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "?"); i >= 0 {
		end := strings.IndexAny(msg[i:], " \"'")
		if end < 0 {
			end = len(msg) - i
		}
		return &redactedError{msg: msg[:i] + "?REDACTED" + msg[i+end:], err: err}
	}
	return err
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
