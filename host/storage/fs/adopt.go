package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/pulpo/pulpo/host/storage"
)

// Adopt implements [storage.Adopter]. It fsyncs localPath, makes it world-readable and
// renames it to key. When localPath is on another filesystem it copies the file into the
// store as Put does (ctx is honoured during the copy), then removes localPath; if that
// removal fails, Adopt returns an error although key already holds the object.
func (s *FS) Adopt(ctx context.Context, key, localPath string) (storage.Info, error) {
	dst, err := s.Path(key)
	if err != nil {
		return storage.Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return storage.Info{}, fmt.Errorf("adopt %s: %w", key, err)
	}
	info, err := s.adopt(ctx, dst, localPath)
	if err != nil {
		return storage.Info{}, fmt.Errorf("adopt %s: %w", key, err)
	}
	info.Key = key
	info.SHA256 = "" // only the copy path hashes; report the same on both paths
	return info, nil
}

func (s *FS) adopt(ctx context.Context, dst, localPath string) (storage.Info, error) {
	f, err := os.Open(localPath)
	if err != nil {
		return storage.Info{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return storage.Info{}, err
	}
	if !fi.Mode().IsRegular() {
		return storage.Info{}, fmt.Errorf("%s is not a regular file", localPath)
	}
	if err := f.Chmod(filePerm); err != nil {
		return storage.Info{}, err
	}
	if err := s.fsync(f); err != nil {
		return storage.Info{}, err
	}
	info := storage.Info{Size: fi.Size(), ModTime: fi.ModTime()}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return storage.Info{}, err
	}
	err = s.move(localPath, dst)
	if err == nil {
		syncDir(dir)
		return info, nil
	}
	if !errors.Is(err, syscall.EXDEV) {
		return storage.Info{}, err
	}
	// Another filesystem: copy into .tmp, then rename into place as Put does.
	tmp, info, err := s.spool(ctx, f)
	if err != nil {
		return storage.Info{}, err
	}
	if err := place(tmp, dst); err != nil {
		return storage.Info{}, err
	}
	if err := os.Remove(localPath); err != nil {
		return storage.Info{}, fmt.Errorf("remove adopted file: %w", err)
	}
	return info, nil
}
