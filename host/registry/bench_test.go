package registry

import (
	"bytes"
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkManifestByTag measures GET /v2/<name>/manifests/<tag> over real HTTP on
// loopback, cached (no query, no plugin call).
func BenchmarkManifestByTag(b *testing.B) {
	e := newEnv(b)
	m, _ := e.pushImage("bench/app", "latest", "b")
	url := e.srv.URL + "/v2/bench/app/manifests/latest"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetBytes(int64(len(m)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Accept", mediaOCIManifest)
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body) //nolint:errcheck
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkBlob1MiB measures GET of a stored 1 MiB blob (ServeContent over the fs
// driver, sendfile).
func BenchmarkBlob1MiB(b *testing.B) {
	e := newEnv(b)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	d := e.pushBlob("bench/blob", blob)
	url := e.srv.URL + "/v2/bench/blob/blobs/" + d
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.SetBytes(int64(len(blob)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || n != int64(len(blob)) {
				b.Errorf("status %d, %d bytes", resp.StatusCode, n)
				return
			}
		}
	})
}

// BenchmarkBlobPush measures a monolithic 16 MiB blob push (hash inline, artifact, unit).
func BenchmarkBlobPush(b *testing.B) {
	e := newEnv(b)
	blob := make([]byte, 16<<20)
	b.SetBytes(int64(len(blob)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rand.Read(blob[:64])
		d := digestOf(blob)
		b.StartTimer()
		resp, err := e.client.Post(e.srv.URL+"/v2/bench/push/blobs/uploads/?digest="+d, "application/octet-stream", bytes.NewReader(blob))
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

// BenchmarkManifestByTagHandler measures the handler alone (no network, no client): the
// registry's own cost of a cached manifest GET by tag.
func BenchmarkManifestByTagHandler(b *testing.B) {
	e := newEnv(b)
	e.pushImage("bench/app", "latest", "b")
	e.do("GET", "/v2/bench/app/manifests/latest", nil) // cache it
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", "/v2/bench/app/manifests/latest", nil)
		req.Header.Set("Accept", mediaOCIManifest)
		for pb.Next() {
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}
