package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/signet-dev/signet/internal/flight"
)

// maxRetryWait is the longest a Retry-After is waited for; a registry that
// asks for more is answered with its error at once, as is one that asks for
// more than the caller's deadline leaves.
const maxRetryWait = 30 * time.Second

// retryAfter reads a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
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
	transports map[Repository]*repoTransport
	// connecting makes concurrent first requests to one repository share
	// the making of its transport (a token request, for some registries);
	// each waits for it within its own context.
	connecting flight.Group
	// noReferrersAPI is when each registry host last answered that it has
	// no referrers API; within referrersAPIMemo, its tag schema is read
	// directly (a registry with the API must not answer 404).
	noReferrersAPI map[string]time.Time
	// referrersAPI are the hosts that answered the referrers API;
	// probing those whose first answer is awaited.
	referrersAPI map[string]bool
	probing      map[string]chan struct{}
	// legacySuffices holds the repositories whose last image passed on
	// its legacy .sig (and .att) alone: their next image's referrers are
	// read only if its legacy evidence is not enough. A repository not in
	// it follows the last image of its registry (the entry with an empty
	// Path), so the first image of each repository is not read both ways.
	legacySuffices map[Repository]bool
}

// maxLegacyHints bounds legacySuffices; when full it starts afresh.
const maxLegacyHints = 10000

func (c *Client) legacyFirst(repo Repository) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	suffices, known := c.legacySuffices[repo]
	if !known {
		return c.legacySuffices[Repository{Host: repo.Host}]
	}
	return suffices
}

func (c *Client) setLegacyFirst(repo Repository, suffices bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.legacySuffices == nil || len(c.legacySuffices) >= maxLegacyHints {
		c.legacySuffices = map[Repository]bool{}
	}
	c.legacySuffices[repo] = suffices
	c.legacySuffices[Repository{Host: repo.Host}] = suffices
}

// referrersAPIMemo is how long a registry without the referrers API is
// remembered as such.
const referrersAPIMemo = 10 * time.Minute

func (c *Client) lacksReferrersAPI(host string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.noReferrersAPI[host]
	return ok && time.Since(at) < referrersAPIMemo
}

// probeReferrersAPI: for a host not known to have the referrers API, the
// first caller probes it (done ends the probe) and the others get wait,
// closed when the probe ends; for a known host, both are nil.
func (c *Client) probeReferrersAPI(host string) (done func(), wait <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.referrersAPI[host] {
		return nil, nil
	}
	if ch, ok := c.probing[host]; ok {
		return nil, ch
	}
	if c.probing == nil {
		c.probing = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	c.probing[host] = ch
	return func() {
		c.mu.Lock()
		delete(c.probing, host)
		c.mu.Unlock()
		close(ch)
	}, nil
}

func (c *Client) markReferrersAPI(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.referrersAPI == nil || len(c.referrersAPI) >= 1024 {
		c.referrersAPI = map[string]bool{}
	}
	c.referrersAPI[host] = true
}

func (c *Client) markNoReferrersAPI(host string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.noReferrersAPI == nil || len(c.noReferrersAPI) >= 1024 {
		c.noReferrersAPI = map[string]time.Time{}
	}
	c.noReferrersAPI[host] = time.Now()
}

// repoTransport is an authenticated transport scoped to one repository, with
// the secrets of the credential it sends, to keep them out of error messages.
type repoTransport struct {
	rt      http.RoundTripper
	secrets []string
}

// maxTransports bounds the authenticated transports kept, one per
// repository.
const maxTransports = 4096

// New returns a Client.
func New(opts ...Option) (*Client, error) {
	o := options{keychain: authn.NewMultiKeychain(), limits: DefaultLimits, userAgent: "signet"}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if o.transport == nil {
		o.transport = NewTransport()
	}
	if !o.allowHTTP {
		o.transport = httpsOnly{next: o.transport}
	}
	o.transport = &pingCache{next: o.transport}
	return &Client{opts: o, transports: map[Repository]*repoTransport{}}, nil
}

// NewTransport returns the HTTP transport a Client uses unless WithTransport
// gives another: a clone of http.DefaultTransport that bounds the waits for a
// connection, a TLS handshake and response headers, and keeps enough idle
// connections per registry for the lookups of one object's images at once
// (net/http keeps 2 and closes the rest after each burst, so every cold
// admission of a wide pod would open its connections again).
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 5 * time.Second
	t.ResponseHeaderTimeout = 15 * time.Second
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	return t
}

// errPlainHTTP: a request would have gone over plain HTTP, and the client was
// not built with InsecureAllowHTTP.
var errPlainHTTP = errors.New("plain HTTP refused (the client was not built with InsecureAllowHTTP)")

// httpsOnly refuses every request that is not HTTPS. It sits under the
// authentication transports, so it also covers what go-containerregistry does
// on its own: its ping falls back to HTTP for loopback, private-range and
// .local hosts and then downgrades every request to the registry; token realms;
// redirects.
type httpsOnly struct{ next http.RoundTripper }

func (t httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, fmt.Errorf("%s://%s: %w", req.URL.Scheme, req.URL.Host, errPlainHTTP)
	}
	return t.next.RoundTrip(req)
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
// creating it (and pinging the registry) on first use. retry reports whether
// an error came from talking to the registry, and may be transient.
func (c *Client) transportFor(ctx context.Context, repo Repository) (*repoTransport, bool, error) {
	c.mu.Lock()
	rt, ok := c.transports[repo]
	c.mu.Unlock()
	if ok {
		return rt, false, nil
	}
	type made struct {
		rt    *repoTransport
		retry bool
	}
	v, err := c.connecting.Do(ctx, repo.String(), func() (any, error) {
		rt, retry, err := c.connect(ctx, repo)
		return made{rt, retry}, err
	})
	m, ok := v.(made)
	if !ok { // ctx ended while another caller was connecting
		return nil, false, fmt.Errorf("connecting to %s: %w", repo.Host, err)
	}
	return m.rt, m.retry, err
}

// connect makes and keeps the transport of repo.
func (c *Client) connect(ctx context.Context, repo Repository) (rt *repoTransport, retry bool, err error) {
	nameOpts := []name.Option{name.StrictValidation}
	if c.opts.allowHTTP {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.NewRepository(repo.String(), nameOpts...)
	if err != nil {
		return nil, false, fmt.Errorf("repository %s: %w", repo, err)
	}
	auth, err := c.opts.keychain.Resolve(r.Registry)
	if err != nil {
		return nil, false, fmt.Errorf("resolving credentials for %s: %w", repo.Host, err)
	}
	rt = &repoTransport{secrets: secretsOf(ctx, auth)}
	base := transport.NewUserAgent(c.opts.transport, c.opts.userAgent)
	rt.rt, err = transport.NewWithContext(ctx, r.Registry, auth, base, []string{r.Scope(transport.PullScope)})
	if err != nil {
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("connecting to %s: %w (%w)", repo.Host, ctx.Err(), redact(err, rt.secrets))
		}
		// A definite answer (a 401 from the token server: wrong credentials,
		// which retrying could lock out) is final; 429, 5xx and network
		// errors may pass.
		var te *transport.Error
		retry := !errors.As(err, &te) || te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500
		return nil, retry, withKind(transportKind(ctx, err), fmt.Errorf("connecting to %s: %w", repo.Host, redact(err, rt.secrets)))
	}
	c.mu.Lock()
	if len(c.transports) >= maxTransports {
		// Bounded: past the limit the cache starts over (each repository
		// then pays one more ping and token request).
		c.transports = map[Repository]*repoTransport{}
	}
	c.transports[repo] = rt
	c.mu.Unlock()
	return rt, false, nil
}

// secretsOf lists the strings of a credential that must not appear in
// messages: passwords and tokens, and the Basic authorization they make.
func secretsOf(ctx context.Context, auth authn.Authenticator) []string {
	cfg, err := authn.Authorization(ctx, auth)
	if err != nil || cfg == nil {
		return nil
	}
	var out []string
	for _, s := range []string{cfg.Password, cfg.Auth, cfg.IdentityToken, cfg.RegistryToken} {
		if s != "" {
			out = append(out, s)
		}
	}
	if cfg.Username != "" && cfg.Password != "" {
		out = append(out, base64.StdEncoding.EncodeToString([]byte(cfg.Username+":"+cfg.Password)))
	}
	return out
}

// get fetches path (below /v2/<repo>/) and returns at most max bytes of the
// body, with the response's Content-Type. It retries 429 and 5xx answers and
// transport errors (including a failed first contact with the registry) with
// backoff while ctx allows.
func (c *Client) get(ctx context.Context, repo Repository, path string, accept []string, max int64) ([]byte, string, error) {
	url := fmt.Sprintf("%s://%s/v2/%s/%s", c.scheme(), repo.Host, repo.Path, path)
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var (
			body  []byte
			ctype string
		)
		rt, retry, err := c.transportFor(ctx, repo)
		if err == nil {
			body, ctype, retry, err = c.getOnce(ctx, c.httpClient(rt.rt), url, accept, max, rt.secrets)
		}
		if err == nil || !retry || attempt == 4 {
			return body, ctype, err
		}
		// Concurrent lookups that failed together do not retry together.
		wait := backoff + rand.N(backoff/5) //nolint:gosec // G404: jitter, not a secret
		var se *StatusError
		if errors.As(err, &se) && se.RetryAfter > wait {
			wait = se.RetryAfter
			deadline, ok := ctx.Deadline()
			if wait > maxRetryWait || ok && time.Until(deadline) < wait {
				return nil, "", fmt.Errorf("%w, longer than this lookup may wait", err)
			}
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, "", fmt.Errorf("GET %s: %w (after %w)", url, ctx.Err(), err)
		case <-timer.C:
		}
		backoff *= 3
	}
}

// httpClient follows at most MaxRedirects redirects, and none to plain HTTP
// unless the client allows it.
func (c *Client) httpClient(rt http.RoundTripper) *http.Client {
	return &http.Client{
		Transport: rt,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > c.opts.limits.MaxRedirects {
				return fmt.Errorf("%w: more than %d redirects", ErrLimit, c.opts.limits.MaxRedirects)
			}
			if req.URL.Scheme != "https" && !c.opts.allowHTTP {
				return fmt.Errorf("refusing redirect to %s://%s: %w", req.URL.Scheme, req.URL.Host, errPlainHTTP)
			}
			return nil
		},
	}
}

func (c *Client) getOnce(ctx context.Context, hc *http.Client, url string, accept []string, max int64, secrets []string) (body []byte, ctype string, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", false, err
	}
	if len(accept) > 0 {
		req.Header.Set("Accept", strings.Join(accept, ", "))
	}
	resp, err := hc.Do(req)
	if err != nil {
		// Exceeded limits and refusals are not transient; nor is the end of ctx.
		retry := !errors.Is(err, ErrLimit) && !errors.Is(err, errPlainHTTP) && ctx.Err() == nil
		return nil, "", retry, withKind(transportKind(ctx, err), fmt.Errorf("GET %s: %w", url, redact(err, secrets)))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		defer discard(resp.Body)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, "", false, fmt.Errorf("GET %s: %w", url, ErrNotFound)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return nil, "", true, &StatusError{URL: url, StatusCode: resp.StatusCode, RetryAfter: retryAfter(resp.Header, time.Now())}
	default:
		return nil, "", false, &StatusError{URL: url, StatusCode: resp.StatusCode}
	}
	if resp.ContentLength > max {
		return nil, "", false, fmt.Errorf("GET %s: %w: %d bytes announced, at most %d read", url, ErrLimit, resp.ContentLength, max)
	}
	// The limit applies after any transparent decompression by net/http.
	body, err = io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, "", ctx.Err() == nil, withKind(transportKind(ctx, err), fmt.Errorf("GET %s: reading body: %w", url, redact(err, secrets)))
	}
	if int64(len(body)) > max {
		return nil, "", false, fmt.Errorf("GET %s: %w: body larger than %d bytes", url, ErrLimit, max)
	}
	return body, resp.Header.Get("Content-Type"), false, nil
}

// discardLimit bounds what is read of an answer nobody needs (a 404's error
// body) to keep its connection: net/http closes a connection whose response
// body is closed unread, and the next request pays for a new one.
const discardLimit = 16 << 10

// discard reads and drops at most discardLimit bytes of body; a longer body's
// connection is closed, as it would have been. A registry that trickles it is
// cut off by the request's context, as for any other body.
func discard(body io.Reader) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, discardLimit))
}

// queryString matches the query of a URL in a message, up to the next space
// or quote.
var queryString = regexp.MustCompile(`\?[^\s"'<>]+`)

// redact removes from err's message the query strings of URLs (tokens of
// presigned redirect targets; a message can hold several URLs) and the given
// secrets of the credential in use (which a registry may echo in an error
// body that go-containerregistry quotes).
func redact(err error, secrets []string) error {
	msg := queryString.ReplaceAllString(err.Error(), "?REDACTED")
	for _, s := range secrets {
		msg = strings.ReplaceAll(msg, s, "REDACTED")
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
