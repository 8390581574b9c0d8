package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pulpo/pulpo/host/db/dbtest"
	"github.com/pulpo/pulpo/integration/harness"
)

// artifactPath is where the fs storage keeps an artifact under a data dir.
func artifactPath(dataDir, sha string) string {
	return filepath.Join(dataDir, "media", "artifact", sha[:2], sha[2:])
}

func opsSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func fileSHA(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return opsSHA(b)
}

// progress returns the done count of a task's progress report by code.
func progress(t *testing.T, task map[string]any, code string) float64 {
	t.Helper()
	reports, _ := task["progress_reports"].([]any)
	for _, r := range reports {
		m := r.(map[string]any)
		if m["code"] == code {
			return m["done"].(float64)
		}
	}
	t.Fatalf("task has no progress report %s: %v", code, reports)
	return 0
}

func TestRepair(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	files := smallFiles("rep", 5)
	manifest := fixture(t, root, "rep", files, nil)
	hs := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})

	rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": "rep", "url": hs.URL + manifest, "policy": "immediate"}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "rep", "remote": rm["pulp_href"]}, http.StatusCreated)
	rh := repo["pulp_href"].(string)
	srv.RunTask(t, http.MethodPost, rh+"sync/", map[string]any{})

	// An artifact with no remote: uploaded.
	uploaded := []byte("uploaded by hand, no remote knows it\n")
	srv.JSON(t, http.MethodPost, "artifacts/", harness.Form{Files: map[string]harness.File{"file": {Data: uploaded}}}, http.StatusCreated)

	path := func(rel string) string { return artifactPath(srv.DataDir(), opsSHA(files[rel])) }
	corruptSame := path("rep/0000.txt") // same size, other bytes: only a checksum finds it
	corruptSize := path("rep/0001.txt")
	deleted := path("rep/0002.txt")
	upPath := artifactPath(srv.DataDir(), opsSHA(uploaded))
	flip := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	flip(corruptSame)
	if err := os.WriteFile(corruptSize, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(deleted); err != nil {
		t.Fatal(err)
	}
	badUpload := flip(upPath)

	t.Run("bad input", func(t *testing.T) {
		resp, body := srv.POST("repair/", map[string]any{"verify_checksums": "yes"})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "verify_checksums") {
			t.Fatalf("string verify_checksums: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.POST("repair/", map[string]any{"verify": true})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"verify"`) {
			t.Fatalf("unknown field: %d %s", resp.StatusCode, body)
		}
		resp, body = srv.POST(rh+"versions/9/repair/", map[string]any{})
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("missing version: %d %s", resp.StatusCode, body)
		}
	})

	t.Run("version repair without checksums finds the missing and the short file", func(t *testing.T) {
		task := srv.RunTask(t, http.MethodPost, rh+"versions/1/repair/", map[string]any{"verify_checksums": false})
		if progress(t, task, "repair.missing") != 1 || progress(t, task, "repair.corrupted") != 1 || progress(t, task, "repair.repaired") != 2 {
			t.Fatalf("reports: %v", task["progress_reports"])
		}
		for _, rel := range []string{"rep/0001.txt", "rep/0002.txt"} {
			if got := fileSHA(t, path(rel)); got != opsSHA(files[rel]) {
				t.Fatalf("%s not restored: sha256 %s", rel, got)
			}
		}
		if fileSHA(t, corruptSame) == opsSHA(files["rep/0000.txt"]) {
			t.Fatal("a same-size corruption cannot be found without checksums, yet it was repaired")
		}
	})

	t.Run("repair of all artifacts", func(t *testing.T) {
		if err := os.Remove(path("rep/0003.txt")); err != nil {
			t.Fatal(err)
		}
		task := srv.RunTask(t, http.MethodPost, "repair/", map[string]any{})
		if progress(t, task, "repair.missing") != 1 || progress(t, task, "repair.corrupted") != 2 ||
			progress(t, task, "repair.repaired") != 2 || progress(t, task, "repair.unrepairable") != 1 {
			t.Fatalf("reports: %v", task["progress_reports"])
		}
		for rel, body := range files {
			if got := fileSHA(t, path(rel)); got != opsSHA(body) {
				t.Fatalf("%s: sha256 %s after repair", rel, got)
			}
		}
		// No remote knows the upload: reported, and its file left as it was.
		if b, err := os.ReadFile(upPath); err != nil || !bytes.Equal(b, badUpload) {
			t.Fatalf("unrepairable artifact touched: %v", err)
		}
		// A second pass finds only the unrepairable one.
		again := srv.RunTask(t, http.MethodPost, "repair/", map[string]any{"verify_checksums": true})
		if progress(t, again, "repair.corrupted") != 1 || progress(t, again, "repair.missing") != 0 {
			t.Fatalf("second repair: %v", again["progress_reports"])
		}
	})

	t.Run("openapi", func(t *testing.T) {
		_, body := srv.GET("docs/api.json", nil)
		for _, id := range []string{`"repair_post"`, `"repositories_file_file_versions_repair"`, `"livez_read"`} {
			if !bytes.Contains(body, []byte(`"operationId":`+id)) && !bytes.Contains(body, []byte(`"operationId": `+id)) {
				t.Errorf("api.json has no operation %s", id)
			}
		}
	})
}

// scrape reads a Prometheus text exposition into series -> value, the
// series written as in the text: name{label="value",...}.
func scrape(t *testing.T, u string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("scrape %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %s", u, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the series of a metric whose labels include every given pair.
func sum(m map[string]float64, name string, labels ...string) float64 {
	var total float64
	for k, v := range m {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(k, labels[i]+`="`+labels[i+1]+`"`) {
				ok = false
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	manifest := fixture(t, root, "met", smallFiles("met", 4), nil)
	hs := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{})
	metricsURL := "http://" + srv.Addr() + "/metrics"

	before := scrape(t, metricsURL)
	if before["go_goroutines"] == 0 || before["process_resident_memory_bytes"] == 0 {
		t.Error("no Go runtime or process metrics")
	}
	if sum(before, "pulpo_db_pool_connections", "state", "max") == 0 {
		t.Error("no database pool metrics")
	}
	if _, ok := before["pulpo_artifacts"]; !ok || before["pulpo_artifacts_scrape_ok"] != 1 {
		t.Error("no artifact totals")
	}
	if before["pulpo_tasks_queue_scrape_ok"] != 1 {
		t.Error("no task queue gauges")
	}

	rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": "met", "url": hs.URL + manifest, "policy": "immediate"}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "met", "remote": rm["pulp_href"]}, http.StatusCreated)
	srv.RunTask(t, http.MethodPost, repo["pulp_href"].(string)+"sync/", map[string]any{})
	srv.GET("repositories/file/file/00000000-0000-0000-0000-000000000000/", nil) // a 404 on a route pattern
	if resp, _ := srv.Do("BREW", "status/", nil, nil); resp.StatusCode < 400 {
		t.Fatalf("BREW status/: %s", resp.Status)
	}
	resp, err := http.Get("http://" + srv.Addr() + "/pulp/content/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	// Artifact totals come from the database, read at most every 10 s; a
	// task is counted just after its end is recorded, which the client may
	// see first.
	for deadline := time.Now().Add(25 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		m := scrape(t, metricsURL)
		if sum(m, "pulpo_tasks_finished_total", "state", "completed") > sum(before, "pulpo_tasks_finished_total", "state", "completed") &&
			m["pulpo_artifacts"] >= 4 && m["pulpo_artifacts_bytes"] >= 4*float64(len("met file 0\n")) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after 25 s: no completed task counted, or artifact totals below the 4 synced files (%v artifacts, %v bytes)", m["pulpo_artifacts"], m["pulpo_artifacts_bytes"])
			break
		}
	}
	after := scrape(t, metricsURL)
	delta := func(name string, labels ...string) float64 {
		return sum(after, name, labels...) - sum(before, name, labels...)
	}
	checks := []struct {
		what string
		got  float64
		min  float64
	}{
		{"sync request", delta("pulpo_http_requests_total", "route", "/pulp/api/v3/repositories/file/file/{pulp_id}/sync/", "method", "POST", "code", "202"), 1},
		{"404 by route pattern", delta("pulpo_http_requests_total", "route", "/pulp/api/v3/repositories/file/file/{pulp_id}/", "code", "404"), 1},
		{"invented method", delta("pulpo_http_requests_total", "method", "OTHER"), 1},
		{"content request", delta("pulpo_http_requests_total", "route", "content", "method", "GET"), 1},
		{"latency histogram", delta("pulpo_http_request_duration_seconds_count", "route", "/pulp/api/v3/remotes/file/file/", "method", "POST"), 1},
		{"sync task", delta("pulpo_tasks_finished_total", "state", "completed"), 1},
		{"task duration", delta("pulpo_tasks_duration_seconds_count", "state", "completed"), 1},
		{"task wait", delta("pulpo_tasks_wait_seconds_count"), 1},
		{"download bytes", delta("pulpo_download_bytes_total"), 4 * float64(len("met file 0\n"))},
		{"plugin calls", delta("pulpo_plugin_calls_total", "plugin", "file"), 1},
		{"plugin call durations", delta("pulpo_plugin_call_duration_seconds_count", "plugin", "file"), 1},
		{"pool acquires", delta("pulpo_db_pool_acquires_total"), 1},
	}
	for _, c := range checks {
		if c.got < c.min {
			t.Errorf("%s: moved by %v, want at least %v", c.what, c.got, c.min)
		}
	}
	for k := range after {
		if strings.HasPrefix(k, "pulpo_http_requests_total") && strings.Contains(k, "00000000-0000") {
			t.Errorf("raw path in a label: %s", k)
		}
	}
	if t.Failed() {
		for k, v := range after {
			if strings.HasPrefix(k, "pulpo_") {
				t.Logf("%s %v", k, v)
			}
		}
	}
}

// TestWorkerMetrics scrapes a `pulpo worker` through metrics_listen after it
// ran a task.
func TestWorkerMetrics(t *testing.T) {
	t.Parallel()
	srv := harness.Start(t, harness.Options{Workers: harness.NoWorkers})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	srv.StartWorker(t, "--workers", "1", "--metrics-listen", addr)
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker metrics server not ready: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.RunTask(t, http.MethodPost, "orphans/cleanup/", map[string]any{})
	// The worker counts a task just after recording its end, which the
	// client may see first.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m := scrape(t, base+"/metrics")
		n := sum(m, "pulpo_tasks_finished_total", "name", "core.orphan_cleanup", "state", "completed")
		if n == 1 {
			break
		}
		if n > 1 || time.Now().After(deadline) {
			t.Fatalf("the worker counted %v orphan cleanups, want 1", n)
		}
	}
	if resp, _ := http.Get(base + "/pulp/api/v3/status/"); resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("metrics_listen serves more than the ops routes")
	}
}

// pgProxy forwards TCP connections to a PostgreSQL server, and can drop them
// all and refuse new ones, as a database going away would.
type pgProxy struct {
	t        *testing.T
	addr     string
	upstream func() (net.Conn, error)

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newPGProxy(t *testing.T, serverURL string) (*pgProxy, string) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &pgProxy{t: t, conns: map[net.Conn]bool{}}
	host, port := cfg.Host, strconv.Itoa(int(cfg.Port))
	p.upstream = func() (net.Conn, error) {
		if strings.HasPrefix(host, "/") {
			return net.Dial("unix", filepath.Join(host, ".s.PGSQL."+port))
		}
		return net.Dial("tcp", net.JoinHostPort(host, port))
	}
	p.up("127.0.0.1:0")
	u := url.URL{Scheme: "postgres", Host: p.addr, Path: "/" + cfg.Database, RawQuery: "sslmode=disable"}
	if cfg.Password != "" {
		u.User = url.UserPassword(cfg.User, cfg.Password)
	} else {
		u.User = url.User(cfg.User)
	}
	t.Cleanup(p.down)
	return p, u.String()
}

func (p *pgProxy) up(addr string) {
	p.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatalf("proxy listen %s: %v", addr, err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *pgProxy) serve(c net.Conn) {
	u, err := p.upstream()
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil {
		p.mu.Unlock()
		c.Close()
		u.Close()
		return
	}
	p.conns[c], p.conns[u] = true, true
	p.mu.Unlock()
	go func() { io.Copy(u, c); u.Close() }() //nolint:errcheck
	io.Copy(c, u)                            //nolint:errcheck
	c.Close()
}

func (p *pgProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func TestReadiness(t *testing.T) {
	t.Parallel()
	proxy, dbURL := newPGProxy(t, dbtest.NewDB(t))
	srv := harness.Start(t, harness.Options{DatabaseURL: dbURL, Workers: harness.NoWorkers})
	get := func(path string) (int, map[string]any) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.Addr()+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		var body map[string]any
		b, _ := io.ReadAll(resp.Body)
		if len(b) > 0 {
			if err := json.Unmarshal(b, &body); err != nil {
				t.Fatalf("GET %s: not JSON: %s", path, b)
			}
		}
		return resp.StatusCode, body
	}
	waitStatus := func(path string, want int) map[string]any {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := get(path)
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET %s: %d %v, want %d", path, code, body, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	body := waitStatus("/readyz", http.StatusOK)
	for _, c := range []string{"database", "migrations", "storage", "plugins"} {
		if ok, _ := body["checks"].(map[string]any)[c].(map[string]any)["ok"].(bool); !ok {
			t.Errorf("check %s: %v", c, body)
		}
	}
	waitStatus("/livez", http.StatusOK)
	waitStatus("/pulp/api/v3/livez/", http.StatusOK)

	addr := proxy.addr
	proxy.down()
	body = waitStatus("/readyz", http.StatusServiceUnavailable)
	failed, _ := body["failed"].([]any)
	if len(failed) == 0 || failed[0] != "database" {
		t.Fatalf("failed checks: %v", body)
	}
	if ok, _ := body["checks"].(map[string]any)["storage"].(map[string]any)["ok"].(bool); !ok {
		t.Errorf("storage reported down with the database: %v", body)
	}
	if strings.Contains(strings.ToLower(mustMarshal(body)), "password") || strings.Contains(mustMarshal(body), "127.0.0.1") {
		t.Errorf("readiness body leaks connection details: %v", body)
	}
	// Liveness does not depend on the database.
	waitStatus("/livez", http.StatusOK)
	waitStatus("/pulp/api/v3/livez/", http.StatusOK)

	proxy.up(addr)
	waitStatus("/readyz", http.StatusOK)
	if code, _ := get("/pulp/api/v3/status/"); code != http.StatusOK {
		t.Fatalf("status/ after the database returned: %d", code)
	}
}

func mustMarshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
