// Package redis is a small client of the Redis protocol (RESP2), for the
// shared result cache of signet serve: GET, and SET with an expiry (PX), on
// a pool of connections that authenticate (AUTH) and select their database
// (SELECT) when they open, over TLS for rediss:// addresses. Any server
// speaking the protocol will do (Redis, Valkey, KeyDB, Dragonfly).
//
// Everything read is bounded: a value by Options.MaxValue, a status or
// error line by maxLine; every operation by its context's deadline (the
// connection's deadline is set from it), and by Options.MaxConns open
// connections. A connection that failed in any way is closed, never reused.
// The client starts no goroutine; Close closes the idle connections.
//
// The password never appears in an error or in Options' String.
package redis

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Defaults of Options.
const (
	DefaultMaxValue = 1 << 20
	DefaultMaxConns = 32
	// maxLine bounds a status, error or length line.
	maxLine = 4096
)

// Options say which server to talk to and how.
type Options struct {
	// Addr is host:port.
	Addr string
	// Username and Password authenticate each connection (AUTH); no
	// Password: no AUTH. Username is for servers with ACLs (Redis 6 and
	// later); without it the password is the default user's.
	Username, Password string
	// DB is the database each connection selects (SELECT), 0 by default.
	DB int
	// TLS, when set, is the TLS configuration connections use.
	TLS *tls.Config
	// MaxValue bounds a value read (GET); a larger one is an error.
	// 0 means DefaultMaxValue.
	MaxValue int
	// MaxConns bounds the open connections; an operation waits for one
	// until its context ends. 0 means DefaultMaxConns.
	MaxConns int
}

// String names the server without the password.
func (o Options) String() string {
	scheme := "redis"
	if o.TLS != nil {
		scheme = "rediss"
	}
	user := ""
	if o.Username != "" {
		user = o.Username + "@"
	}
	return fmt.Sprintf("%s://%s%s/%d", scheme, user, o.Addr, o.DB)
}

// ParseURL reads redis://[[user]:password@]host[:port][/db] or rediss://
// (TLS, verifying the server's certificate for host with the system's
// roots). The port is 6379 by default. Errors do not repeat the password.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		return Options{}, errors.New("not a URL: want redis://[user:password@]host:port[/db] or rediss://host:port")
	}
	var o Options
	switch u.Scheme {
	case "redis":
	case "rediss":
		o.TLS = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	default:
		return Options{}, fmt.Errorf("scheme %q: want redis:// or rediss://", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return Options{}, errors.New("no host: want redis://host:port")
	}
	if u.Opaque != "" || u.RawQuery != "" || u.Fragment != "" {
		return Options{}, fmt.Errorf("%s: only [user:password@]host:port[/db] is read", u.Redacted())
	}
	port := u.Port()
	if port == "" {
		port = "6379"
	}
	o.Addr = net.JoinHostPort(u.Hostname(), port)
	if u.User != nil {
		o.Username = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 {
			return Options{}, fmt.Errorf("%s: database %q is not a number", u.Redacted(), db)
		}
		o.DB = n
	}
	return o, nil
}

// Error is an error the server answered.
type Error struct{ Message string }

func (e *Error) Error() string { return "server answered: " + e.Message }

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	o     Options
	slots chan struct{} // one per open connection
	mu    sync.Mutex
	idle  []*conn
}

// New returns a client for o; it connects on first use.
func New(o Options) *Client {
	if o.MaxValue <= 0 {
		o.MaxValue = DefaultMaxValue
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	return &Client{o: o, slots: make(chan struct{}, o.MaxConns)}
}

// Get returns the value of key; found is false when there is none.
func (c *Client) Get(ctx context.Context, key string) (value []byte, found bool, err error) {
	err = c.do(ctx, func(cn *conn) error {
		if err := cn.send("GET", key); err != nil {
			return err
		}
		value, found, err = cn.readBulk(c.o.MaxValue)
		return err
	})
	return value, found, err
}

// Set sets key to value, to expire after ttl (rounded down to the
// millisecond; at least 1 ms).
func (c *Client) Set(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	ms := max(ttl.Milliseconds(), 1)
	return c.do(ctx, func(cn *conn) error {
		if err := cn.send("SET", key, string(value), "PX", strconv.FormatInt(ms, 10)); err != nil {
			return err
		}
		return cn.readOK()
	})
}

// Close closes the idle connections; those in use close when their
// operation ends.
func (c *Client) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, cn := range idle {
		cn.nc.Close()
		<-c.slots
	}
	return nil
}

// do runs op on a connection within ctx's deadline. A connection on
// which anything but the server's own error happened, or whose operation
// ctx interrupted, is closed: what is left to read on it is unknown. An
// idle connection the server closed meanwhile (its idle timeout, a
// restart) fails at once: the operation (GET and SET are idempotent) is
// tried again once on a new connection.
func (c *Client) do(ctx context.Context, op func(*conn) error) error {
	for attempt := 0; ; attempt++ {
		cn, reused, err := c.get(ctx, attempt > 0)
		if err != nil {
			return err
		}
		err = c.run(ctx, cn, op)
		if err == nil || !reused || ctx.Err() != nil || !closedByServer(err) {
			return c.wrap(ctx, err)
		}
	}
}

// run runs op on cn, then keeps or closes cn.
func (c *Client) run(ctx context.Context, cn *conn, op func(*conn) error) error {
	deadline, _ := ctx.Deadline() // none: the zero time
	// A context canceled before its deadline ends the operation too.
	stop := context.AfterFunc(ctx, func() { _ = cn.nc.SetDeadline(time.Unix(1, 0)) })
	err := cn.nc.SetDeadline(deadline)
	if err == nil {
		err = op(cn)
	}
	interrupted := !stop()
	var server *Error
	if interrupted || (err != nil && !errors.As(err, &server)) {
		cn.nc.Close()
		<-c.slots
		return err
	}
	c.put(cn)
	return err
}

// closedByServer says err is what a connection the server closed gives.
func closedByServer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// wrap names the server in err, and says the context ended when it did:
// the connection's deadline is ctx's, and may be reached a moment before
// ctx says so.
func (c *Client) wrap(ctx context.Context, err error) error {
	var server *Error
	switch {
	case err == nil || errors.As(err, &server):
		return err
	case ctx.Err() != nil:
		err = errors.Join(ctx.Err(), err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		err = errors.Join(context.DeadlineExceeded, err)
	}
	return fmt.Errorf("%s: %w", c.o.Addr, err)
}

// get takes an idle connection (reused), or opens one when fewer than
// MaxConns are; fresh: always a new one.
func (c *Client) get(ctx context.Context, fresh bool) (cn *conn, reused bool, err error) {
	c.mu.Lock()
	if n := len(c.idle); n > 0 && !fresh {
		cn := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return cn, true, nil
	}
	c.mu.Unlock()
	select {
	case c.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, false, fmt.Errorf("%s: waiting for a connection: %w", c.o.Addr, ctx.Err())
	}
	cn, err = c.dial(ctx)
	if err != nil {
		<-c.slots
		return nil, false, c.wrap(ctx, err)
	}
	return cn, false, nil
}

func (c *Client) put(cn *conn) {
	c.mu.Lock()
	c.idle = append(c.idle, cn)
	c.mu.Unlock()
}

// dial connects, authenticates and selects the database.
func (c *Client) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{KeepAlive: 30 * time.Second}
	var nc net.Conn
	var err error
	if c.o.TLS != nil {
		td := tls.Dialer{NetDialer: &d, Config: c.o.TLS}
		nc, err = td.DialContext(ctx, "tcp", c.o.Addr)
	} else {
		nc, err = d.DialContext(ctx, "tcp", c.o.Addr)
	}
	if err != nil {
		return nil, err
	}
	cn := &conn{nc: nc, r: bufio.NewReaderSize(nc, maxLine), w: bufio.NewWriter(nc)}
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	if c.o.Password != "" {
		args := []string{"AUTH", c.o.Password}
		if c.o.Username != "" {
			args = []string{"AUTH", c.o.Username, c.o.Password}
		}
		if err := cn.send(args...); err != nil {
			nc.Close()
			return nil, err
		}
		if err := cn.readOK(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("authenticating: %w", err)
		}
	}
	if c.o.DB != 0 {
		if err := cn.send("SELECT", strconv.Itoa(c.o.DB)); err != nil {
			nc.Close()
			return nil, err
		}
		if err := cn.readOK(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("selecting database %d: %w", c.o.DB, err)
		}
	}
	return cn, nil
}

// conn is one connection and its buffers.
type conn struct {
	nc net.Conn
	r  *bufio.Reader
	w  *bufio.Writer
}

// send writes a command as an array of bulk strings.
func (cn *conn) send(args ...string) error {
	fmt.Fprintf(cn.w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(cn.w, "$%d\r\n", len(a))
		_, _ = cn.w.WriteString(a)
		_, _ = cn.w.WriteString("\r\n")
	}
	return cn.w.Flush() // the first write error, if any
}

// line reads one line without its CRLF, at most maxLine bytes.
func (cn *conn) line() (string, error) {
	b, err := cn.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("an answer line longer than %d bytes", maxLine)
	}
	if err != nil {
		return "", err
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return "", errors.New("malformed answer: a line not ending in CRLF")
	}
	return string(b[:len(b)-2]), nil
}

// readOK reads a +OK (or the server's error).
func (cn *conn) readOK() error {
	l, err := cn.line()
	if err != nil {
		return err
	}
	switch {
	case l == "+OK":
		return nil
	case strings.HasPrefix(l, "-"):
		return &Error{Message: l[1:]}
	}
	return fmt.Errorf("malformed answer: want +OK, got %.40q", l)
}

// readBulk reads a bulk string of at most limit bytes, or the nil bulk.
func (cn *conn) readBulk(limit int) ([]byte, bool, error) {
	l, err := cn.line()
	if err != nil {
		return nil, false, err
	}
	switch {
	case strings.HasPrefix(l, "-"):
		return nil, false, &Error{Message: l[1:]}
	case !strings.HasPrefix(l, "$"):
		return nil, false, fmt.Errorf("malformed answer: want a bulk string, got %.40q", l)
	}
	n, err := strconv.Atoi(l[1:])
	switch {
	case err != nil || n < -1:
		return nil, false, fmt.Errorf("malformed answer: bulk length %.40q", l[1:])
	case n == -1:
		return nil, false, nil
	case n > limit:
		return nil, false, fmt.Errorf("a value of %d bytes, over the limit of %d", n, limit)
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(cn.r, buf); err != nil {
		return nil, false, err
	}
	if buf[n] != '\r' || buf[n+1] != '\n' {
		return nil, false, errors.New("malformed answer: a bulk string not ending in CRLF")
	}
	return buf[:n], true, nil
}
