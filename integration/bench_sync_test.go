package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

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

// BenchmarkFileSync syncs N small files from a local upstream into a fresh
// server per case and reports units/s and the server's peak RSS.
func BenchmarkFileSync(b *testing.B) {
	for _, tc := range []struct {
		n      int
		policy string
	}{{10_000, "immediate"}, {10_000, "on_demand"}, {100_000, "on_demand"}, {100_000, "immediate"}} {
		b.Run(fmt.Sprintf("%d-%s", tc.n, tc.policy), func(b *testing.B) {
			root := b.TempDir()
			writeTree(b, root, tc.n)
			hs := httptest.NewServer(http.FileServer(http.Dir(root)))
			defer hs.Close()
			for b.Loop() {
				srv := harness.Start(b, harness.Options{})
				rm := srv.JSON(b, http.MethodPost, "remotes/file/file/", map[string]any{"name": "up", "url": hs.URL + "/PULP_MANIFEST", "policy": tc.policy}, http.StatusCreated)
				repo := srv.JSON(b, http.MethodPost, "repositories/file/file/", map[string]any{"name": "r", "remote": rm["pulp_href"]}, http.StatusCreated)
				start := time.Now()
				href := srv.JSON(b, http.MethodPost, repo["pulp_href"].(string)+"sync/", map[string]any{}, http.StatusAccepted)["task"].(string)
				for srv.JSON(b, http.MethodGet, href, nil, http.StatusOK)["state"] == "running" || time.Since(start) < time.Second {
					if time.Since(start) > 20*time.Minute {
						b.Fatal("sync still running after 20 minutes")
					}
					time.Sleep(100 * time.Millisecond)
				}
				elapsed := time.Since(start)
				if task := srv.JSON(b, http.MethodGet, href, nil, http.StatusOK); task["state"] != "completed" {
					b.Fatalf("sync: %v", task)
				}
				b.ReportMetric(float64(tc.n)/elapsed.Seconds(), "units/s")
				b.ReportMetric(peakRSS(srv.Process().PID()), "peak-RSS-MiB")
				srv.Stop()
			}
		})
	}
}
