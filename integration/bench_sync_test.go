package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/digest"
	"github.com/pulpo/pulpo/integration/harness"
)

// Benchmarks here run only with -bench: `go test ./integration/ -run '^$'
// -bench 'FileSync' -benchtime 1x`. Each case starts its own server and
// syncs once per iteration from a local HTTP upstream.

// cpuTime reads the CPU time a process has used, user and system; unlike
// wall time it hardly depends on what else the machine runs.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return -1
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * 10 * time.Millisecond
}

// resetPeakRSS restarts a process's high-water resident set from its current
// one (Linux's clear_refs 5), so that peakRSS then measures what follows.
func resetPeakRSS(b *testing.B, pid int) {
	b.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		b.Logf("reset peak RSS: %v", err)
	}
}

// peakRSS reads a process's high-water resident set, in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return -1
}

// writeTree writes n small files and their PULP_MANIFEST, streaming.
func writeTree(b *testing.B, dir string, n int) {
	b.Helper()
	m, err := os.Create(filepath.Join(dir, "PULP_MANIFEST"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for i := range n {
		rel := fmt.Sprintf("d%03d/f%06d.txt", i%1000, i)
		body := []byte(fmt.Sprintf("file number %d\n", i))
		full := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, body, 0o644); err != nil {
			b.Fatal(err)
		}
		sum := sha256.Sum256(body)
		fmt.Fprintf(m, "%s,%s,%d\n", rel, hex.EncodeToString(sum[:]), len(body))
	}
}

// syncStats is what one sync measured.
type syncStats struct {
	elapsed time.Duration // from the request to the task's end, seen by polling every 20 ms
	peak    float64       // the server's peak RSS over its life, MiB (startup compiles the plugins)
	syncRSS float64       // the server's peak RSS from just before the sync to its end, MiB
	coldRSS float64       // peak RSS of a server's first start, which compiles the plugins, MiB
	cpu     time.Duration // CPU time the server used during the sync
}

// warmCache is a data directory's cache/ holding the plugins' compiled code
// and describes, filled once by a first server: a server's first start
// compiles the plugins in a child process (a one-off per plugin version; the
// server's own peak is reported as cold-start-RSS-MiB, the child's is not
// seen here), every later start loads them from this cache.
var warmCache struct {
	once    sync.Once
	dir     string
	coldRSS float64
}

// warmDataDir returns a fresh data directory holding a copy of warmCache.
func warmDataDir(b *testing.B) string {
	b.Helper()
	warmCache.once.Do(func() {
		dir, err := os.MkdirTemp("", "pulpo-bench-warm-")
		if err != nil {
			b.Fatal(err)
		}
		srv := harness.Start(b, harness.Options{DataDir: dir})
		warmCache.coldRSS = peakRSS(srv.Process().PID())
		srv.Stop()
		warmCache.dir = filepath.Join(dir, "cache")
	})
	if warmCache.dir == "" {
		b.Fatal("no warm compilation cache")
	}
	data := b.TempDir()
	if err := os.CopyFS(filepath.Join(data, "cache"), os.DirFS(warmCache.dir)); err != nil {
		b.Fatal(err)
	}
	return data
}

// syncOnce starts a server (plugins compiled already, as on any start after
// the first) and syncs the manifest at url with policy.
func syncOnce(b *testing.B, url, policy string, args ...string) syncStats {
	b.Helper()
	srv := harness.Start(b, harness.Options{DataDir: warmDataDir(b), Args: args})
	defer srv.Stop()
	rm := srv.JSON(b, http.MethodPost, "remotes/file/file/", map[string]any{"name": "up", "url": url, "policy": policy}, http.StatusCreated)
	repo := srv.JSON(b, http.MethodPost, "repositories/file/file/", map[string]any{"name": "r", "remote": rm["pulp_href"]}, http.StatusCreated)
	pid := srv.Process().PID()
	peak := peakRSS(pid)
	resetPeakRSS(b, pid)
	cpu0 := cpuTime(pid)
	start := time.Now()
	href := srv.JSON(b, http.MethodPost, repo["pulp_href"].(string)+"sync/", map[string]any{}, http.StatusAccepted)["task"].(string)
	for {
		task := srv.JSON(b, http.MethodGet, href, nil, http.StatusOK)
		if s := task["state"]; s == "completed" {
			break
		} else if s != "waiting" && s != "running" {
			b.Fatalf("sync: %v", task)
		}
		if time.Since(start) > 30*time.Minute {
			b.Fatal("sync still running after 30 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := syncStats{elapsed: time.Since(start), syncRSS: peakRSS(pid), cpu: cpuTime(pid) - cpu0}
	st.peak = max(peak, st.syncRSS)
	st.coldRSS = warmCache.coldRSS
	return st
}

// BenchmarkFileSync syncs N small files into a fresh server per case and
// reports units/s and the peak RSS (VmHWM) of `pulpo serve`, which runs the
// workers (the database is another process): over the process's life and
// over the sync alone.
func BenchmarkFileSync(b *testing.B) {
	for _, tc := range []struct {
		n      int
		policy string
	}{{10_000, "immediate"}, {10_000, "on_demand"}, {100_000, "immediate"}, {100_000, "on_demand"}} {
		b.Run(fmt.Sprintf("%d-%s", tc.n, tc.policy), func(b *testing.B) {
			root := b.TempDir()
			writeTree(b, root, tc.n)
			hs := httptest.NewServer(http.FileServer(http.Dir(root)))
			defer hs.Close()
			for b.Loop() {
				st := syncOnce(b, hs.URL+"/PULP_MANIFEST", tc.policy)
				b.ReportMetric(float64(tc.n)/st.elapsed.Seconds(), "units/s")
				b.ReportMetric(st.peak, "peak-RSS-MiB")
				b.ReportMetric(st.syncRSS, "sync-RSS-MiB")
				b.ReportMetric(float64(st.cpu.Microseconds())/float64(tc.n), "server-CPU-us/unit")
				b.ReportMetric(st.coldRSS, "cold-start-RSS-MiB")
			}
		})
	}
}

// BenchmarkFileSyncLarge syncs three 1 GiB files immediately and compares
// the sync's throughput with hashing in this process: with sha256 alone on
// one core (the ceiling of any sync that checks a sha256) and with the
// digests pulpo computes by default (sha224, sha256, sha384 and sha512, in
// parallel on each buffer, as the download path does). The files are sparse
// but distinct; the store's disk writes are real.
func BenchmarkFileSyncLarge(b *testing.B) {
	const files, size = 3, 1 << 30
	root := b.TempDir()
	manifest := &strings.Builder{}
	for i := range files {
		name := fmt.Sprintf("big-%d.bin", i)
		f, err := os.Create(filepath.Join(root, name))
		if err != nil {
			b.Fatal(err)
		}
		// Distinct bytes at both ends, a hole between: instant to write.
		_, err1 := f.WriteString(name)
		_, err2 := f.WriteAt([]byte(name), size-int64(len(name)))
		if err := f.Close(); err1 != nil || err2 != nil || err != nil {
			b.Fatal(err1, err2, err)
		}
		fmt.Fprintf(manifest, "%s,%s,%d\n", name, hashFile(b, filepath.Join(root, name)), size)
	}
	if err := os.WriteFile(filepath.Join(root, "PULP_MANIFEST"), []byte(manifest.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	sha256MBs := hashRate(b, "sha256")
	hs := httptest.NewServer(http.FileServer(http.Dir(root)))
	defer hs.Close()
	// Pulp's default checksums, then sha256 alone (allowed_content_checksums
	// is the operator's choice): the second is like for like with the ceiling.
	for _, sums := range [][]string{digest.DefaultAllowed, {"sha256"}} {
		b.Run(strings.Join(sums, "+"), func(b *testing.B) {
			digestsMBs := hashRate(b, sums...)
			for b.Loop() {
				st := syncOnce(b, hs.URL+"/PULP_MANIFEST", "immediate", "--allowed-content-checksums", strings.Join(sums, ","))
				mbs := float64(files*size) / 1e6 / st.elapsed.Seconds()
				b.ReportMetric(mbs, "MB/s")
				b.ReportMetric(sha256MBs, "sha256-MB/s")
				b.ReportMetric(digestsMBs, "digests-MB/s")
				b.ReportMetric(mbs/sha256MBs, "x-sha256")
				b.ReportMetric(mbs/digestsMBs, "x-digests")
				b.ReportMetric(st.peak, "peak-RSS-MiB")
				b.ReportMetric(st.syncRSS, "sync-RSS-MiB")
				b.ReportMetric(st.cpu.Seconds()*1e9/float64(files*size), "server-CPU-ns/B")
			}
		})
	}
}

// hashFile returns the hex sha256 of the file at path.
func hashFile(b *testing.B, path string) string {
	b.Helper()
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 256<<10)); err != nil {
		b.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// hashRate hashes the files' content (zeros, as their holes) from memory
// through the named digests (one goroutine per digest) and returns MB/s: the best of five
// rounds of 256 MiB, as other processes may share the machine.
func hashRate(b *testing.B, names ...string) float64 {
	b.Helper()
	buf := make([]byte, 256<<10)
	best := 0.0
	for range 5 {
		h, err := digest.New(names...)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		for range 1024 {
			h.Write(buf)
		}
		best = max(best, 256<<20/1e6/time.Since(start).Seconds())
	}
	return best
}
