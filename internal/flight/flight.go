// Package flight runs one call for the concurrent callers of a key, as
// golang.org/x/sync/singleflight does, except that each caller waits only
// as long as its own context allows.
//
// Callers with different deadlines share work in signet (an admission with
// seconds to go and the audit with a minute, on one Decider and one
// registry client): with singleflight alone, a caller that joins a call
// another started waits for that call, however long the other's context
// lets it run. Here it stops waiting when its own context ends; the call
// goes on for the callers still waiting, bounded by the context of the
// caller that started it. A caller whose shared call failed only because
// the starter's context ended (its own still live) makes the call again.
// A panic in the call is raised again in every caller that waits for it,
// as singleflight.Group.Do does.
package flight

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync/atomic"

	"golang.org/x/sync/singleflight"
)

// Group shares calls by key. The zero value is ready; it starts no
// goroutine but those of the calls in flight.
type Group struct {
	g singleflight.Group
}

// Do runs fn once for the callers of key in flight together and returns its
// result, or ctx's error (wrapped) when ctx ends before the result is there.
// fn must be bound by the context of the caller that passes it.
func (g *Group) Do(ctx context.Context, key string, fn func() (any, error)) (any, error) {
	for {
		var ran atomic.Bool
		ch := g.g.DoChan(key, func() (v any, err error) {
			ran.Store(true)
			defer func() {
				if r := recover(); r != nil {
					v, err = nil, &panicError{value: r, stack: debug.Stack()}
				}
			}()
			return fn()
		})
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a call in flight: %w", ctx.Err())
		case r := <-ch:
			var pe *panicError
			if errors.As(r.Err, &pe) {
				panic(pe)
			}
			if !ran.Load() && CancelledElsewhere(ctx, r.Err) {
				continue
			}
			return r.Val, r.Err
		}
	}
}

// CancelledElsewhere reports whether err ended a call shared with another
// caller because that caller's context ended, while ctx, this caller's, is
// still live.
func CancelledElsewhere(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded))
}

// panicError is a panic in a shared call, with the stack where it was
// raised.
type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string {
	return fmt.Sprintf("panic in a shared call: %v\n\n%s", p.value, p.stack)
}
