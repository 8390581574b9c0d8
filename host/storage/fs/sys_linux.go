package fs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes root's filesystem with syncfs(2), one call however many files are dirty.
func syncFS(root *os.File) error {
	conn, err := root.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := conn.Control(func(fd uintptr) { serr = unix.Syncfs(int(fd)) }); err != nil {
		return err
	}
	if errors.Is(serr, unix.ENOSYS) {
		return fmt.Errorf("syncfs: %w", errors.ErrUnsupported)
	}
	if serr != nil {
		return fmt.Errorf("syncfs: %w", serr)
	}
	return nil
}

// renameNoReplace is rename(2) that fails with EEXIST rather than replace newpath. It
// returns an error wrapping errors.ErrUnsupported where the filesystem lacks the flag.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS) {
		return fmt.Errorf("renameat2: %w", errors.ErrUnsupported)
	}
	if err != nil {
		return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
	}
	return nil
}
