//go:build !unix

package cli

import "errors"

// execServer cannot replace the process here; signet-server runs as a child.
func execServer(string, []string) error { return errors.ErrUnsupported }
