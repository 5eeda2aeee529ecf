//go:build unix

package trust

import "syscall"

// openNonBlock keeps open from blocking on a FIFO or device.
const openNonBlock = syscall.O_NONBLOCK
