package fs

import (
	"context"
	"fmt"
	iofs "io/fs"
	"os"
	"syscall"
	"time"

	"github.com/pulpo/pulpo/host/storage"
)

// File is the [storage.Reader] returned by [FS.Open]: an open *os.File with the size and
// modification time it had when opened. Replacing or deleting the object later does not
// affect an open File, which keeps reading the bytes it opened.
//
// File implements syscall.Conn, which the net package looks for, so io.Copy to a TCP
// connection and http.ServeContent (whose io.LimitedReader net also sees through) send it
// with sendfile(2) without the bytes passing through user space. [File.File] exposes the
// *os.File for anything else; it shares the File's offset.
type File struct {
	f    *os.File
	size int64
	mod  time.Time
}

// Open implements [storage.Driver].
func (s *FS) Open(ctx context.Context, key string) (storage.Reader, error) {
	p, err := s.Path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, pathError("open", key, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = iofs.ErrNotExist
	}
	if err != nil {
		_ = f.Close()
		return nil, pathError("open", key, err)
	}
	return &File{f: f, size: fi.Size(), mod: fi.ModTime()}, nil
}

// Read implements io.Reader.
func (f *File) Read(p []byte) (int, error) { return f.f.Read(p) }

// Seek implements io.Seeker.
func (f *File) Seek(offset int64, whence int) (int64, error) { return f.f.Seek(offset, whence) }

// Close closes the underlying file.
func (f *File) Close() error { return f.f.Close() }

// Size returns the object's length in bytes.
func (f *File) Size() int64 { return f.size }

// ModTime returns when the object was written.
func (f *File) ModTime() time.Time { return f.mod }

// File returns the underlying file. Closing the File closes it.
func (f *File) File() *os.File { return f.f }

// SyscallConn implements syscall.Conn, so the net package can use sendfile(2).
func (f *File) SyscallConn() (syscall.RawConn, error) {
	rc, err := f.f.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("syscall conn: %w", err)
	}
	return rc, nil
}
