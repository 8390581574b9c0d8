package digest

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestSums(t *testing.T) {
	t.Parallel()
	h, err := New("md5", "sha512")
	if err != nil {
		t.Fatal(err)
	}
	h.Write([]byte("abc"))
	s := h.Sums()
	want := map[string]string{
		"md5":    "900150983cd24fb0d6963f7d28e17f72",
		"sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
		"sha512": "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	}
	for k, v := range want {
		if s[k] != v || !Valid(k, s[k]) {
			t.Errorf("%s = %s, want %s", k, s[k], v)
		}
	}
	if h.Size() != 3 || len(s) != 3 {
		t.Fatalf("size %d sums %v", h.Size(), s)
	}
	if _, err := New("crc32"); err == nil {
		t.Fatal("unknown digest accepted")
	}
	if Valid("sha256", "ABC") || Valid("sha256", s["md5"]) {
		t.Fatal("Valid accepted a bad digest")
	}
}

// TestLargeWrites checks the parallel path against each digest computed on its own, over
// writes both sides of parallelMin.
func TestLargeWrites(t *testing.T) {
	t.Parallel()
	data := make([]byte, 3*parallelMin+17)
	for i := range data {
		data[i] = byte(i * 7)
	}
	h, err := New(DefaultAllowed...)
	if err != nil {
		t.Fatal(err)
	}
	h.Write(data[:10])
	h.Write(data[10 : 10+2*parallelMin])
	h.Write(data[10+2*parallelMin:])
	got := h.Sums()
	for _, name := range DefaultAllowed {
		one, _ := newHash(name)
		one.Write(data)
		if want := hex.EncodeToString(one.Sum(nil)); got[name] != want {
			t.Errorf("%s = %s, want %s", name, got[name], want)
		}
	}
	if h.Size() != int64(len(data)) {
		t.Fatalf("size %d, want %d", h.Size(), len(data))
	}
}

// BenchmarkHasher reports the default digests' throughput on 256 KiB writes (the
// downloader's buffer) against sha256 alone, the ceiling.
func BenchmarkHasher(b *testing.B) {
	buf := make([]byte, 256<<10)
	for _, names := range [][]string{{"sha256"}, {"sha512"}, DefaultAllowed} {
		b.Run(strings.Join(names, "+"), func(b *testing.B) {
			h, _ := New(names...)
			b.SetBytes(int64(len(buf)))
			for b.Loop() {
				h.Write(buf)
			}
		})
	}
}
