// Package clitest runs signet's command lines in-process for tests and
// writes the files they read, in Go only: internal/cli's own tests use it as
// well as those under test/.
//
// Run takes the Execute function of the command tree (internal/cli or
// internal/cli/server), so that the tests of those packages can use it
// without an import cycle.
package clitest
