package fs

import (
	"bytes"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
)

// counting replaces d's flushes with counters; with syncfs false Sync must fsync each file.
func counting(d *FS, syncfs bool) (fsyncs, syncfsCalls *atomic.Int64) {
	fsyncs, syncfsCalls = new(atomic.Int64), new(atomic.Int64)
	d.fsync = func(f *os.File) error { fsyncs.Add(1); return f.Sync() }
	d.syncFS = func(root *os.File) error {
		if !syncfs {
			return fmt.Errorf("test: %w", errors.ErrUnsupported)
		}
		syncfsCalls.Add(1)
		return syncFS(root)
	}
	return fsyncs, syncfsCalls
}

func writeSource(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAdoptNoSyncDefersFlush checks where the flushes happen: none when a new object is
// adopted, Adopt's fsync when an object is replaced (a database row may name it already),
// fsyncs when a small batch is synced and one syncfs for a large one.
func TestAdoptNoSyncDefersFlush(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	fsyncs, syncfs := counting(d, true)
	dir := t.TempDir()
	src := writeSource(t, dir, "a", []byte("first"))
	srcFI, _ := os.Stat(src)
	if _, err := d.AdoptNoSync(t.Context(), "x/a", src); err != nil {
		t.Fatal(err)
	}
	p, _ := d.Path("x/a")
	dstFI, err := os.Stat(p)
	if err != nil || !os.SameFile(srcFI, dstFI) || dstFI.Mode() != filePerm {
		t.Fatalf("adopted object: %v, same file %v, mode %v", err, os.SameFile(srcFI, dstFI), dstFI.Mode())
	}
	if n := fsyncs.Load(); n != 0 {
		t.Errorf("AdoptNoSync of a new object fsynced %d times", n)
	}
	if _, err := d.AdoptNoSync(t.Context(), "x/a", writeSource(t, dir, "b", []byte("second"))); err != nil {
		t.Fatal(err)
	}
	if n := fsyncs.Load(); n != 1 {
		t.Errorf("AdoptNoSync over an object fsynced %d times, want 1 (Adopt's durable replace)", n)
	}
	if got, _ := os.ReadFile(p); string(got) != "second" {
		t.Errorf("replaced object holds %q", got)
	}
	// A small batch: fsyncs of x/a, x and the root, not a flush of the filesystem.
	if err := d.Sync(t.Context(), []string{"x/a"}); err != nil {
		t.Fatal(err)
	}
	if syncfs.Load() != 0 || fsyncs.Load() != 4 {
		t.Errorf("Sync of 1 key: %d syncfs, %d fsyncs; want 0 and 1+3", syncfs.Load(), fsyncs.Load())
	}
	d.syncfsMin = 1
	if err := d.Sync(t.Context(), []string{"x/a"}); err != nil {
		t.Fatal(err)
	}
	if syncfs.Load() != 1 || fsyncs.Load() != 4 {
		t.Errorf("Sync of a large batch: %d syncfs, %d fsyncs; want 1 syncfs and no more fsyncs", syncfs.Load(), fsyncs.Load())
	}
	if err := d.Sync(t.Context(), nil); err != nil || syncfs.Load() != 1 || fsyncs.Load() != 4 {
		t.Errorf("Sync of nothing: %v, %d syncfs and %d fsyncs in all", err, syncfs.Load(), fsyncs.Load())
	}
}

// TestMoveNoReplace checks both ways of moving without replacing: a file moves, an
// existing target is refused with EEXIST and the source stays.
func TestMoveNoReplace(t *testing.T) {
	t.Parallel()
	for name, move := range map[string]func(string, string) error{"moveNoReplace": moveNoReplace, "linkAndRemove": linkAndRemove} {
		dir := t.TempDir()
		src, dst := writeSource(t, dir, "src", []byte("new")), writeSource(t, dir, "dst", []byte("old"))
		if err := move(src, dst); !errors.Is(err, iofs.ErrExist) {
			t.Errorf("%s onto a file = %v, want EEXIST", name, err)
		}
		if got, _ := os.ReadFile(dst); string(got) != "old" {
			t.Errorf("%s replaced the target: %q", name, got)
		}
		other := filepath.Join(dir, "other")
		if err := move(src, other); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, _ := os.ReadFile(other); string(got) != "new" {
			t.Errorf("%s moved %q", name, got)
		}
		if _, err := os.Stat(src); !os.IsNotExist(err) {
			t.Errorf("%s left the source: %v", name, err)
		}
	}
}

// TestAdoptNoSyncDirectoryRemoved removes a directory AdoptNoSync has cached as existing.
func TestAdoptNoSyncDirectoryRemoved(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	dir := t.TempDir()
	if _, err := d.AdoptNoSync(t.Context(), "x/y/a", writeSource(t, dir, "a", []byte("a"))); err != nil {
		t.Fatal(err)
	}
	p, _ := d.Path("x")
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
	if _, err := d.AdoptNoSync(t.Context(), "x/y/b", writeSource(t, dir, "b", []byte("b"))); err != nil {
		t.Fatalf("AdoptNoSync after its directory went: %v", err)
	}
	if err := d.Sync(t.Context(), []string{"x/y/b"}); err != nil {
		t.Fatal(err)
	}
}

// TestSyncFsyncsEachWithoutSyncfs checks the fallback: every object, and each directory
// from the objects' up to the root once.
func TestSyncFsyncsEachWithoutSyncfs(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	fsyncs, _ := counting(d, false)
	d.syncfsMin = 1
	dir := t.TempDir()
	keys := []string{"artifact/ab/1", "artifact/ab/2", "artifact/cd/3", "top"}
	for i, k := range keys {
		if _, err := d.AdoptNoSync(t.Context(), k, writeSource(t, dir, fmt.Sprint(i), []byte(k))); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Sync(t.Context(), keys); err != nil {
		t.Fatal(err)
	}
	// 4 files + artifact/ab, artifact/cd, artifact, root.
	if n := fsyncs.Load(); n != 8 {
		t.Errorf("Sync fsynced %d times, want 8", n)
	}
	d.fsync = func(*os.File) error { return syscall.EIO }
	if err := d.Sync(t.Context(), keys); !errors.Is(err, syscall.EIO) {
		t.Errorf("Sync with failing fsyncs = %v, want EIO", err)
	}
}

// TestAdoptNoSyncWithoutLinks falls back to Adopt's copy when neither a hard link nor a
// rename can reach the store.
func TestAdoptNoSyncWithoutLinks(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	exdev := func(oldpath, newpath string) error {
		return &os.LinkError{Op: "link", Old: oldpath, New: newpath, Err: syscall.EXDEV}
	}
	d.link, d.move = exdev, exdev
	data := bytes.Repeat([]byte("cross"), 100_000)
	src := writeSource(t, t.TempDir(), "a", data)
	info, err := d.AdoptNoSync(t.Context(), "x/y", src)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("AdoptNoSync = %+v, %v", info, err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Errorf("source still present: %v", err)
	}
	p, _ := d.Path("x/y")
	if got, _ := os.ReadFile(p); !bytes.Equal(got, data) {
		t.Errorf("copied object holds %d bytes, want %d", len(got), len(data))
	}
}

// BenchmarkSync compares the two ways Sync can make a batch of small adopted files
// durable, for batches of several sizes: one syncfs(2), or an fsync of each file and
// directory, syncWorkers at a time.
func BenchmarkSync(b *testing.B) {
	for _, n := range []int{4, 16, 64, 500} {
		for _, mode := range []string{"syncfs", "fsync-each"} {
			b.Run(fmt.Sprintf("%d-%s", n, mode), func(b *testing.B) {
				d, err := New(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				if mode == "fsync-each" {
					d.syncFS = func(*os.File) error { return errors.ErrUnsupported }
				}
				d.syncfsMin = 1
				work := b.TempDir()
				round := 0
				for b.Loop() {
					b.StopTimer()
					keys := make([]string, n)
					for i := range keys {
						keys[i] = fmt.Sprintf("artifact/%02x/%d-%d", (i*7)%256, round, i)
						src := filepath.Join(work, "dl")
						if err := os.WriteFile(src, fmt.Appendf(nil, "file %d of round %d\n", i, round), 0o600); err != nil {
							b.Fatal(err)
						}
						if _, err := d.AdoptNoSync(b.Context(), keys[i], src); err != nil {
							b.Fatal(err)
						}
					}
					round++
					b.StartTimer()
					if err := d.Sync(b.Context(), keys); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkAdoptNoSync measures placing one small downloaded file, the per-file cost of
// an immediate sync's storage.
func BenchmarkAdoptNoSync(b *testing.B) {
	d, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	i := 0
	for b.Loop() {
		b.StopTimer()
		src := filepath.Join(work, "dl")
		if err := os.WriteFile(src, []byte("small file"), 0o600); err != nil {
			b.Fatal(err)
		}
		key := fmt.Sprintf("artifact/%02x/%d", i%256, i)
		i++
		b.StartTimer()
		if _, err := d.AdoptNoSync(b.Context(), key, src); err != nil {
			b.Fatal(err)
		}
	}
}
