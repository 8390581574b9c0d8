package plugin

import (
	"io/fs"
	"sync/atomic"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"
)

// mountFS is a WASI mount whose directory changes from call to call. An instance's mounts
// are fixed when it is instantiated, but each call brings its own scratch directory, so the
// instance mounts a mountFS at /in and /out and the call points it at the call's directory
// (and back at an empty one afterwards). Paths are resolved at open time, so a guest always
// sees the current call's files.
type mountFS struct {
	cur atomic.Pointer[fsBox]
}

type fsBox struct{ fs experimentalsys.FS }

var _ experimentalsys.FS = (*mountFS)(nil)

func newMountFS(initial experimentalsys.FS) *mountFS {
	m := &mountFS{}
	m.set(initial)
	return m
}

func (m *mountFS) set(f experimentalsys.FS) { m.cur.Store(&fsBox{fs: f}) }

func (m *mountFS) get() experimentalsys.FS { return m.cur.Load().fs }

// readOnlyDir is dir as a read-only file system: writes fail with EROFS ("read-only file
// system" in the guest) or EBADF.
func readOnlyDir(dir string) experimentalsys.FS { return readOnly{&sysfs.ReadFS{FS: sysfs.DirFS(dir)}} }

// readOnly makes an open for writing fail with EROFS, where wazero's ReadFS says ENOSYS
// ("not implemented"), which misleads plugin authors.
type readOnly struct{ *sysfs.ReadFS }

func (r readOnly) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	f, errno := r.ReadFS.OpenFile(path, flag, perm)
	if errno == experimentalsys.ENOSYS {
		errno = experimentalsys.EROFS
	}
	return f, errno
}

// writableDir is dir as a read-write file system in which the guest cannot create links:
// the OS would follow a symlink out of the directory.
func writableDir(dir string) experimentalsys.FS { return noLinks{sysfs.DirFS(dir)} }

type noLinks struct{ experimentalsys.FS }

func (noLinks) Symlink(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (noLinks) Link(string, string) experimentalsys.Errno { return experimentalsys.EPERM }

func (m *mountFS) OpenFile(path string, flag experimentalsys.Oflag, perm fs.FileMode) (experimentalsys.File, experimentalsys.Errno) {
	return m.get().OpenFile(path, flag, perm)
}

func (m *mountFS) Lstat(path string) (sys.Stat_t, experimentalsys.Errno) { return m.get().Lstat(path) }

func (m *mountFS) Stat(path string) (sys.Stat_t, experimentalsys.Errno) { return m.get().Stat(path) }

func (m *mountFS) Mkdir(path string, perm fs.FileMode) experimentalsys.Errno {
	return m.get().Mkdir(path, perm)
}

func (m *mountFS) Chmod(path string, perm fs.FileMode) experimentalsys.Errno {
	return m.get().Chmod(path, perm)
}

func (m *mountFS) Rename(from, to string) experimentalsys.Errno { return m.get().Rename(from, to) }

func (m *mountFS) Rmdir(path string) experimentalsys.Errno { return m.get().Rmdir(path) }

func (m *mountFS) Unlink(path string) experimentalsys.Errno { return m.get().Unlink(path) }

func (m *mountFS) Link(oldPath, newPath string) experimentalsys.Errno {
	return m.get().Link(oldPath, newPath)
}

func (m *mountFS) Symlink(oldPath, linkName string) experimentalsys.Errno {
	return m.get().Symlink(oldPath, linkName)
}

func (m *mountFS) Readlink(path string) (string, experimentalsys.Errno) {
	return m.get().Readlink(path)
}

func (m *mountFS) Utimens(path string, atim, mtim int64) experimentalsys.Errno {
	return m.get().Utimens(path, atim, mtim)
}
