//go:build !unix

package trust

// openNonBlock is 0 where the system has no O_NONBLOCK; OpenRegular's
// checks before and after opening remain.
const openNonBlock = 0
