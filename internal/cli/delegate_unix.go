//go:build unix

package cli

import (
	"os"
	"syscall"
)

// execServer replaces this process with signet-server.
func execServer(path string, argv []string) error {
	return syscall.Exec(path, argv, os.Environ()) //nolint:gosec // G204: signet-server, with the user's own arguments
}
