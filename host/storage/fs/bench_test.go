package fs

import (
	"bytes"
	"testing"
)

// BenchmarkPut measures Put of a 64 MiB object: hashing, writing, fsync and rename.
func BenchmarkPut(b *testing.B) {
	d, err := New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.Put(b.Context(), "bench/object", bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
