package harness

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Redis is a running redis-server (StartRedis).
type Redis struct {
	// Addr is its loopback host:port; Password what AUTH takes.
	Addr, Password string

	t       testing.TB
	bin     string
	mu      sync.Mutex
	stopped bool
	stop    func()
	proc    *os.Process
	tls     *redisTLS
}

// RedisOption configures StartRedis.
type RedisOption func(*Redis)

type redisTLS struct {
	certFile, keyFile string
	client            *tls.Config
}

// RedisTLS makes the server speak TLS only (rediss://), with the PEM
// certificate and key in the files given; roots verify it (Do's client,
// and whoever the test gives them to).
func RedisTLS(certFile, keyFile string, roots *x509.CertPool) RedisOption {
	return func(r *Redis) {
		r.tls = &redisTLS{certFile: certFile, keyFile: keyFile, client: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}}
	}
}

// URL is the server's redis:// (rediss:// with RedisTLS) address, without
// the password (give it to signet through a password file).
func (r *Redis) URL() string {
	if r.tls != nil {
		return "rediss://" + r.Addr
	}
	return "redis://" + r.Addr
}

// StartRedis runs Debian's redis-server (bin/redis-server, `make tools`) on a
// free loopback port, in memory only (no RDB snapshots, no append-only
// file), requiring a generated password, and waits until it answers PING.
// It is stopped by t.Cleanup, or earlier by Stop.
func StartRedis(t testing.TB, opts ...RedisOption) *Redis {
	t.Helper()
	r := &Redis{t: t, bin: Binary(t, "redis-server"), Password: fmt.Sprintf("test-%d", time.Now().UnixNano())}
	for _, o := range opts {
		o(r)
	}
	var lastErr error
	for range 3 {
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatalf("finding a free loopback port: %v", err)
		}
		r.Addr = addr
		if lastErr = r.start(); lastErr == nil {
			t.Cleanup(r.Stop)
			return r
		}
	}
	t.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

func (r *Redis) start() error {
	host, port, _ := net.SplitHostPort(r.Addr)
	var logs bytes.Buffer
	args := []string{"--bind", host, "--save", "", "--appendonly", "no",
		"--requirepass", r.Password, "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning",
		"--dir", r.t.TempDir()}
	if r.tls == nil {
		args = append(args, "--port", port)
	} else {
		args = append(args, "--port", "0", "--tls-port", port, "--tls-cert-file", r.tls.certFile, "--tls-key-file", r.tls.keyFile, "--tls-auth-clients", "no")
	}
	cmd := exec.Command(r.bin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", r.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); close(exited) }()
	stop := func() {
		_ = cmd.Process.Kill()
		for range exited {
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited before answering: %w; output:\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if err := r.ping(); err == nil {
			break
		} else if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("redis-server on %s did not answer PING: %w; output:\n%s", r.Addr, err, logs.String())
		}
	}
	r.mu.Lock()
	r.stop, r.stopped, r.proc = stop, false, cmd.Process
	r.mu.Unlock()
	return nil
}

// Stop stops the server (a cache outage); Restart starts it again on the
// same address, empty.
func (r *Redis) Stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.stopped && r.stop != nil {
		r.stop()
		r.stopped = true
	}
}

// Pause stops the server's process (SIGSTOP) without closing its port:
// connections open, and nothing answers, as a server that hangs. Resume
// continues it.
func (r *Redis) Pause() { r.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() { r.signal(syscall.SIGCONT) }

func (r *Redis) signal(sig syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped || r.proc == nil {
		r.t.Fatalf("redis-server is not running")
	}
	if err := r.proc.Signal(sig); err != nil {
		r.t.Fatalf("signalling redis-server: %v", err)
	}
}

// Restart starts a stopped server again on its address.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("restarting redis-server: %v", err)
	}
}

func (r *Redis) ping() error {
	_, err := r.Do("PING")
	return err
}

// Do sends one command on a new authenticated connection and returns the
// answer: a status line or integer as its text, a bulk string's content
// ("" for a nil bulk), an array's elements joined by newlines. Tests read
// and write the store with it as any client could, bypassing signet.
func (r *Redis) Do(args ...string) (string, error) {
	var c net.Conn
	var err error
	if r.tls != nil {
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", r.Addr, r.tls.client)
	} else {
		c, err = net.DialTimeout("tcp", r.Addr, 2*time.Second)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	var answer string
	for _, cmd := range [][]string{{"AUTH", r.Password}, args} {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := c.Write([]byte(b.String())); err != nil {
			return "", err
		}
		if answer, err = readReply(br); err != nil {
			return "", err
		}
	}
	return answer, nil
}

// Keys lists the keys matching pattern (KEYS).
func (r *Redis) Keys(pattern string) []string {
	r.t.Helper()
	out, err := r.Do("KEYS", pattern)
	if err != nil {
		r.t.Fatalf("KEYS %s: %v", pattern, err)
	}
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

func readReply(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("an empty answer line")
	}
	switch line[0] {
	case '-':
		return "", fmt.Errorf("redis-server answered %s", line)
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(line[1:])
		if err != nil {
			return "", err
		}
		items := make([]string, 0, max(n, 0))
		for range n {
			item, err := readReply(br)
			if err != nil {
				return "", err
			}
			items = append(items, item)
		}
		return strings.Join(items, "\n"), nil
	}
	return line[1:], nil
}
