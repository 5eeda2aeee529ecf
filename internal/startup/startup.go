// Package startup makes process start-up cheaper: signet links the
// Kubernetes, Sigstore and CEL libraries, whose package initializers
// allocate tens of megabytes of short-lived garbage before main runs. The
// garbage collector cycles that starts are wasted on a short-lived
// command such as `signet verify`. This package, which has no dependencies
// the runtime does not initialize first, holds the collector off while
// package initializers run; Done restores the configured setting.
//
// cmd/signet imports it first; it must stay free of imports that would
// make it initialize later.
package startup

import (
	"os"
	"runtime/debug"
)

// held reports whether init changed the collector's setting.
var held bool

func init() {
	if _, set := os.LookupEnv("GOGC"); set {
		return // the user's choice stands
	}
	debug.SetGCPercent(-1)
	held = true
}

// Done restores the garbage collector's default setting. Call it first
// thing in main.
func Done() {
	if held {
		debug.SetGCPercent(100)
		held = false
	}
}
