package trust

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotRegular is returned by [OpenRegular] for a name that is not a
// regular file: a directory, a FIFO, a socket, a device, or a symbolic link
// leading out of the root or to any of those.
var ErrNotRegular = errors.New("not a regular file")

// OpenRegular opens name under root for reading if it is a regular file.
// It never blocks on what it opens: the name is checked first (Lstat, and
// Stat through root for a symbolic link, which root keeps inside itself),
// then opened without blocking (O_NONBLOCK where the system has it: a FIFO
// put in the file's place meanwhile would otherwise block open until a
// writer comes, holding an OS thread), and checked again on the open file.
func OpenRegular(root *os.Root, name string) (*os.File, fs.FileInfo, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if fi, err = root.Stat(name); err != nil {
			return nil, nil, err
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s: %w", name, ErrNotRegular)
	}
	f, err := root.OpenFile(name, os.O_RDONLY|openNonBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	if fi, err = f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("%s: %w", name, ErrNotRegular)
		}
		return nil, nil, err
	}
	return f, fi, nil
}
