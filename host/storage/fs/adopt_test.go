package fs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// adopt writes data to a file in dir, adopts it at key and checks the result. It returns the
// source's FileInfo from before the move and the stored object's after it.
func adopt(t *testing.T, d *FS, dir, key string, data []byte) (src, dst os.FileInfo) {
	t.Helper()
	p := filepath.Join(dir, "download")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Adopt(t.Context(), key, p)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.SHA256 != "" {
		t.Errorf("Adopt = %+v, want key %s, size %d, no sha256", info, key, len(data))
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("source still present after Adopt: %v", err)
	}
	stored, err := d.Path(key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(stored)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes (%v), want %d", len(got), err, len(data))
	}
	dst, err = os.Stat(stored)
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode() != 0o644 {
		t.Errorf("adopted file mode %v, want -rw-r--r--", dst.Mode())
	}
	return src, dst
}

func TestAdoptRenames(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	src, dst := adopt(t, d, t.TempDir(), "a/b", []byte("same filesystem"))
	if !os.SameFile(src, dst) {
		t.Error("Adopt on the same filesystem copied instead of renaming")
	}
}

func TestAdoptCopiesAcrossDevices(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	moves := 0
	d.move = func(oldpath, newpath string) error {
		moves++
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: syscall.EXDEV}
	}
	data := bytes.Repeat([]byte("cross"), 300_000)
	src, dst := adopt(t, d, t.TempDir(), "a/b", data)
	if moves != 1 || os.SameFile(src, dst) {
		t.Errorf("after EXDEV: %d rename attempts, same file %v; want 1 attempt and a copy", moves, os.SameFile(src, dst))
	}
}

// TestAdoptRealDevices adopts from tmpfs, when /dev/shm is another filesystem.
func TestAdoptRealDevices(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	dir, err := os.MkdirTemp("/dev/shm", "pulpo-adopt-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var a, b syscall.Stat_t
	if syscall.Stat(dir, &a) != nil || syscall.Stat(d.root, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the store's filesystem")
	}
	adopt(t, d, dir, "x", bytes.Repeat([]byte("tmpfs"), 1000))
}

func TestAdoptFailureKeepsSource(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	if _, err := d.Put(t.Context(), "a", bytes.NewReader([]byte("file"))); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "download")
	if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	// "a" is an object, so "a/b" cannot be created.
	if _, err := d.Adopt(t.Context(), "a/b", p); err == nil {
		t.Fatal("Adopt under an object succeeded")
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("source gone after a failed Adopt: %v", err)
	}
	if _, err := d.Adopt(t.Context(), "dir", t.TempDir()); err == nil {
		t.Error("Adopt of a directory succeeded")
	}
}
