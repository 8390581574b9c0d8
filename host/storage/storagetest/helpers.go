package storagetest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/storage"
)

// randBytes returns n bytes that depend only on seed.
func randBytes(seed uint64, n int) []byte {
	var s [32]byte
	for i := range 8 {
		s[i] = byte(seed >> (8 * i))
	}
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func put(t *testing.T, d storage.Driver, key string, data []byte) storage.Info {
	t.Helper()
	info, err := d.Put(t.Context(), key, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func open(t *testing.T, d storage.Driver, key string) storage.Reader {
	t.Helper()
	r, err := d.Open(t.Context(), key)
	if err != nil {
		t.Fatalf("Open(%q): %v", key, err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func readAll(t *testing.T, d storage.Driver, key string) []byte {
	t.Helper()
	r := open(t, d, key)
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	if r.Size() != int64(len(got)) {
		t.Errorf("Open(%q).Size() = %d, read %d bytes", key, r.Size(), len(got))
	}
	checkRecent(t, "Reader ModTime", r.ModTime())
	if err := r.Close(); err != nil {
		t.Errorf("Close(%q): %v", key, err)
	}
	return got
}

// checkObject checks that key holds exactly want.
func checkObject(t *testing.T, d storage.Driver, key string, want []byte) {
	t.Helper()
	got := readAll(t, d, key)
	if !bytes.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("%q holds %d bytes, want %d; first difference at byte %d", key, len(got), len(want), i)
	}
}

// checkKeys checks that List(prefix) reports exactly want, so a failed operation left
// nothing visible behind.
func checkKeys(t *testing.T, d storage.Driver, prefix string, want ...string) {
	t.Helper()
	var got []string
	err := d.List(t.Context(), prefix, func(info storage.Info) error {
		got = append(got, info.Key)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("List(%q) = %q, want %q", prefix, got, want)
	}
}

// checkRecent checks that a modification time is set and plausible for an object written
// by this test, allowing for a remote store's clock skew.
func checkRecent(t *testing.T, what string, mt time.Time) {
	t.Helper()
	if d := time.Since(mt); d > time.Hour || d < -time.Hour {
		t.Errorf("%s = %v, not within an hour of now", what, mt)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// cancelingReader calls cancel once more than after bytes have been read, and keeps
// serving data, so only a Put that checks its ctx stops.
type cancelingReader struct {
	r      io.Reader
	after  int64
	n      int64
	cancel context.CancelFunc
}

func (r *cancelingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n > r.after {
		r.cancel()
	}
	return n, err
}
