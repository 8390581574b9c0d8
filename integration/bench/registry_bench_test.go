package bench

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// The registry benchmark measures pulpo's /v2/ against peer registries on
// the same machine, each seeded with the same content by the benchmark:
//
//	PULPO_BENCH_ZOT=127.0.0.1:5000 PULPO_BENCH_DISTRIBUTION=127.0.0.1:5001 \
//	  go test ./integration/bench/ -run '^$' -bench Registry -benchtime 2s
//
// Peers are started by hand, outside the repository (Debian's
// docker-registry package is CNCF Distribution: `docker-registry serve
// config.yml`; zot: `zot serve config.json`), with anonymous push allowed
// and plain HTTP. A peer's RSS is read from /proc when this process can see
// the process listening on its port. When pulpo does not serve /v2/ yet, or
// with PULPO_BENCH_PEERS_ONLY=1, only the peers are measured. Idle RSS is read
// PULPO_BENCH_IDLE_WAIT (default 40s) after seeding.

const (
	blobCount    = 64
	blobSize     = 1 << 20
	hugeBlobSize = 256 << 20
	pushChunk    = 16 << 20
	regClients   = 32
)

// regTarget is one registry under test.
type regTarget struct {
	name string
	host string // host:port
	pid  int    // 0 when unknown
	base string // http://host
	// Basic credentials sent with every request, when set.
	user, pass string
	// Seeded content.
	blobs []string // 1 MiB blob digests in bench/blobs
	huge  string   // 256 MiB blob digest in bench/huge
}

// BenchmarkRegistry runs every measurement against pulpo and the peers given
// by PULPO_BENCH_ZOT and PULPO_BENCH_DISTRIBUTION, then prints the figures
// and pulpo's ratios.
func BenchmarkRegistry(b *testing.B) {
	var targets []*regTarget
	if os.Getenv("PULPO_BENCH_PEERS_ONLY") == "1" {
		b.Log("PULPO_BENCH_PEERS_ONLY=1: measuring the peers only")
	} else {
		srv := harness.Start(b, harness.Options{Env: []string{"PULPO_LOG_LEVEL=warn"}})
		pulpo := &regTarget{name: "pulpo", host: srv.Addr(), pid: srv.Process().PID(), user: harness.AdminUsername, pass: harness.AdminPassword}
		if err := ping(pulpo); err != nil {
			b.Logf("pulpo does not serve /v2/ (%v): measuring the peers only", err)
		} else {
			targets = append(targets, pulpo)
		}
	}
	for _, p := range []struct{ name, env string }{{"zot", "PULPO_BENCH_ZOT"}, {"distribution", "PULPO_BENCH_DISTRIBUTION"}} {
		host := os.Getenv(p.env)
		if host == "" {
			b.Logf("%s not set: no %s comparison", p.env, p.name)
			continue
		}
		tg := &regTarget{name: p.name, host: host, pid: listenerPID(host)}
		if err := ping(tg); err != nil {
			b.Fatalf("%s=%s: %v", p.env, host, err)
		}
		targets = append(targets, tg)
	}
	if len(targets) == 0 {
		b.Skip("no registry to measure")
	}

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * regClients, DisableCompression: true}}
	res := regResults{}
	for _, tg := range targets {
		tg.base = "http://" + tg.host
		seed(b, client, tg)
		res.add("RSS after seeding (MiB)", tg.name, rss(tg.pid, "VmRSS:"))
	}
	// Idle is after a quiet spell longer than pulpo's plugin_idle_timeout
	// (30s by default), when an idle server has given back what it can.
	idle := 40 * time.Second
	if v, err := time.ParseDuration(os.Getenv("PULPO_BENCH_IDLE_WAIT")); err == nil {
		idle = v
	}
	b.Logf("waiting %v for idle RSS", idle)
	time.Sleep(idle)
	for _, tg := range targets {
		res.add("idle RSS (MiB)", tg.name, rss(tg.pid, "VmRSS:"))
		resetPeak(tg.pid)
	}

	for _, tg := range targets {
		b.Run("manifest-by-tag/"+tg.name, func(b *testing.B) {
			manifestURL := tg.base + "/v2/bench/small/manifests/latest"
			lat := make([][]time.Duration, 0, regClients)
			var mu sync.Mutex
			b.SetParallelism((regClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				mine := make([]time.Duration, 0, 1024)
				for pb.Next() {
					start := time.Now()
					regGet(b, client, tg, manifestURL, -1, "Accept", "application/vnd.oci.image.manifest.v1+json")
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				lat = append(lat, mine)
				mu.Unlock()
			})
			rate := float64(b.N) / b.Elapsed().Seconds()
			p99 := percentile(slices.Concat(lat...), 0.99)
			b.ReportMetric(rate, "req/s")
			b.ReportMetric(float64(p99.Microseconds()), "p99-µs")
			res.add("manifest GET by tag (req/s)", tg.name, rate)
			res.add("manifest GET p99 (ms)", tg.name, float64(p99.Microseconds())/1000)
		})
	}
	for _, tg := range targets {
		b.Run("blob-1MiB/"+tg.name, func(b *testing.B) {
			var next atomic.Int64
			b.SetBytes(blobSize)
			b.SetParallelism((regClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					d := tg.blobs[next.Add(1)%blobCount]
					regGet(b, client, tg, tg.base+"/v2/bench/blobs/blobs/"+d, blobSize)
				}
			})
			res.add("1 MiB blob GET c=32 (GB/s)", tg.name, blobSize*float64(b.N)/b.Elapsed().Seconds()/1e9)
		})
	}
	// Large transfers take a second each and this machine's disk and memory
	// drift over minutes: each iteration measures every registry in turn, rounds
	// times, so drift lands on all of them alike.
	const rounds = 4
	b.Run("blob-256MiB", func(b *testing.B) {
		took := make([]time.Duration, len(targets))
		for range b.N * rounds {
			for i, tg := range targets {
				start := time.Now()
				regGet(b, client, tg, tg.base+"/v2/bench/huge/blobs/"+tg.huge, hugeBlobSize)
				took[i] += time.Since(start)
			}
		}
		for i, tg := range targets {
			rate := hugeBlobSize * float64(b.N*rounds) / took[i].Seconds() / 1e6
			b.ReportMetric(rate, tg.name+"-MB/s")
			res.add("256 MiB blob GET (MB/s)", tg.name, rate)
		}
	})
	data := make([]byte, hugeBlobSize)
	fill(data, 7)
	for _, mode := range []string{"monolithic", "chunked"} {
		b.Run("push-256MiB-"+mode, func(b *testing.B) {
			took := make([]time.Duration, len(targets))
			for i := range b.N * rounds {
				for j, tg := range targets {
					// A new blob each time: no registry may skip the bytes.
					binary.LittleEndian.PutUint64(data, uint64(time.Now().UnixNano())+uint64(i))
					d := digestOf(data)
					// Registries that leave pushed bytes to the kernel's
					// writeback would otherwise have it land on the next
					// push's timer, theirs or another's.
					syscall.Sync()
					start := time.Now()
					if mode == "monolithic" {
						pushMonolithic(b, client, tg, "bench/push", data, d)
					} else {
						pushChunked(b, client, tg, "bench/push", data, d, pushChunk)
					}
					took[j] += time.Since(start)
					// Best effort, untimed: 24 pushes of 256 MiB a run
					// would otherwise pile up in every registry.
					req, _ := http.NewRequest(http.MethodDelete, tg.base+"/v2/bench/push/blobs/"+d, nil)
					tg.authorize(req)
					if resp, err := client.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			}
			for j, tg := range targets {
				rate := hugeBlobSize * float64(b.N*rounds) / took[j].Seconds() / 1e6
				b.ReportMetric(rate, tg.name+"-MB/s")
				res.add("256 MiB push "+mode+" (MB/s)", tg.name, rate)
			}
		})
	}
	for _, tg := range targets {
		res.add("loaded RSS, peak (MiB)", tg.name, rss(tg.pid, "VmHWM:"))
	}
	res.print()
}

// authorize adds the target's credentials to req.
func (tg *regTarget) authorize(req *http.Request) {
	if tg.user != "" {
		req.SetBasicAuth(tg.user, tg.pass)
	}
}

// regResults holds metric -> target -> value.
type regResults map[string]map[string]float64

func (r regResults) add(metric, target string, v float64) {
	if v < 0 {
		return // unknown
	}
	if r[metric] == nil {
		r[metric] = map[string]float64{}
	}
	r[metric][target] = v
}

// print shows each figure and pulpo's ratio to each peer (for latency and
// memory, lower is better: the ratio is still pulpo / peer).
func (r regResults) print() {
	metrics := make([]string, 0, len(r))
	for m := range r {
		metrics = append(metrics, m)
	}
	sort.Strings(metrics)
	fmt.Println("registry (ratio = pulpo / peer):")
	for _, m := range metrics {
		line := fmt.Sprintf("  %-32s", m)
		for _, who := range []string{"pulpo", "zot", "distribution"} {
			if v, ok := r[m][who]; ok {
				line += fmt.Sprintf("  %s %.2f", who, v)
			}
		}
		mine, ok := r[m]["pulpo"]
		for _, who := range []string{"zot", "distribution"} {
			if v, peer := r[m][who]; ok && peer && v > 0 {
				line += fmt.Sprintf("  pulpo/%s = %.2fx", who, mine/v)
			}
		}
		fmt.Println(line)
	}
}

// ping checks that a registry answers GET /v2/ with 200.
func ping(tg *regTarget) error {
	c := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodGet, "http://"+tg.host+"/v2/", nil)
	tg.authorize(req)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v2/: %s", resp.Status)
	}
	return nil
}

// seed pushes the same content to a registry: bench/small:latest (a small
// image, for manifest GETs), 64 blobs of 1 MiB in bench/blobs and one of
// 256 MiB in bench/huge.
func seed(b *testing.B, c *http.Client, tg *regTarget) {
	start := time.Now()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}`)
	layer := make([]byte, 1024)
	fill(layer, 3)
	pushMonolithic(b, c, tg, "bench/small", cfg, digestOf(cfg))
	pushMonolithic(b, c, tg, "bench/small", layer, digestOf(layer))
	desc := func(mt string, data []byte) map[string]any {
		return map[string]any{"mediaType": mt, "digest": digestOf(data), "size": len(data)}
	}
	manifest, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": desc("application/vnd.oci.image.config.v1+json", cfg), "layers": []any{desc("application/vnd.oci.image.layer.v1.tar", layer)}})
	req, _ := http.NewRequest(http.MethodPut, tg.base+"/v2/bench/small/manifests/latest", bytes.NewReader(manifest))
	req.Header.Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
	mustStatus(b, c, tg, req, http.StatusCreated)

	tg.blobs = nil
	for i := range blobCount {
		data := make([]byte, blobSize)
		fill(data, byte(i+11))
		d := digestOf(data)
		pushMonolithic(b, c, tg, "bench/blobs", data, d)
		tg.blobs = append(tg.blobs, d)
	}
	huge := make([]byte, hugeBlobSize)
	fill(huge, 5)
	tg.huge = digestOf(huge)
	pushMonolithic(b, c, tg, "bench/huge", huge, tg.huge)
	// Every blob is read once before the measurements, which are of blobs
	// served steadily: a registry that writes pushes past the page cache
	// (pulpo) would otherwise pay its first reads from disk in them.
	for _, d := range tg.blobs {
		regGet(b, c, tg, tg.base+"/v2/bench/blobs/blobs/"+d, blobSize)
	}
	regGet(b, c, tg, tg.base+"/v2/bench/huge/blobs/"+tg.huge, hugeBlobSize)
	b.Logf("%s seeded in %v", tg.name, time.Since(start).Round(time.Millisecond))
}

// pushMonolithic uploads data in a POST and one PUT ?digest=.
func pushMonolithic(b *testing.B, c *http.Client, tg *regTarget, repo string, data []byte, d string) {
	loc := startUpload(b, c, tg, repo)
	req, _ := http.NewRequest(http.MethodPut, withDigest(b, loc, d), bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/octet-stream")
	mustStatus(b, c, tg, req, http.StatusCreated)
}

// pushChunked uploads data in PATCHes of chunk bytes, then an empty PUT.
func pushChunked(b *testing.B, c *http.Client, tg *regTarget, repo string, data []byte, d string, chunk int) {
	loc := startUpload(b, c, tg, repo)
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		req, _ := http.NewRequest(http.MethodPatch, loc, bytes.NewReader(data[off:end]))
		req.Header.Set("Content-Type", "application/octet-stream")
		req.Header.Set("Content-Range", fmt.Sprintf("%d-%d", off, end-1))
		resp := mustStatus(b, c, tg, req, http.StatusAccepted)
		loc = resolve(b, resp)
	}
	req, _ := http.NewRequest(http.MethodPut, withDigest(b, loc, d), nil)
	mustStatus(b, c, tg, req, http.StatusCreated)
}

func startUpload(b *testing.B, c *http.Client, tg *regTarget, repo string) string {
	req, _ := http.NewRequest(http.MethodPost, tg.base+"/v2/"+repo+"/blobs/uploads/", nil)
	return resolve(b, mustStatus(b, c, tg, req, http.StatusAccepted))
}

// mustStatus sends req, drains the answer and fails b unless the status is
// want.
func mustStatus(b *testing.B, c *http.Client, tg *regTarget, req *http.Request, want int) *http.Response {
	tg.authorize(req)
	resp, err := c.Do(req)
	if err != nil {
		b.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s: %s, want %d: %s", req.Method, req.URL, resp.Status, want, body)
	}
	return resp
}

// resolve is a response's Location against its request URL.
func resolve(b *testing.B, resp *http.Response) string {
	u, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		b.Fatalf("%s %s: Location %q", resp.Request.Method, resp.Request.URL, resp.Header.Get("Location"))
	}
	return u.String()
}

func withDigest(b *testing.B, loc, d string) string {
	u, err := url.Parse(loc)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("digest", d)
	u.RawQuery = q.Encode()
	return u.String()
}

// regGet GETs url, checking the status and, for size >= 0, the length.
func regGet(b *testing.B, c *http.Client, tg *regTarget, url string, size int64, header ...string) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	tg.authorize(req)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
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

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fill writes an incompressible-looking pattern.
func fill(buf []byte, seed byte) {
	x := uint64(seed)*0x9e3779b97f4a7c15 + 1
	for i := 0; i+8 <= len(buf); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		binary.LittleEndian.PutUint64(buf[i:], x)
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// rss reads a /proc/<pid>/status field (VmRSS, VmHWM) in MiB, or -1.
func rss(pid int, field string) float64 {
	if pid == 0 {
		return -1
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				return -1
			}
			return kb / 1024
		}
	}
	return -1
}

// resetPeak restarts a process's VmHWM from its current RSS (Linux
// clear_refs 5), so that the loaded figure covers the measurements only.
func resetPeak(pid int) {
	if pid != 0 {
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) //nolint:errcheck // best effort
	}
}

// listenerPID finds the process listening on host's port through
// /proc/net/tcp{,6} and the socket links of /proc/*/fd, or 0.
func listenerPID(host string) int {
	_, port, err := splitPort(host)
	if err != nil {
		return 0
	}
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ... inode (field 9)
			if len(fields) < 10 || fields[3] != "0A" {
				continue
			}
			if i := strings.LastIndex(fields[1], ":"); i >= 0 {
				if p, err := strconv.ParseUint(fields[1][i+1:], 16, 16); err == nil && int(p) == port {
					inodes["socket:["+fields[9]+"]"] = true
				}
			}
		}
		fh.Close()
	}
	if len(inodes) == 0 {
		return 0
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range procs {
		if link, err := os.Readlink(fd); err == nil && inodes[link] {
			pid, _ := strconv.Atoi(strings.Split(fd, "/")[2])
			return pid
		}
	}
	return 0
}

func splitPort(host string) (string, int, error) {
	i := strings.LastIndex(host, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port in %q", host)
	}
	p, err := strconv.Atoi(host[i+1:])
	return host[:i], p, err
}
