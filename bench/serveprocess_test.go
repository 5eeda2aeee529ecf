package bench

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	signetserver "github.com/signet-dev/signet/internal/cli/server"
)

// serveChildEnv makes the test binary run `signet serve` with the
// arguments it holds (JSON) instead of the tests; serveMemoryEnv names the
// file where that child writes its memory (memoryNow) on SIGUSR1.
const (
	serveChildEnv  = "SIGNET_BENCH_SERVE_CHILD"
	serveMemoryEnv = "SIGNET_BENCH_SERVE_MEMORY"
)

// serveChild runs signet serve in this process (the test binary run as a
// child) until SIGTERM; on SIGUSR1 it collects garbage and writes its
// resident set and live heap to the file named by serveMemoryEnv, and a
// heap profile next to it (.heap); on SIGUSR2 it writes a CPU profile of
// the next second there (.cpu).
func serveChild(encoded string) int {
	var args []string
	if err := json.Unmarshal([]byte(encoded), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			rss, heap := memoryNow()
			data, _ := json.Marshal(memoryReport{RSSMiB: rss, HeapMiB: heap})
			path := os.Getenv(serveMemoryEnv)
			if f, err := os.Create(path + ".heap"); err == nil {
				_ = pprof.Lookup("heap").WriteTo(f, 0)
				f.Close()
			}
			if err := os.WriteFile(path+".tmp", data, 0o644); err == nil {
				_ = os.Rename(path+".tmp", path)
			}
		}
	}()
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	go func() {
		for range usr2 {
			f, err := os.Create(os.Getenv(serveMemoryEnv) + ".cpu")
			if err != nil {
				continue
			}
			if err := pprof.StartCPUProfile(f); err == nil {
				time.Sleep(time.Second)
				pprof.StopCPUProfile()
			}
			f.Close()
		}
	}()
	return signetserver.Execute(ctx, args, os.Stdout, os.Stderr)
}

// serveProcess is `signet serve` running in a child process, as it runs in
// a cluster: its memory is its own.
type serveProcess struct {
	addr    string
	client  *http.Client
	cmd     *exec.Cmd
	logs    *syncBuffer
	memFile string
	done    chan struct{}
}

// startServeProcess starts `signet serve --listen ... --ca-out ...` with
// the flags given in a child process, and waits until it is ready.
func startServeProcess(tb testing.TB, flags ...string) *serveProcess {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := tb.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	args, err := json.Marshal(append([]string{"serve", "--listen", addr, "--ca-out", caFile, "--shutdown-delay=0"}, flags...))
	if err != nil {
		tb.Fatal(err)
	}
	p := &serveProcess{addr: addr, logs: &syncBuffer{}, memFile: filepath.Join(dir, "memory.json"), done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run", "^$")
	p.cmd.Env = append(os.Environ(), serveChildEnv+"="+string(args), serveMemoryEnv+"="+p.memFile)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	tb.Cleanup(p.stop)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			tb.Fatalf("signet serve exited: %v\n%s", p.cmd.ProcessState, p.logs.String())
		default:
		}
		if ca, err := os.ReadFile(caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(ca)
			p.client = newClient(pool)
			if resp, err := p.client.Get("https://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return p
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("signet serve did not become ready:\n%s", p.logs.String())
	return nil
}

// server is the admission endpoint of p, for the load generator.
func (p *serveProcess) server() *server {
	return &server{url: "https://" + p.addr + "/validate", client: p.client, logs: p.logs}
}

// stop ends the child with SIGTERM (it releases its Lease), or kills it
// after 15 seconds.
func (p *serveProcess) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // if stopped
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// startCPUProfile makes the child profile its next second (in .cpu next
// to memFile), when $SIGNET_BENCH_PROFILES asks for profiles.
func (p *serveProcess) startCPUProfile(tb testing.TB) {
	if os.Getenv("SIGNET_BENCH_PROFILES") != "" {
		p.signal(tb, syscall.SIGUSR2)
	}
}

// cpu is the CPU time the child has used (user and system).
func (p *serveProcess) cpu(tb testing.TB) time.Duration {
	tb.Helper()
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		tb.Fatal(err)
	}
	// Fields after the command name (which ends at the last ')'): utime
	// and stime are the 12th and 13th, in clock ticks (100 a second).
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	utime, _ := strconv.Atoi(f[11])
	stime, _ := strconv.Atoi(f[12])
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// signal sends sig to the child.
func (p *serveProcess) signal(tb testing.TB, sig syscall.Signal) {
	tb.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		tb.Fatalf("signalling signet serve: %v", err)
	}
}

// memory asks the child to collect garbage and return freed memory to the
// OS, and reads its resident set and live heap, in MiB.
func (p *serveProcess) memory(tb testing.TB) (rss, heap float64) {
	tb.Helper()
	_ = os.Remove(p.memFile)
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		tb.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(p.memFile); err == nil {
			var r memoryReport
			if err := json.Unmarshal(data, &r); err != nil {
				tb.Fatalf("serve child wrote %q: %v", data, err)
			}
			return r.RSSMiB, r.HeapMiB
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("signet serve did not report its memory:\n%s", p.logs.String())
	return 0, 0
}

// metric is the sum of the samples of a metric family on /metrics (0 when
// it has none).
func (p *serveProcess) metric(tb testing.TB, name string) float64 {
	tb.Helper()
	resp, err := p.client.Get("https://" + p.addr + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	sum := 0.0
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			tb.Fatalf("/metrics: %q: %v", line, err)
		}
		sum += v
	}
	return sum
}
