// Package startup makes process start-up cheaper: signet links the
// Kubernetes, Sigstore and CEL libraries, whose package initializers
// allocate megabytes of short-lived garbage before main runs. The
// garbage collector cycles that starts are wasted on a short-lived
// command such as `signet verify`. This package, which has no dependencies
// the runtime does not initialize first, holds the collector off while
// package initializers run. Done keeps it off until the heap first reaches
// FirstCollection, then restores the default: a command that ends before
// then never collects, and a server collects as usual from then on.
//
// cmd/signet imports it first; it must stay free of imports that would
// make it initialize later.
package startup

import (
	"math"
	"os"
	"runtime"
	"runtime/debug"
)

// FirstCollection is the heap size at which the first collection runs.
const FirstCollection = 64 << 20

// held reports whether init changed the collector's setting.
var held bool

func init() {
	if _, set := os.LookupEnv("GOGC"); set {
		return // the user's choice stands
	}
	debug.SetGCPercent(-1)
	held = true
}

// Done ends start-up: call it first thing in main. The collector stays off
// until the heap reaches FirstCollection (a memory limit makes the runtime
// collect there), and the first collection restores the default setting
// and removes the limit. With GOMEMLIMIT set, which that limit would
// override, the default is restored at once.
func Done() {
	if !held {
		return
	}
	held = false
	if _, set := os.LookupEnv("GOMEMLIMIT"); set {
		debug.SetGCPercent(100)
		return
	}
	debug.SetMemoryLimit(FirstCollection)
	// The sentinel is unreachable from here on, so the first collection
	// frees it and its cleanup runs. It is 32 bytes, too large for the tiny
	// allocator, which would tie its lifetime to its neighbours'.
	sentinel := new([32]byte)
	runtime.AddCleanup(sentinel, func(struct{}) {
		debug.SetGCPercent(100)
		debug.SetMemoryLimit(math.MaxInt64)
	}, struct{}{})
}
