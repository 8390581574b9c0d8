package fs

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/storage/storagetest"
)

// newTestFS returns a driver whose root is <tmp>/store and checks, when the test ends, that
// no temp file was left behind and nothing was written beside the root.
func newTestFS(t *testing.T) *FS {
	t.Helper()
	parent := t.TempDir()
	d, err := New(filepath.Join(parent, "store"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if names := dirNames(t, d.tmp); len(names) > 0 {
			t.Errorf("temp files left behind: %q", names)
		}
		if names := dirNames(t, parent); !slices.Equal(names, []string{"store"}) {
			t.Errorf("files written beside the root: %q", names)
		}
	})
	return d
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Run(t, func(t *testing.T) storage.Driver { return newTestFS(t) })
}

func TestNew(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "a", "b")
	d, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.tmp); err != nil || !fi.IsDir() || filepath.Dir(d.tmp) != root {
		t.Errorf("temp dir %s: %v", d.tmp, err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(file); err == nil {
		t.Error("New over a regular file succeeded")
	}
}

func TestPutLayout(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	key, err := storage.ArtifactKey(sum)
	if err != nil {
		t.Fatal(err)
	}
	info, err := d.Put(t.Context(), key, strings.NewReader(""))
	if err != nil || info.SHA256 != sum {
		t.Fatalf("Put = %+v, %v", info, err)
	}
	p, err := d.Path(key)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(d.root, "artifact", "e3", sum[2:]); p != want {
		t.Errorf("Path = %s, want %s", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode() != 0o644 {
		t.Errorf("object file mode: %v, %v; want -rw-r--r--", fi.Mode(), err)
	}
	if _, err := d.Path("../x"); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("Path(../x) = %v, want ErrInvalidKey", err)
	}
}

func TestListSkipsReserved(t *testing.T) {
	t.Parallel()
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(d.tmp, "put-crashed"), filepath.Join(d.root, ".other", "x"), filepath.Join(d.root, ".dot")} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Put(t.Context(), "k", strings.NewReader("v")); err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := d.List(t.Context(), "", func(i storage.Info) error { got = append(got, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"k"}) {
		t.Errorf("List = %q, want [k]", got)
	}
}

func TestFile(t *testing.T) {
	t.Parallel()
	d := newTestFS(t)
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	if _, err := d.Put(t.Context(), "f", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	r, err := d.Open(t.Context(), "f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, ok := r.(*File)
	if !ok {
		t.Fatalf("Open returned %T, want *File", r)
	}
	if p, _ := d.Path("f"); f.File().Name() != p {
		t.Errorf("File().Name() = %s, want %s", f.File().Name(), p)
	}
	if _, err := f.File().Seek(5, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if pos, _ := r.Seek(0, io.SeekCurrent); pos != 5 {
		t.Errorf("offset after seeking File() = %d, want 5 (shared)", pos)
	}
	if _, ok := r.(syscall.Conn); !ok {
		t.Error("*File does not implement syscall.Conn; net cannot sendfile it")
	}
	// io.Copy to a TCP connection takes the syscall.Conn path; check it sends the right bytes.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		b, _ := io.ReadAll(c)
		_ = c.Close()
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(c, io.LimitReader(r, 500_000))
	_ = c.Close()
	if err != nil || n != 500_000 {
		t.Fatalf("io.Copy to TCP = %d, %v", n, err)
	}
	if b := <-got; !bytes.Equal(b, data[5:500_005]) {
		t.Errorf("received %d bytes, want data[5:500005]", len(b))
	}
}
