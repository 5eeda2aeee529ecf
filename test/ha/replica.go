package ha

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signet-dev/signet/test/harness"
)

// buildServer builds signet-server from this repository into a temporary
// directory: the replicas run as processes, to be stopped with SIGTERM and
// killed with SIGKILL.
func buildServer(t *testing.T) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/signet-server") //nolint:gosec // G204: the test builds this repository
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building signet-server: %v\n%s", err, out)
	}
	return filepath.Join(dir, "signet-server")
}

// replica is one `signet-server serve` process.
type replica struct {
	name string // its API server user, signet-replica-N
	addr string
	cmd  *exec.Cmd
	logs *syncBuffer

	exited   chan struct{}
	exitErr  error
	exitedAt time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startReplica runs bin serve as user name with args, on a fresh loopback
// port. It does not wait for readiness: the front does.
func startReplica(t *testing.T, bin, name, kubeconfig string, args ...string) *replica {
	t.Helper()
	r := &replica{name: name, addr: freeAddr(t), logs: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"serve", "--listen", r.addr, "--kubeconfig", kubeconfig}, args...)...) //nolint:gosec // G204: the binary the test built
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		r.exitErr = r.cmd.Wait()
		r.exitedAt = time.Now()
		close(r.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-r.exited:
		default:
			_ = r.cmd.Process.Kill()
			<-r.exited
		}
		if t.Failed() {
			t.Logf("%s (%s) logged:\n%s", r.name, r.addr, tail(r.logs.String(), 40))
		}
	})
	return r
}

// terminate sends SIGTERM, as the kubelet does to a pod being deleted, and
// waits at most limit for the process to exit; it returns how long it took.
func (r *replica) terminate(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case <-r.exited:
	case <-time.After(limit):
		_ = r.cmd.Process.Kill()
		<-r.exited
		return time.Since(start), fmt.Errorf("%s still running %s after SIGTERM", r.name, limit)
	}
	took := r.exitedAt.Sub(start)
	if r.exitErr != nil {
		return took, fmt.Errorf("%s exited after SIGTERM with %w", r.name, r.exitErr)
	}
	return took, nil
}

// kill sends SIGKILL: the process ends without a word (a node lost, an
// out-of-memory kill).
func (r *replica) kill() {
	_ = r.cmd.Process.Kill()
	<-r.exited
}

func (r *replica) running() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var errNotReady = errors.New("not ready")

// waitInRotation waits until the front sends new connections to r.
func waitInRotation(f *front, r *replica, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for !f.inRotation(r.addr) {
		if !r.running() {
			return fmt.Errorf("%s exited: %w\n%s", r.name, r.exitErr, tail(r.logs.String(), 30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w after %s:\n%s", r.name, errNotReady, limit, tail(r.logs.String(), 30))
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}
