package content

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/pulpo/pulpo/host/db"
)

// BenchmarkServeStored GETs stored files through the content app and the
// same files through http.FileServer of the storage directory, at 32
// concurrent clients, all in this process (integration/bench compares the
// binary with a FileServer process and nginx).
func BenchmarkServeStored(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		e := newEnv(b, func(d *Deps) { d.Logger = nil })
		var files []file
		for i := range 64 {
			files = append(files, file{path: fmt.Sprintf("f/%03d.bin", i), body: payload(size, byte(i)), stored: true})
		}
		repo, _, _ := e.repo(files...)
		e.distribution(db.Distribution{PulpType: "file.version", BasePath: "b", RepositoryID: &repo.ID})
		fsrv := httptest.NewServer(http.FileServer(http.Dir(e.root)))
		b.Cleanup(fsrv.Close)
		var app, plain []string
		for _, f := range files {
			app = append(app, e.srv.URL+"/pulp/content/b/"+f.path)
		}
		for _, p := range e.storedFiles() {
			rel, _ := filepath.Rel(e.root, p)
			plain = append(plain, fsrv.URL+"/"+filepath.ToSlash(rel))
		}
		b.Run(fmt.Sprintf("%dKiB/content", size>>10), func(b *testing.B) { serveBench(b, app, size) })
		b.Run(fmt.Sprintf("%dKiB/fileserver", size>>10), func(b *testing.B) { serveBench(b, plain, size) })
	}
}

// serveBench GETs urls in turn from 32 goroutines.
func serveBench(b *testing.B, urls []string, size int) {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var next atomic.Int64
	b.SetBytes(int64(size))
	b.SetParallelism((32 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(urls[next.Add(1)%int64(len(urls))])
			if err != nil {
				b.Error(err)
				return
			}
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || n != int64(size) {
				b.Errorf("%d %d", resp.StatusCode, n)
			}
		}
	})
}
