package download

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/pulpo/pulpo/host/digest"
)

// BenchmarkFetch downloads 256 MiB from a local server into io.Discard,
// computing sha256 alone and then Pulp's four default digests.
func BenchmarkFetch(b *testing.B) {
	const size = 256 << 20
	chunk := body(1 << 20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for range size / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	for _, bc := range []struct {
		name      string
		checksums []string
	}{
		{"sha256", nil},
		{"default4", digest.DefaultAllowed},
	} {
		b.Run(bc.name, func(b *testing.B) {
			d, err := New(Config{}, WithChecksums(bc.checksums...))
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				res, err := d.Fetch(b.Context(), Request{URL: srv.URL, Expected: Expect{Size: size}}, io.Discard)
				if err != nil || res.Size != size {
					b.Fatal(err, res.Size)
				}
			}
		})
	}
}
