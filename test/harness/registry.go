package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-dev/signet/test/registrytest"
)

// RegistryOption configures StartRegistry.
type RegistryOption func(*registryOptions)

type registryOptions struct {
	htpasswd string
}

// WithBasicAuth makes the registry require the given user and password on every
// request (htpasswd authentication, bcrypt-hashed).
func WithBasicAuth(user, password string) RegistryOption {
	return func(o *registryOptions) { o.htpasswd = htpasswdLine(user, password) }
}

// StartRegistry runs the CNCF distribution registry (bin/registry) on a free
// loopback port with storage in a temporary directory. It does not serve the
// OCI referrers API.
func StartRegistry(t testing.TB, opts ...RegistryOption) *registrytest.Registry {
	t.Helper()
	var o registryOptions
	for _, opt := range opts {
		opt(&o)
	}
	bin := Binary(t, "registry")
	dir := t.TempDir()

	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freeLoopbackAddr()
		if err != nil {
			t.Fatalf("finding a free loopback port: %v", err)
		}
		config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: signet-test-secret
`, filepath.Join(dir, fmt.Sprintf("storage-%d", attempt)), addr)
		if o.htpasswd != "" {
			file := filepath.Join(dir, "htpasswd")
			if err := os.WriteFile(file, []byte(o.htpasswd), 0o600); err != nil {
				t.Fatalf("writing htpasswd: %v", err)
			}
			config += fmt.Sprintf("auth:\n  htpasswd:\n    realm: signet-test\n    path: %s\n", file)
		}
		configPath := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
			t.Fatalf("writing the registry configuration: %v", err)
		}
		// Only the start of its output is kept (it says why a start
		// failed): the registry logs every 404 (a signature looked up and
		// absent), which a long test would otherwise hold in memory.
		logs := &headBuffer{max: 64 << 10}
		cmd := exec.Command(bin, "serve", configPath)
		cmd.Stdout, cmd.Stderr = logs, logs
		// Tracing is on by default in distribution v3; nothing here collects it.
		cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none", "OTEL_SDK_DISABLED=true")
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan error, 1)
		// Closed after Wait returns, so stop does not block when
		// waitForRegistry has already taken the exit error.
		go func() { exited <- cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			for range exited { // wait for the process; a killed registry's error is expected
			}
		}
		if err := waitForRegistry(addr, exited, 20*time.Second); err != nil {
			stop()
			lastErr = fmt.Errorf("%w; registry output:\n%s", err, logs.String())
			continue
		}
		t.Cleanup(stop)
		return &registrytest.Registry{Host: addr, Kind: "distribution", Referrers: false}
	}
	t.Fatalf("starting the distribution registry: %v", lastErr)
	return nil
}

// waitForRegistry polls GET /v2/ until the registry answers (200 or 401).
func waitForRegistry(addr string, exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-exited:
			return fmt.Errorf("registry exited before answering: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("registry on %s did not answer within %s", addr, timeout)
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get("http://" + addr + "/v2/")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			return nil
		}
	}
}

func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// htpasswdLine returns an htpasswd entry for user with a bcrypt-hashed password.
func htpasswdLine(user, password string) string {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		panic(err) // only for passwords over 72 bytes, which tests do not use
	}
	return user + ":" + string(hash) + "\n"
}

// headBuffer keeps the first max bytes written to it and drops the rest.
type headBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (b *headBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *headBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
