package directio

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

func pattern(n int, seed byte) []byte {
	p := make([]byte, n)
	x := uint32(seed) + 1
	for i := range p {
		x = x*1664525 + 1013904223
		p[i] = byte(x >> 24)
	}
	return p
}

// TestAppend writes streams of every awkward size at aligned and unaligned
// offsets, read in odd pieces, and checks the file and the hash.
func TestAppend(t *testing.T) {
	dir := t.TempDir()
	for _, direct := range []bool{true, false} {
		for _, off := range []int64{0, 100, 4096, 5000} {
			for _, size := range []int{0, 1, 4095, 4096, 4097, bufSize - 1, bufSize, 3*bufSize + 17} {
				path := filepath.Join(dir, "f")
				prefix := pattern(int(off), 1)
				if err := os.WriteFile(path, prefix, 0o644); err != nil {
					t.Fatal(err)
				}
				f, err := os.OpenFile(path, os.O_RDWR, 0)
				if err != nil {
					t.Fatal(err)
				}
				data := pattern(size, byte(size))
				hs := sha256.New()
				n, err := Append(f, off, io.LimitReader(&oddReader{r: bytes.NewReader(data)}, int64(size)), hs, direct)
				f.Close()
				if err != nil || n != int64(size) {
					t.Fatalf("off %d size %d: Append = %d, %v", off, size, n, err)
				}
				got, _ := os.ReadFile(path)
				if !bytes.Equal(got, append(prefix, data...)) {
					t.Fatalf("off %d size %d: file differs (len %d)", off, size, len(got))
				}
				if sum := sha256.Sum256(data); !bytes.Equal(hs.Sum(nil), sum[:]) {
					t.Fatalf("off %d size %d: hash differs", off, size)
				}
			}
		}
	}
}

// oddReader returns a few bytes less than asked, in varying amounts, as a
// socket does.
type oddReader struct {
	r io.Reader
	i int
}

func (o *oddReader) Read(p []byte) (int, error) {
	o.i++
	if len(p) > 7 {
		p = p[:len(p)-o.i%7]
	}
	return o.r.Read(p)
}

// TestAppendBypassesPageCache checks that whole blocks really go direct: after
// an 8 MiB append almost none of the file is in the page cache.
func TestAppendBypassesPageCache(t *testing.T) {
	dir := directDir(t)
	path := filepath.Join(dir, "f")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 8 << 20
	if n, err := Append(f, 0, bytes.NewReader(pattern(size, 3)), io.Discard, true); err != nil || n != size {
		t.Fatalf("Append = %d, %v", n, err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	pages := size / os.Getpagesize()
	vec := make([]byte, pages)
	if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), size, uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	resident := 0
	for _, v := range vec {
		resident += int(v & 1)
	}
	if resident > pages/8 {
		t.Fatalf("%d of %d pages in the page cache after a direct append", resident, pages)
	}
}

// TestAppendReadError stops at a broken stream and reports its error.
func TestAppendReadError(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	boom := errors.New("connection reset")
	src := io.MultiReader(bytes.NewReader(pattern(2*bufSize+10, 4)), &failing{boom})
	n, err := Append(f, 0, src, io.Discard, true)
	if !errors.Is(err, boom) || n > 2*bufSize+10 {
		t.Fatalf("Append = %d, %v; want at most %d bytes and %v", n, err, 2*bufSize+10, boom)
	}
}

type failing struct{ err error }

func (f *failing) Read([]byte) (int, error) { return 0, f.err }

// TestAppendWriteError reports a failed write, as to a file not open for
// writing.
func TestAppendWriteError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, pattern(10, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path) // read-only
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Append(f, 10, bytes.NewReader(pattern(3*bufSize, 5)), io.Discard, true); err == nil {
		t.Fatal("Append to a read-only file succeeded")
	}
}

// TestAppendFlushesAlong checks that direct writes are flushed at every multiple
// of flushEvery during the append, not only by the caller's fsync at the end.
func TestAppendFlushesAlong(t *testing.T) {
	dir := directDir(t)
	every, sync := flushEvery, fdatasync
	defer func() { flushEvery, fdatasync = every, sync }()
	var flushes int
	flushEvery = 2 * bufSize
	fdatasync = func(fd int) error { flushes++; return sync(fd) }
	f, err := os.Create(filepath.Join(dir, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := Append(f, 0, bytes.NewReader(pattern(9*bufSize, 6)), io.Discard, true); err != nil {
		t.Fatal(err)
	}
	if flushes != 4 {
		t.Fatalf("%d flushes for 9 blocks flushed every 2, want 4", flushes)
	}
	// By offset: from block 3, blocks ending at 4 and 6 flush.
	flushes = 0
	if _, err := Append(f, 3*bufSize, bytes.NewReader(pattern(3*bufSize, 7)), io.Discard, true); err != nil {
		t.Fatal(err)
	}
	if flushes != 2 {
		t.Fatalf("%d flushes for blocks 3 to 5, want 2", flushes)
	}
	flushes = 0
	if _, err := Append(f, 0, bytes.NewReader(pattern(9*bufSize, 6)), io.Discard, false); err != nil {
		t.Fatal(err)
	}
	if flushes != 0 {
		t.Fatalf("%d flushes without direct writes, want none", flushes)
	}
}

// directDir is a temporary directory on a file system with O_DIRECT; the test
// is skipped without one.
func directDir(t *testing.T) string {
	dir := t.TempDir()
	probe, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_CREATE|os.O_WRONLY|syscall.O_DIRECT, 0o644)
	if err != nil {
		t.Skipf("%s has no O_DIRECT: %v", dir, err)
	}
	probe.Close()
	return dir
}
