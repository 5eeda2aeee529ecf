package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Errors returned by the client, matched with errors.Is. A failure to read
// from a registry is of one of these kinds, except the end of the caller's
// context (errors.Is(err, context.DeadlineExceeded)), a refusal to use
// plain HTTP, a malformed reference or digest given by the caller, and an
// answer whose status has no kind here (a *StatusError, e.g. 400). The
// kinds add nothing to the messages.
var (
	// ErrNotFound: the registry answered that the manifest, blob or tag does not exist.
	ErrNotFound = errors.New("not found")
	// ErrLimit: what the registry sent exceeds one of the client's Limits.
	ErrLimit = errors.New("exceeds limit")
	// ErrDigestMismatch: bytes fetched by digest do not hash to that digest.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnreachable: the registry could not be reached or did not serve:
	// a connection, DNS or TLS failure, an answer cut off or not sent in
	// time (the transport's own timeouts), or a 5xx answer.
	ErrUnreachable = errors.New("registry unreachable")
	// ErrUnauthorized: the registry or its token server answered 401: the
	// credentials are missing or refused.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the registry or its token server answered 403: the
	// credentials do not allow pulling.
	ErrForbidden = errors.New("forbidden")
	// ErrRateLimited: the registry answered 429, until the retries or the
	// caller's deadline ran out, or asked to wait longer than they allow.
	ErrRateLimited = errors.New("rate limited")
	// ErrMalformed: the registry's answer is not what was asked for: a
	// manifest that is not JSON, a signature tag that is not an image
	// manifest, a referrers list that is not an index.
	ErrMalformed = errors.New("malformed answer")
)

// StatusError is a registry answer other than success or not-found. It is
// of the kind its status says (errors.Is): 401 ErrUnauthorized, 403
// ErrForbidden, 429 ErrRateLimited, 5xx ErrUnreachable.
type StatusError struct {
	URL        string
	StatusCode int
	// RetryAfter is how long a 429 or 503 answer asked the client to wait
	// (its Retry-After header), or 0.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("GET %s: registry answered %d %s", e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" and asked to wait %s", e.RetryAfter)
	}
	return msg
}

// Is reports whether target is the kind of e's status.
func (e *StatusError) Is(target error) bool {
	k := statusKind(e.StatusCode)
	return k != nil && target == k
}

// statusKind is the kind of an HTTP status, or nil. Not 404: a manifest,
// blob or tag not found is ErrNotFound where the client asked for it,
// while a registry whose ping or token server answers 404 is not "no
// evidence".
func statusKind(code int) error {
	switch {
	case code == http.StatusUnauthorized:
		return ErrUnauthorized
	case code == http.StatusForbidden:
		return ErrForbidden
	case code == http.StatusTooManyRequests:
		return ErrRateLimited
	case code >= 500:
		return ErrUnreachable
	}
	return nil
}

// transportKind is the kind of a request that got no answer, or one that
// go-containerregistry's transport turned into an error (a ping or token
// answer): nil when ctx ended, a limit was exceeded or plain HTTP refused.
func transportKind(ctx context.Context, err error) error {
	var te *transport.Error
	switch {
	case errors.As(err, &te):
		return statusKind(te.StatusCode)
	case ctx.Err() != nil, errors.Is(err, ErrLimit), errors.Is(err, errPlainHTTP), errors.Is(err, errPlainHTTPRegistry):
		return nil
	}
	return ErrUnreachable
}

// withKind gives err the kind k (errors.Is(err, k)) without changing its
// message; a nil k leaves err as it is.
func withKind(k, err error) error {
	if k == nil || err == nil {
		return err
	}
	return &kindError{err: err, kind: k}
}

type kindError struct{ err, kind error }

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.err, e.kind} }
