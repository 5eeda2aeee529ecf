// Command playground runs signet's playground: `make playground` keeps it up
// until interrupted; --check runs the scenario once and exits non-zero if
// any outcome differs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/signet-dev/signet/test/playground"
)

// runner lets the test harness run outside `go test`: failures abort with a
// message, cleanups run on exit. Only the methods the harness uses are
// implemented; the embedded nil interface satisfies testing.TB.
type runner struct {
	testing.TB
	cleanups []func()
	dir      string
}

type fatal string

func (r *runner) Helper()                           {}
func (r *runner) Name() string                      { return "playground" }
func (r *runner) Fatal(args ...any)                 { panic(fatal(fmt.Sprint(args...))) }
func (r *runner) Fatalf(format string, args ...any) { panic(fatal(fmt.Sprintf(format, args...))) }
func (r *runner) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
}
func (r *runner) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (r *runner) Cleanup(f func())                { r.cleanups = append(r.cleanups, f) }
func (r *runner) Context() context.Context        { return context.Background() }
func (r *runner) TempDir() string {
	d, err := os.MkdirTemp(r.dir, "tmp")
	if err != nil {
		r.Fatal(err)
	}
	return d
}

func (r *runner) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	os.RemoveAll(r.dir)
}

func main() {
	check := flag.Bool("check", false, "run the scenario once and exit non-zero if any outcome differs")
	flag.Parse()
	os.Exit(run(*check))
}

func run(check bool) (code int) {
	dir, err := os.MkdirTemp("", "signet-playground-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	r := &runner{dir: dir}
	defer r.cleanup()
	defer func() {
		if v := recover(); v != nil {
			if f, ok := v.(fatal); ok {
				fmt.Fprintln(os.Stderr, "playground:", string(f))
				code = 2
				return
			}
			panic(v)
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	w := playground.Start(r, os.Stdout)
	failed := w.Run(ctx, os.Stdout)
	if len(failed) > 0 {
		fmt.Println("\nSome outcomes differ from what signet promises:")
		for _, f := range failed {
			fmt.Println("  -", f)
		}
		return 1
	}
	fmt.Println("\nEvery outcome is as expected.")
	if check {
		return 0
	}
	w.Explain(os.Stdout)
	<-ctx.Done()
	fmt.Println("\nstopping ...")
	return 0
}
