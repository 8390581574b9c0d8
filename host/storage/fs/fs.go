// Package fs is the local-filesystem [storage.Driver].
//
// Each object is a regular file under a root directory, named by its key with slashes
// turned into directories (see [storage.ArtifactKey] for the layout). Writes go to a
// temporary file in <root>/.tmp, are fsynced and renamed into place, so readers never see a
// partial object and a crash leaves at worst a stale file in .tmp. Files left there by a
// crash may be deleted whenever no process is writing to the store. [FS.AdoptNoSync] skips
// the per-file fsync, and [FS.Sync] makes a batch durable, with one syncfs(2) on Linux when
// the batch is large.
//
// Keys that are both an object and a prefix of another object ("a" and "a/b") cannot
// coexist on a filesystem; the second Put fails. The artifact layout never does this.
// Directories are not removed when their last object is deleted.
package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/pulpo/pulpo/host/storage"
)

var (
	_ storage.Driver       = (*FS)(nil)
	_ storage.Adopter      = (*FS)(nil)
	_ storage.BatchAdopter = (*FS)(nil)
	_ storage.Reader       = (*File)(nil)
)

const (
	tmpDirName = ".tmp"
	bufSize    = 1 << 20
	dirPerm    = 0o755
	filePerm   = 0o644
)

// FS stores objects as files under a root directory. Its methods are safe for concurrent
// use, also by several processes sharing the root. It keeps the root open, for Sync; the
// descriptor is closed when the FS is garbage collected.
type FS struct {
	root string
	tmp  string
	bufs sync.Pool // *[]byte of bufSize, for Put's copy loop
	// move renames an adopted file into place; tests replace it to simulate EXDEV.
	move func(oldpath, newpath string) error
	// link moves a file adopted without sync and fails if newpath exists; tests replace it.
	link func(oldpath, newpath string) error
	// dirs caches directories AdoptNoSync made or found (string -> true), saving a stat
	// per object; the driver never removes directories.
	dirs sync.Map
	// fsync flushes an adopted file or a directory Sync covers; tests count its calls.
	fsync func(f *os.File) error
	// syncFS flushes the whole filesystem of the open root directory (syncfs(2)); it
	// returns an error wrapping errors.ErrUnsupported where there is no such call, and
	// Sync then fsyncs each object instead.
	syncFS func(root *os.File) error
	// rootFD is the root, open from New on for syncFS (see Sync).
	rootFD *os.File
	// syncfsMin is the smallest batch Sync flushes with syncFS; tests lower it.
	syncfsMin int
}

// New returns a driver storing objects under root, creating root and its temp directory
// if needed. The temp directory is on the same filesystem, so a finished write is renamed
// into place.
func New(root string) (*FS, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("storage root: %w", err)
	}
	tmp := filepath.Join(root, tmpDirName)
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("storage root: %w", err)
	}
	rootFD, err := os.Open(root)
	if err != nil {
		return nil, fmt.Errorf("storage root: %w", err)
	}
	s := &FS{root: root, tmp: tmp, move: os.Rename, link: moveNoReplace, fsync: (*os.File).Sync,
		syncFS: syncFS, rootFD: rootFD, syncfsMin: defaultSyncfsMin}
	s.bufs.New = func() any { b := make([]byte, bufSize); return &b }
	return s, nil
}

// Path returns the local file name of key, which need not exist.
func (s *FS) Path(key string) (string, error) {
	if err := storage.ValidKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements [storage.Driver]. It copies r in 1 MiB chunks, checking ctx between
// reads; a reader that can block should itself be bound to ctx (an HTTP response body is).
func (s *FS) Put(ctx context.Context, key string, r io.Reader) (storage.Info, error) {
	dst, err := s.Path(key)
	if err != nil {
		return storage.Info{}, err
	}
	tmp, info, err := s.spool(ctx, r)
	if err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	if err := place(tmp, dst); err != nil {
		return storage.Info{}, fmt.Errorf("put %s: %w", key, err)
	}
	info.Key = key
	return info, nil
}

// spool copies r into a new file in the temp directory, hashing on the way, and fsyncs it.
// It returns the file's name; on error the file is already removed.
func (s *FS) spool(ctx context.Context, r io.Reader) (name string, info storage.Info, err error) {
	if err := ctx.Err(); err != nil {
		return "", info, err
	}
	f, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return "", info, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	bufp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bufp)
	h := sha256.New()
	if info.Size, err = copyHashed(ctx, f, h, r, *bufp); err != nil {
		return "", info, err
	}
	if err = f.Chmod(filePerm); err != nil {
		return "", info, err
	}
	if err = f.Sync(); err != nil {
		return "", info, err
	}
	fi, err := f.Stat()
	if err != nil {
		return "", info, err
	}
	if err = f.Close(); err != nil {
		return "", info, err
	}
	info.SHA256 = hex.EncodeToString(h.Sum(nil))
	info.ModTime = fi.ModTime()
	return f.Name(), info, nil
}

// copyHashed copies r to w and h through buf, writing only full buffers (and the tail), and
// returns the byte count. It stops with ctx's error once ctx is done.
func copyHashed(ctx context.Context, w, h io.Writer, r io.Reader, buf []byte) (int64, error) {
	var total int64
	n := 0
	for {
		m, rerr := r.Read(buf[n:])
		n += m
		if n == len(buf) || (rerr == io.EOF && n > 0) {
			h.Write(buf[:n]) // hash.Hash never returns an error
			if _, err := w.Write(buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
			n = 0
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("read: %w", rerr)
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// place renames the finished temp file tmp to dst, creating dst's parent directories, and
// removes tmp if that fails.
func place(tmp, dst string) error {
	dir := filepath.Dir(dst)
	err := os.MkdirAll(dir, dirPerm)
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename in dir durable. It is best effort: the object is already visible,
// so a failure here must not turn into a failed Put.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}

// Stat implements [storage.Driver]. Info.SHA256 is empty: the fs driver stores no digests.
func (s *FS) Stat(ctx context.Context, key string) (storage.Info, error) {
	p, err := s.Path(key)
	if err != nil {
		return storage.Info{}, err
	}
	fi, err := os.Stat(p)
	if err == nil && !fi.Mode().IsRegular() {
		err = iofs.ErrNotExist
	}
	if err != nil {
		return storage.Info{}, pathError("stat", key, err)
	}
	return storage.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements [storage.Driver].
func (s *FS) Delete(ctx context.Context, key string) error {
	p, err := s.Path(key)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(p)
	if err == nil && fi.IsDir() {
		err = iofs.ErrNotExist
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil {
		return pathError("delete", key, err)
	}
	return nil
}

// List implements [storage.Driver]. It walks only the directories that can hold matching
// keys and never reports the temp directory. Info.SHA256 is empty.
func (s *FS) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := storage.ValidPrefix(prefix); err != nil {
		return err
	}
	start := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		start = filepath.Join(s.root, filepath.FromSlash(prefix[:i]))
	}
	err := filepath.WalkDir(start, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // the start directory is missing, or an entry vanished
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == s.root {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			dir := key + "/"
			// Skip .tmp and other reserved names, and subtrees that cannot match.
			if storage.ValidKey(key) != nil || (!strings.HasPrefix(dir, prefix) && !strings.HasPrefix(prefix, dir)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) || storage.ValidKey(key) != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			if isNotExist(err) {
				return nil
			}
			return err
		}
		return fn(storage.Info{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("list %q: %w", prefix, err)
	}
	return nil
}

// pathError wraps err from operation op on key, adding [storage.ErrNotFound] when the
// file does not exist.
func pathError(op, key string, err error) error {
	if isNotExist(err) {
		return fmt.Errorf("%s %s: %w", op, key, storage.ErrNotFound)
	}
	return fmt.Errorf("%s %s: %w", op, key, err)
}

// isNotExist reports a missing file, including a path through a file ("a/b" when "a" is an
// object).
func isNotExist(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
