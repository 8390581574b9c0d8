package bench

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// clients is the concurrency of the throughput runs.
const clients = 32

// filesPerSize published files of each size; requests cycle through them.
const filesPerSize = 64

var sizes = []struct {
	name string
	size int
}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}}

const hugeSize = 1 << 30

// withHuge: PULPO_BENCH_HUGE=0 leaves out the 1 GiB file, for quicker runs.
var withHuge = os.Getenv("PULPO_BENCH_HUGE") != "0"

// peer is one server of the same files: base + relative path is a URL.
type peer struct {
	name string
	base string
}

// BenchmarkContentThroughput GETs published files of each size at c=32
// from pulpo, Go's http.FileServer and nginx, then one 1 GiB file from
// pulpo and nginx, and prints the ratios.
func BenchmarkContentThroughput(b *testing.B) {
	root := b.TempDir()
	os.Chmod(root, 0o755) // nginx workers may run as another user
	writeTree(b, root)
	up := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer up.Close()

	srv := harness.Start(b, harness.Options{Env: []string{"PULPO_LOG_LEVEL=warn"}})
	publishTree(b, srv, up.URL+"/PULP_MANIFEST", "immediate", "bench")
	peers := []peer{{"pulpo", "http://" + srv.Addr() + "/pulp/content/bench/"}, {"fileserver", startFileServer(b, root)}}
	if base, ok := startNginx(b, root); ok {
		peers = append(peers, peer{"nginx", base})
	}
	// Warm every peer and let the kernel write back the tree and pulpo's
	// copy of it, so the first peer measured is not the one paying for it.
	for _, p := range peers {
		waitFor(b, p.base+"files/1KiB/000.bin", 1<<10)
		for _, sz := range sizes {
			for i := range filesPerSize {
				waitFor(b, fmt.Sprintf("%sfiles/%s/%03d.bin", p.base, sz.name, i), int64(sz.size))
			}
		}
	}
	syscall.Sync()

	results := map[string]float64{} // name -> MB/s
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * clients, DisableCompression: true}}
	for _, sz := range sizes {
		for _, p := range peers {
			name := sz.name + "/" + p.name
			b.Run(name, func(b *testing.B) {
				urls := make([]string, filesPerSize)
				for i := range urls {
					urls[i] = fmt.Sprintf("%sfiles/%s/%03d.bin", p.base, sz.name, i)
				}
				var next atomic.Int64
				b.SetBytes(int64(sz.size))
				b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						get(b, client, urls[next.Add(1)%filesPerSize], int64(sz.size))
					}
				})
				results[name] = float64(sz.size) * float64(b.N) / b.Elapsed().Seconds() / 1e6
			})
		}
	}
	for _, p := range peers {
		if p.name == "fileserver" || !withHuge {
			continue
		}
		name := "1GiB/" + p.name
		b.Run(name, func(b *testing.B) {
			b.SetBytes(hugeSize)
			for range b.N {
				get(b, client, p.base+"huge/1GiB.bin", hugeSize)
			}
			results[name] = float64(hugeSize) * float64(b.N) / b.Elapsed().Seconds() / 1e6
		})
	}
	report(results)
}

// report prints each result and pulpo's ratio to each peer.
func report(results map[string]float64) {
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Println("content throughput (MB/s; ratio = pulpo / peer):")
	for _, n := range names {
		size, who, _ := strings.Cut(n, "/")
		line := fmt.Sprintf("  %-18s %9.1f MB/s", n, results[n])
		if who != "pulpo" {
			if mine, ok := results[size+"/pulpo"]; ok {
				line += fmt.Sprintf("   pulpo/%s = %.2fx", who, mine/results[n])
			}
		}
		fmt.Println(line)
	}
}

// BenchmarkOnDemandConcurrent sends 100 concurrent GETs for one artifact
// that is not downloaded yet (a fresh one per iteration) and checks that
// the upstream served it once.
func BenchmarkOnDemandConcurrent(b *testing.B) {
	const (
		files    = 16
		size     = 32 << 20
		requests = 100
	)
	gen := newGenerated(files, size)
	up := httptest.NewServer(gen)
	defer up.Close()
	srv := harness.Start(b, harness.Options{Env: []string{"PULPO_LOG_LEVEL=warn"}})
	publishTree(b, srv, up.URL+"/PULP_MANIFEST", "on_demand", "lazy")
	base := "http://" + srv.Addr() + "/pulp/content/lazy/"
	waitFor(b, base+"PULP_MANIFEST", -1)
	if b.N > files {
		b.Fatalf("only %d fresh artifacts: run with -benchtime=%dx or less", files, files)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: requests, DisableCompression: true}}
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		path := fmt.Sprintf("gen/%02d.bin", i)
		var wg sync.WaitGroup
		for range requests {
			wg.Go(func() { get(b, client, base+path, size) })
		}
		wg.Wait()
		if n := gen.hits("/" + path); n != 1 {
			b.Fatalf("%s fetched %d times upstream for %d requests", path, n, requests)
		}
	}
	b.ReportMetric(1, "upstream_fetches/op")
}

// get fetches url and checks its status and length.
func get(b *testing.B, c *http.Client, url string, size int64) {
	resp, err := c.Get(url)
	if err != nil {
		b.Error(err)
		return
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || size >= 0 && n != size {
		b.Errorf("GET %s: %d, %d bytes, %v", url, resp.StatusCode, n, err)
	}
}

// waitFor polls until url serves size bytes (size < 0: anything).
func waitFor(b *testing.B, url string, size int64) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			n, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && (size < 0 || n == size) {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not served: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeTree writes the published files and their PULP_MANIFEST.
func writeTree(b *testing.B, root string) {
	var manifest strings.Builder
	add := func(rel string, body func(w io.Writer) error) {
		full := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			b.Fatal(err)
		}
		f, err := os.Create(full)
		if err != nil {
			b.Fatal(err)
		}
		h := sha256.New()
		cw := &counter{}
		if err := body(io.MultiWriter(f, h, cw)); err != nil {
			b.Fatal(err)
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		fmt.Fprintf(&manifest, "%s,%s,%d\n", rel, hex.EncodeToString(h.Sum(nil)), cw.n)
	}
	for _, sz := range sizes {
		for i := range filesPerSize {
			block := pattern(sz.size, byte(i)^byte(sz.size>>10))
			add(fmt.Sprintf("files/%s/%03d.bin", sz.name, i), func(w io.Writer) error { _, err := w.Write(block); return err })
		}
	}
	block := pattern(1<<20, 0xa5)
	if !withHuge {
		block = nil
	}
	add("huge/1GiB.bin", func(w io.Writer) error {
		if block == nil {
			return nil
		}
		for i := range hugeSize >> 20 {
			block[0] = byte(i)
			if _, err := w.Write(block); err != nil {
				return err
			}
		}
		return nil
	})
	if err := os.WriteFile(filepath.Join(root, "PULP_MANIFEST"), []byte(manifest.String()), 0o644); err != nil {
		b.Fatal(err)
	}
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func pattern(n int, seed byte) []byte {
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(i*31) ^ seed
	}
	return out
}

// publishTree syncs manifest with policy, publishes it and distributes the
// repository at base.
func publishTree(b *testing.B, srv *harness.Server, manifest, policy, base string) {
	rm := srv.JSON(b, http.MethodPost, "remotes/file/file/", map[string]any{"name": base, "url": manifest, "policy": policy}, http.StatusCreated)
	repo := srv.JSON(b, http.MethodPost, "repositories/file/file/", map[string]any{"name": base, "remote": rm["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)
	start := time.Now()
	srv.RunTask(b, http.MethodPost, rh+"sync/", map[string]any{})
	b.Logf("%s sync took %v", policy, time.Since(start))
	srv.RunTask(b, http.MethodPost, "publications/file/file/", map[string]any{"repository": rh})
	srv.RunTask(b, http.MethodPost, "distributions/file/file/", map[string]any{"name": base, "base_path": base, "repository": rh})
}

// startFileServer runs http.FileServer of root in a child process.
func startFileServer(b *testing.B, root string) string {
	addr := freeAddr(b)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envFileServerRoot+"="+root, envFileServerAddr+"="+addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return "http://" + addr + "/"
}

// startNginx runs nginx (2 workers, sendfile, no access log) on root, when
// it is installed.
func startNginx(b *testing.B, root string) (string, bool) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		b.Log("nginx not installed (apt-get install -y nginx): no nginx comparison")
		return "", false
	}
	dir := b.TempDir()
	addr := freeAddr(b)
	conf := fmt.Sprintf(`daemon off;
worker_processes %d;
user root root;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	default_type application/octet-stream;
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	server {
		listen %[3]s;
		root %[4]s;
	}
}
`, runtime.NumCPU(), dir, addr, root)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return "http://" + addr + "/", true
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// generated is an upstream of files made on the fly, counting requests.
type generated struct {
	manifest []byte
	blocks   [][]byte // one 1 MiB block per file, repeated
	size     int
	mu       sync.Mutex
	count    map[string]int
}

func newGenerated(files, size int) *generated {
	g := &generated{size: size, count: map[string]int{}}
	var m strings.Builder
	for i := range files {
		block := pattern(1<<20, byte(i+1))
		g.blocks = append(g.blocks, block)
		h := sha256.New()
		for range size >> 20 {
			h.Write(block)
		}
		fmt.Fprintf(&m, "gen/%02d.bin,%s,%d\n", i, hex.EncodeToString(h.Sum(nil)), size)
	}
	g.manifest = []byte(m.String())
	return g
}

func (g *generated) hits(path string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.count[path]
}

func (g *generated) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.count[r.URL.Path]++
	g.mu.Unlock()
	if r.URL.Path == "/PULP_MANIFEST" {
		w.Write(g.manifest)
		return
	}
	var i int
	if _, err := fmt.Sscanf(r.URL.Path, "/gen/%02d.bin", &i); err != nil || i >= len(g.blocks) {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(g.size))
	for range g.size >> 20 {
		if _, err := w.Write(g.blocks[i]); err != nil {
			return
		}
	}
}
