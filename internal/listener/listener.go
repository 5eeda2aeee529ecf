// Package listener builds signet's HTTP servers with every bound set, so that
// nobody who can reach a port of signet can make it hold unbounded memory,
// goroutines or time (product invariant 11). A server made here bounds:
//
//   - the connections open at once: one over [Limits.MaxConns] is closed as
//     soon as it is accepted, before its TLS handshake or any byte is read;
//   - the time to send the request headers ([Limits.ReadHeaderTimeout]),
//     the whole request with its body ([Limits.ReadTimeout]), the answer
//     ([Limits.WriteTimeout]) and an idle keep-alive ([Limits.IdleTimeout]);
//   - the size of the headers ([Limits.MaxHeaderBytes]) and of the body
//     ([Limits.MaxBodyBytes], read through [http.MaxBytesReader]);
//   - the requests of a handler served at once ([LimitInFlight]): over the
//     limit, a request waits a bounded time for a slot, its body unread,
//     then is answered 503.
//
// Defaults are in [Limits]; every listener of signet (serve, node-agent,
// trustroot serve) uses this package.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are the bounds of one server. The zero value of a field means its
// default, given on the field.
type Limits struct {
	// MaxConns is the most connections open at once (default 512). A
	// connection over it is closed as soon as it is accepted.
	MaxConns int
	// MaxHeaderBytes bounds the request line and headers (default 16 KiB).
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body (default 64 KiB); reading past it
	// fails, and the server answers 413.
	MaxBodyBytes int64
	// ReadHeaderTimeout bounds the time to receive the request headers
	// (default 5s), counted from the first byte of a request.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the time to receive the whole request, headers and
	// body (default 10s). Once the body has been read the deadline is
	// lifted (net/http clears it for its background read), so it never
	// cuts short a handler that works longer.
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of the headers to the end of
	// the answer (default 30s).
	WriteTimeout time.Duration
	// IdleTimeout bounds how long a kept-alive connection waits for its next
	// request (default 2m).
	IdleTimeout time.Duration
}

const (
	defaultMaxConns          = 512
	defaultMaxHeaderBytes    = 16 << 10
	defaultMaxBodyBytes      = 64 << 10
	defaultReadHeaderTimeout = 5 * time.Second
	defaultReadTimeout       = 10 * time.Second
	defaultWriteTimeout      = 30 * time.Second
	defaultIdleTimeout       = 2 * time.Minute
)

// withDefaults returns l with every zero field set to its default.
func (l Limits) withDefaults() Limits {
	if l.MaxConns == 0 {
		l.MaxConns = defaultMaxConns
	}
	if l.MaxHeaderBytes == 0 {
		l.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	if l.MaxBodyBytes == 0 {
		l.MaxBodyBytes = defaultMaxBodyBytes
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = defaultReadHeaderTimeout
	}
	if l.ReadTimeout == 0 {
		l.ReadTimeout = defaultReadTimeout
	}
	if l.WriteTimeout == 0 {
		l.WriteTimeout = defaultWriteTimeout
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = defaultIdleTimeout
	}
	return l
}

// Validate rejects negative limits.
func (l Limits) Validate() error {
	l = l.withDefaults()
	switch {
	case l.MaxConns < 0:
		return fmt.Errorf("most connections %d: must be positive", l.MaxConns)
	case l.MaxHeaderBytes < 0:
		return fmt.Errorf("most header bytes %d: must be positive", l.MaxHeaderBytes)
	case l.MaxBodyBytes < 0:
		return fmt.Errorf("most body bytes %d: must be positive", l.MaxBodyBytes)
	case l.ReadHeaderTimeout < 0, l.ReadTimeout < 0, l.WriteTimeout < 0, l.IdleTimeout < 0:
		return errors.New("timeouts must be positive")
	}
	return nil
}

// NewServer returns a server of h with the limits l (defaults for zero
// fields): timeouts, header size, and every body read through
// [http.MaxBytesReader]. Serve it on a listener from
// [Listen], which bounds the connections. The TLS handshake, when served
// with TLS, must end within the header timeout.
func NewServer(h http.Handler, l Limits) *http.Server {
	l = l.withDefaults()
	return &http.Server{
		Handler:           http.MaxBytesHandler(h, l.MaxBodyBytes),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
	}
}

// Listen listens on the TCP address addr and keeps at most maxConns
// connections open (the default of [Limits.MaxConns] when 0): a connection
// accepted over that is closed at once.
func Listen(ctx context.Context, addr string, maxConns int) (net.Listener, error) {
	if maxConns == 0 {
		maxConns = defaultMaxConns
	}
	if maxConns < 0 {
		return nil, fmt.Errorf("most connections %d: must be positive", maxConns)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	return &limitListener{Listener: ln, max: int64(maxConns)}, nil
}

// limitListener closes connections accepted over max open ones. Unlike
// golang.org/x/net/netutil.LimitListener it does not stop accepting: a
// blocked accept would leave new connections (the API server's among them)
// waiting in the kernel's queue behind whoever holds the open ones.
type limitListener struct {
	net.Listener
	max     int64
	open    atomic.Int64
	refused atomic.Int64
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.refused.Add(1)
			_ = c.Close()
			continue
		}
		return &countedConn{Conn: c, l: l}, nil
	}
}

// countedConn gives its slot back once, on the first Close.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}

// LimitInFlight serves at most n requests of h at once. A request over the
// limit waits for a slot up to wait (or until its context ends), holding
// only its goroutine and its connection (both bounded by [Listen]), its
// body unread; then it is answered 503 Service Unavailable with
// Retry-After: 1 and a one-line message. So a burst of legitimate requests
// a little over n is served a moment later rather than refused, while
// whoever holds the n slots (slow senders among them) costs the others a
// bounded wait, not memory. n must be positive; wait 0 refuses at once.
func LimitInFlight(h http.Handler, n int, wait time.Duration) http.Handler {
	slots := make(chan struct{}, n)
	msg := "signet is busy: " + strconv.Itoa(n) + " requests in flight; retry"
	busy := func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", "1")
		http.Error(w, msg, http.StatusServiceUnavailable)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case slots <- struct{}{}:
		default:
			if wait <= 0 {
				busy(w)
				return
			}
			t := time.NewTimer(wait)
			select {
			case slots <- struct{}{}:
				t.Stop()
			case <-t.C:
				busy(w)
				return
			case <-r.Context().Done():
				t.Stop()
				busy(w)
				return
			}
		}
		defer func() { <-slots }()
		h.ServeHTTP(w, r)
	})
}
