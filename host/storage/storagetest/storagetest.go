// Package storagetest is the conformance suite every [storage.Driver] must pass, in the
// manner of distribution's driver testsuites. A driver's test runs it in a few lines:
//
//	func TestDriver(t *testing.T) {
//		t.Parallel()
//		storagetest.Run(t, func(t *testing.T) storage.Driver {
//			d, err := fs.New(t.TempDir())
//			if err != nil {
//				t.Fatal(err)
//			}
//			return d
//		})
//	}
//
// Checks only a driver can make, such as "no temporary data is left", belong in
// newDriver as t.Cleanup functions: they run after every subtest, including those that make
// Put fail midway.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/pulpo/pulpo/host/storage"
)

// Run runs the suite as parallel subtests of t. newDriver is called once per subtest and
// must return a driver over an empty namespace that no other subtest uses.
func Run(t *testing.T, newDriver func(t *testing.T) storage.Driver) {
	tests := []struct {
		name string
		fn   func(t *testing.T, d storage.Driver)
	}{
		{"PutOpen", testPutOpen},
		{"Seek", testSeek},
		{"ServeContent", testServeContent},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"InvalidKeys", testInvalidKeys},
		{"Overwrite", testOverwrite},
		{"OverwriteConcurrentReaders", testOverwriteConcurrentReaders},
		{"ReaderError", testReaderError},
		{"ContextCanceled", testContextCanceled},
		{"List", testList},
		{"ConcurrentPuts", testConcurrentPuts},
		{"Adopt", testAdopt},
		{"BatchAdopt", testBatchAdopt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newDriver(t))
		})
	}
}

func testPutOpen(t *testing.T, d storage.Driver) {
	for _, size := range []int{0, 1, 3<<20 + 7} {
		data := randBytes(uint64(size), size)
		sum := sha256.Sum256(data)
		key, err := storage.ArtifactKey(hex.EncodeToString(sum[:]))
		if err != nil {
			t.Fatal(err)
		}
		info := put(t, d, key, data)
		if info.Key != key || info.Size != int64(size) || info.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("Put(%d bytes) = %+v, want key %s, size %d, sha256 %x", size, info, key, size, sum)
		}
		checkRecent(t, "Put ModTime", info.ModTime)
		st, err := d.Stat(t.Context(), key)
		if err != nil {
			t.Fatalf("Stat: %v", err)
		}
		if st.Key != key || st.Size != int64(size) || (st.SHA256 != "" && st.SHA256 != info.SHA256) {
			t.Errorf("Stat = %+v, want key %s, size %d, sha256 empty or %s", st, key, size, info.SHA256)
		}
		checkRecent(t, "Stat ModTime", st.ModTime)
		checkObject(t, d, key, data)
	}
}

func testSeek(t *testing.T, d storage.Driver) {
	const size = 10000
	data := randBytes(1, size)
	put(t, d, "seek", data)
	r := open(t, d, "seek")
	tests := []struct {
		name   string
		offset int64
		whence int
		n      int   // bytes to read; fewer arrive only at the end
		pos    int64 // expected position after Seek
	}{
		{"start", 0, io.SeekStart, 10, 0},
		{"middle", 4096, io.SeekStart, 100, 4096},
		{"range to last byte", 9000, io.SeekStart, 1000, 9000},
		{"last byte", size - 1, io.SeekStart, 1, size - 1},
		{"suffix", -10, io.SeekEnd, 10, size - 10},
		{"at end", 0, io.SeekEnd, 5, size},
		{"past end", size + 5, io.SeekStart, 5, size + 5},
		{"back to start", 0, io.SeekStart, size, 0},
	}
	for _, tt := range tests {
		pos, err := r.Seek(tt.offset, tt.whence)
		if err != nil || pos != tt.pos {
			t.Fatalf("%s: Seek(%d, %d) = %d, %v; want %d", tt.name, tt.offset, tt.whence, pos, err, tt.pos)
		}
		got, err := io.ReadAll(io.LimitReader(r, int64(tt.n)))
		want := data[min(pos, size):min(pos+int64(tt.n), size)]
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: read %d bytes at %d: got %d bytes (%v), want %d bytes", tt.name, tt.n, pos, len(got), err, len(want))
		}
	}
	// Relative seeks continue from what was read.
	if _, err := r.Seek(100, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 50)); err != nil {
		t.Fatal(err)
	}
	if pos, err := r.Seek(25, io.SeekCurrent); err != nil || pos != 175 {
		t.Fatalf("Seek(25, SeekCurrent) after reading to 150 = %d, %v; want 175", pos, err)
	}
	buf := make([]byte, 10)
	if _, err := io.ReadFull(r, buf); err != nil || !bytes.Equal(buf, data[175:185]) {
		t.Errorf("read at 175 = %x, %v; want %x", buf, err, data[175:185])
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Error("Seek to -1 succeeded")
	}
}

// testServeContent serves a Reader the way the content app does and checks Range replies.
func testServeContent(t *testing.T, d storage.Driver) {
	data := randBytes(2, 5000)
	put(t, d, "served", data)
	tests := []struct {
		rng    string
		status int
		want   []byte
	}{
		{"", http.StatusOK, data},
		{"bytes=100-199", http.StatusPartialContent, data[100:200]},
		{"bytes=4990-", http.StatusPartialContent, data[4990:]},
		{"bytes=-7", http.StatusPartialContent, data[4993:]},
		{"bytes=5000-", http.StatusRequestedRangeNotSatisfiable, nil},
	}
	for _, tt := range tests {
		r := open(t, d, "served")
		req := httptest.NewRequest(http.MethodGet, "/served", nil)
		if tt.rng != "" {
			req.Header.Set("Range", tt.rng)
		}
		rec := httptest.NewRecorder()
		http.ServeContent(rec, req, "served", r.ModTime(), r)
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if rec.Code != tt.status {
			t.Errorf("Range %q: status %d, want %d", tt.rng, rec.Code, tt.status)
			continue
		}
		if tt.want != nil && !bytes.Equal(rec.Body.Bytes(), tt.want) {
			t.Errorf("Range %q: got %d bytes, want %d bytes", tt.rng, rec.Body.Len(), len(tt.want))
		}
	}
}

func testMissing(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	put(t, d, "dir/x", []byte("x"))
	for _, key := range []string{"missing", "dir", "dir/x/y", "dir/y"} {
		if r, err := d.Open(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q) = %v, %v; want ErrNotFound", key, r, err)
		}
		if info, err := d.Stat(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) = %+v, %v; want ErrNotFound", key, info, err)
		}
		if err := d.Delete(ctx, key); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", key, err)
		}
	}
	checkObject(t, d, "dir/x", []byte("x"))
}

func testDelete(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	put(t, d, "a/keep", []byte("keep"))
	put(t, d, "a/gone", []byte("gone"))
	if err := d.Delete(ctx, "a/gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := d.Open(ctx, "a/gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Open after Delete = %v, want ErrNotFound", err)
	}
	if _, err := d.Stat(ctx, "a/gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after Delete = %v, want ErrNotFound", err)
	}
	if err := d.Delete(ctx, "a/gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	checkKeys(t, d, "", "a/keep")
	put(t, d, "a/gone", []byte("back"))
	checkObject(t, d, "a/gone", []byte("back"))
}

func testInvalidKeys(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	keys := []string{"", "../x", "..", "/abs", "a//b", "a/./b", "a/../b", "a/", `a\b`, "a\x00b", ".tmp/x"}
	for _, key := range keys {
		if info, err := d.Put(ctx, key, bytes.NewReader([]byte("escape"))); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) = %+v, %v; want ErrInvalidKey", key, info, err)
		}
		if _, err := d.Open(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Open(%q) = %v, want ErrInvalidKey", key, err)
		}
		if _, err := d.Stat(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Stat(%q) = %v, want ErrInvalidKey", key, err)
		}
		if err := d.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "../", "a//", ".tmp/"} {
		err := d.List(ctx, prefix, func(storage.Info) error { return nil })
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("List(%q) = %v, want ErrInvalidKey", prefix, err)
		}
	}
	checkKeys(t, d, "")
}

func testOverwrite(t *testing.T, d storage.Driver) {
	old, repl := randBytes(3, 300_000), randBytes(4, 200_001)
	put(t, d, "obj", old)
	r := open(t, d, "obj")
	head := make([]byte, 1000)
	if _, err := io.ReadFull(r, head); err != nil {
		t.Fatal(err)
	}
	info := put(t, d, "obj", repl)
	if info.Size != int64(len(repl)) {
		t.Errorf("Put over an object: size %d, want %d", info.Size, len(repl))
	}
	checkObject(t, d, "obj", repl)
	// The reader opened before the replacement sees one object in full.
	rest, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read after replace: %v", err)
	}
	if got := append(head, rest...); !bytes.Equal(got, old) && !bytes.Equal(got, repl) {
		t.Errorf("reader opened before replace read %d bytes mixing both objects", len(got))
	}
}

func testOverwriteConcurrentReaders(t *testing.T, d storage.Driver) {
	objs := [][]byte{randBytes(5, 256<<10), randBytes(6, 256<<10+3)}
	put(t, d, "hot", objs[0])
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for reads := 0; ; reads++ {
				select {
				case <-done:
					if reads > 0 {
						return
					}
				default:
				}
				r, err := d.Open(t.Context(), "hot")
				if err != nil {
					t.Errorf("Open during overwrites: %v", err)
					return
				}
				got, err := io.ReadAll(r)
				_ = r.Close()
				if err != nil {
					t.Errorf("read during overwrites: %v", err)
					return
				}
				if !bytes.Equal(got, objs[0]) && !bytes.Equal(got, objs[1]) {
					t.Errorf("read %d bytes that are neither the old nor the new object", len(got))
					return
				}
				if r.Size() != int64(len(got)) {
					t.Errorf("Size() = %d, read %d bytes", r.Size(), len(got))
					return
				}
			}
		})
	}
	for i := range 20 {
		put(t, d, "hot", objs[(i+1)%2])
	}
	close(done)
	wg.Wait()
}

var errBoom = errors.New("storagetest: reader failed")

func testReaderError(t *testing.T, d storage.Driver) {
	ctx := t.Context()
	old := []byte("old object")
	put(t, d, "kept", old)
	// io.ErrUnexpectedEOF is how a truncated download ends; it must not pass for io.EOF.
	for _, readErr := range []error{errBoom, io.ErrUnexpectedEOF} {
		for _, key := range []string{"kept", "never"} {
			r := io.MultiReader(bytes.NewReader(randBytes(7, 2<<20+1)), errReader{readErr})
			if info, err := d.Put(ctx, key, r); !errors.Is(err, readErr) {
				t.Errorf("Put(%q) from a reader failing with %q = %+v, %v; want an error wrapping it", key, readErr, info, err)
			}
		}
	}
	if _, err := d.Stat(ctx, "never"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after a failed Put = %v, want ErrNotFound", err)
	}
	checkObject(t, d, "kept", old)
	checkKeys(t, d, "", "kept")
}

func testContextCanceled(t *testing.T, d storage.Driver) {
	ctx, cancel := context.WithCancel(t.Context())
	const total = 64 << 20
	r := &cancelingReader{r: io.LimitReader(rand.NewChaCha8([32]byte{8}), total), after: 2 << 20, cancel: cancel}
	if info, err := d.Put(ctx, "canceled", r); !errors.Is(err, context.Canceled) {
		t.Errorf("Put canceled midway = %+v, %v; want context.Canceled", info, err)
	}
	if r.n >= total {
		t.Errorf("Put read all %d bytes after ctx was canceled at %d", r.n, r.after)
	}
	if info, err := d.Put(ctx, "canceled", bytes.NewReader([]byte("x"))); !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled ctx = %+v, %v; want context.Canceled", info, err)
	}
	if _, err := d.Stat(t.Context(), "canceled"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat after a canceled Put = %v, want ErrNotFound", err)
	}
	checkKeys(t, d, "")
}

func testList(t *testing.T, d storage.Driver) {
	all := []string{"list/a/1", "list/a/22", "list/b/333", "lista/4444", "other"}
	for _, key := range all {
		put(t, d, key, bytes.Repeat([]byte("x"), len(key)))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", all},
		{"list/", all[:3]},
		{"list/a/", all[:2]},
		{"list", all[:4]},
		{"list/a/2", all[1:2]},
		{"list/a/22", all[1:2]},
		{"list/c", nil},
		{"nope/", nil},
	}
	for _, tt := range tests {
		var got []string
		err := d.List(t.Context(), tt.prefix, func(info storage.Info) error {
			if info.Size != int64(len(info.Key)) {
				t.Errorf("List(%q): %s has size %d, want %d", tt.prefix, info.Key, info.Size, len(info.Key))
			}
			checkRecent(t, "List ModTime", info.ModTime)
			got = append(got, info.Key)
			return nil
		})
		slices.Sort(got)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("List(%q) = %q, %v; want %q", tt.prefix, got, err, tt.want)
		}
	}
	calls := 0
	err := d.List(t.Context(), "", func(storage.Info) error { calls++; return errBoom })
	if !errors.Is(err, errBoom) || calls != 1 {
		t.Errorf("List with fn failing: %v after %d calls; want errBoom after 1", err, calls)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := d.List(ctx, "", func(storage.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a canceled ctx = %v, want context.Canceled", err)
	}
}

func testConcurrentPuts(t *testing.T, d storage.Driver) {
	const writers = 8
	objs := make([][]byte, writers)
	for i := range objs {
		objs[i] = randBytes(uint64(100+i), 512<<10+i)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			<-start
			info, err := d.Put(t.Context(), "race", bytes.NewReader(objs[i]))
			if err != nil {
				t.Errorf("Put %d: %v", i, err)
				return
			}
			if sum := sha256.Sum256(objs[i]); info.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("Put %d: sha256 %s, want %x", i, info.SHA256, sum)
			}
		})
	}
	close(start)
	wg.Wait()
	got := readAll(t, d, "race")
	if !slices.ContainsFunc(objs, func(o []byte) bool { return bytes.Equal(o, got) }) {
		t.Errorf("after %d concurrent Puts the object (%d bytes) is none of them", writers, len(got))
	}
	checkKeys(t, d, "", "race")
}

// testAdopt runs only for drivers that implement [storage.Adopter].
func testAdopt(t *testing.T, d storage.Driver) {
	a, ok := d.(storage.Adopter)
	if !ok {
		t.Skip("driver does not implement storage.Adopter")
	}
	ctx := t.Context()
	data := randBytes(9, 100_003)
	src := filepath.Join(t.TempDir(), "download")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	info, err := a.Adopt(ctx, "adopted/x", src)
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	if info.Key != "adopted/x" || info.Size != int64(len(data)) {
		t.Errorf("Adopt = %+v, want key adopted/x, size %d", info, len(data))
	}
	checkRecent(t, "Adopt ModTime", info.ModTime)
	if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("adopted file still present: %v", err)
	}
	checkObject(t, d, "adopted/x", data)
	if _, err := a.Adopt(ctx, "adopted/y", src); err == nil {
		t.Error("Adopt of a missing file succeeded")
	}
	if _, err := a.Adopt(ctx, "../y", src); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Adopt to ../y = %v, want ErrInvalidKey", err)
	}
	checkKeys(t, d, "", "adopted/x")
}

// testBatchAdopt runs only for drivers that implement [storage.BatchAdopter]. Durability
// across a crash cannot be observed here; what is checked is that objects adopted without
// sync behave as adopted ones do, replace as Put does, and that Sync accepts them and
// refuses keys without an object.
func testBatchAdopt(t *testing.T, d storage.Driver) {
	b, ok := d.(storage.BatchAdopter)
	if !ok {
		t.Skip("driver does not implement storage.BatchAdopter")
	}
	ctx := t.Context()
	dir := t.TempDir()
	var keys []string
	objs := map[string][]byte{}
	for i := range 20 {
		data := randBytes(uint64(200+i), 1000*i)
		src := filepath.Join(dir, "download-"+strconv.Itoa(i))
		if err := os.WriteFile(src, data, 0o600); err != nil {
			t.Fatal(err)
		}
		key := "batch/" + strconv.Itoa(i%3) + "/" + strconv.Itoa(i)
		info, err := b.AdoptNoSync(ctx, key, src)
		if err != nil {
			t.Fatalf("AdoptNoSync %s: %v", key, err)
		}
		if info.Key != key || info.Size != int64(len(data)) {
			t.Errorf("AdoptNoSync = %+v, want key %s, size %d", info, key, len(data))
		}
		checkRecent(t, "AdoptNoSync ModTime", info.ModTime)
		if _, err := os.Stat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("adopted file still present: %v", err)
		}
		keys = append(keys, key)
		objs[key] = data
	}
	// Replacing an object, as a second download of the same artifact does.
	put(t, d, "batch/replaced", []byte("old bytes"))
	src := filepath.Join(dir, "replacement")
	if err := os.WriteFile(src, []byte("new bytes!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AdoptNoSync(ctx, "batch/replaced", src); err != nil {
		t.Fatalf("AdoptNoSync over an object: %v", err)
	}
	keys = append(keys, "batch/replaced")
	objs["batch/replaced"] = []byte("new bytes!")
	if err := b.Sync(ctx, keys); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := b.Sync(ctx, nil); err != nil {
		t.Errorf("Sync of no keys: %v", err)
	}
	for key, data := range objs {
		checkObject(t, d, key, data)
	}
	checkKeys(t, d, "", slices.Sorted(maps.Keys(objs))...)

	if _, err := b.AdoptNoSync(ctx, "batch/missing", filepath.Join(dir, "nothing")); err == nil {
		t.Error("AdoptNoSync of a missing file succeeded")
	}
	if _, err := b.AdoptNoSync(ctx, "../x", src); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("AdoptNoSync to ../x = %v, want ErrInvalidKey", err)
	}
	if err := b.Sync(ctx, []string{keys[0], "batch/missing"}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Sync of a key without an object = %v, want ErrNotFound", err)
	}
	if err := b.Sync(ctx, []string{"../x"}); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Sync of ../x = %v, want ErrInvalidKey", err)
	}
}
