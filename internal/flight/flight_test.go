package flight_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-dev/signet/internal/flight"
)

// A caller that joins a call in flight stops waiting when its own context
// ends; the call goes on for its starter, who gets its result.
func TestJoinerKeepsItsDeadline(t *testing.T) {
	var g flight.Group
	release := make(chan struct{})
	started := make(chan struct{})
	first := make(chan any, 1)
	go func() {
		v, _ := g.Do(context.Background(), "k", func() (any, error) {
			close(started)
			<-release
			return "done", nil
		})
		first <- v
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := g.Do(ctx, "k", func() (any, error) { t.Error("the joiner ran the call"); return nil, nil })
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > time.Second {
		t.Errorf("joiner: err %v after %s; want its deadline, at once", err, time.Since(start))
	}
	close(release)
	if v := <-first; v != "done" {
		t.Errorf("starter got %v, want done", v)
	}
}

// A call that failed because its starter's context ended is made again by
// a caller whose context is live; a call that failed on its own is not.
func TestCancelledElsewhereIsCalledAgain(t *testing.T) {
	var g flight.Group
	short, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	go func() {
		_, _ = g.Do(short, "k", func() (any, error) {
			close(started)
			<-short.Done()
			return nil, short.Err()
		})
	}()
	<-started
	var calls atomic.Int64
	done := make(chan any, 1)
	go func() {
		v, err := g.Do(context.Background(), "k", func() (any, error) { calls.Add(1); return "mine", nil })
		if err != nil {
			t.Error(err)
		}
		done <- v
	}()
	time.Sleep(20 * time.Millisecond) // let it join
	cancel()
	if v := <-done; v != "mine" || calls.Load() != 1 {
		t.Errorf("joiner got %v after %d calls of its own; want its own call's result, once", v, calls.Load())
	}

	// Its own context error is returned, not called again.
	ctx, cancelOwn := context.WithCancel(context.Background())
	cancelOwn()
	if _, err := g.Do(ctx, "own", func() (any, error) { calls.Add(1); return nil, ctx.Err() }); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// A panic in the call is raised in the caller, where net/http (or a test)
// can recover it, not in a goroutine of its own that would end the process.
func TestPanicReachesTheCaller(t *testing.T) {
	var g flight.Group
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(error).Error(), "boom") {
			t.Errorf("recovered %v, want the panic naming boom", r)
		}
	}()
	_, _ = g.Do(context.Background(), "k", func() (any, error) { panic("boom") })
}
