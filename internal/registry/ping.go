package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/signet-dev/signet/internal/flight"
)

// pingMemo is how long a registry's answer to the GET /v2/ ping (its
// authentication challenge) is reused for its other repositories.
const pingMemo = 5 * time.Minute

// maxPingBody bounds the body of a ping answer that is read and kept.
const maxPingBody = 64 << 10

// pingCache answers go-containerregistry's GET /v2/ pings from the last
// answer of the same registry. go-containerregistry pings the registry
// whenever it builds a transport, and the client keeps one transport per
// repository (each with its own pull scope), so without the cache the first
// request to every repository waited for a ping: a pod with 20 images from
// one registry made 20 round trips before its first signature request.
//
// Only 200 and 401 answers are kept (a 401 carries the challenge; neither
// depends on credentials, since the ping is sent without them). Concurrent
// pings of one registry share one request. A 401 from the registry to any
// other request forgets its answer: its authentication may have changed.
type pingCache struct {
	next http.RoundTripper

	mu      sync.Mutex
	answers map[string]pingAnswer // by scheme://host
	group   flight.Group
}

type pingAnswer struct {
	status int
	header http.Header
	body   []byte
	at     time.Time
}

// maxPingAnswers bounds the registries remembered; when full it starts afresh.
const maxPingAnswers = 1024

// errPlainHTTPRegistry answers an HTTPS ping to a registry that answered the
// last ping over plain HTTP (only a client with InsecureAllowHTTP sends it).
var errPlainHTTPRegistry = errors.New("the registry answered its last ping over plain HTTP")

func (p *pingCache) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isPing(req) {
		resp, err := p.next.RoundTrip(req)
		if err == nil && resp.StatusCode == http.StatusUnauthorized {
			p.forget(req.URL.Host)
		}
		return resp, err
	}
	host := req.URL.Host
	if a, ok := p.fresh(req.URL.Scheme + "://" + host); ok {
		return a.response(req), nil
	}
	if req.URL.Scheme == "https" {
		// go-containerregistry tries HTTPS and plain HTTP for registries it
		// may reach insecurely; do not knock on the TLS port every time.
		if _, ok := p.fresh("http://" + host); ok {
			return nil, errPlainHTTPRegistry
		}
	}
	key := req.URL.Scheme + "://" + host
	v, err := p.group.Do(req.Context(), key, func() (any, error) { return p.ping(req, key) })
	if err != nil {
		return nil, err
	}
	return v.(pingAnswer).response(req), nil
}

// ping sends req and keeps a 200 or 401 answer under key.
func (p *pingCache) ping(req *http.Request, key string) (pingAnswer, error) {
	resp, err := p.next.RoundTrip(req)
	if err != nil {
		return pingAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPingBody))
	if err != nil {
		return pingAnswer{}, err
	}
	a := pingAnswer{status: resp.StatusCode, header: resp.Header.Clone(), body: body, at: time.Now()}
	if a.status == http.StatusOK || a.status == http.StatusUnauthorized {
		p.mu.Lock()
		if p.answers == nil || len(p.answers) >= maxPingAnswers {
			p.answers = map[string]pingAnswer{}
		}
		p.answers[key] = a
		p.mu.Unlock()
	}
	return a, nil
}

func (p *pingCache) fresh(key string) (pingAnswer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, ok := p.answers[key]
	return a, ok && time.Since(a.at) < pingMemo
}

func (p *pingCache) forget(host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.answers, "https://"+host)
	delete(p.answers, "http://"+host)
}

// response is the kept answer as the response to req.
func (a pingAnswer) response(req *http.Request) *http.Response {
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)),
		StatusCode:    a.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        a.header.Clone(),
		Body:          io.NopCloser(bytes.NewReader(a.body)),
		ContentLength: int64(len(a.body)),
		Request:       req,
	}
}

// isPing reports whether req is an unauthenticated GET /v2/.
func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" && req.Header.Get("Authorization") == ""
}
