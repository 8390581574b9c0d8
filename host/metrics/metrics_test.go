package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestInstrumentCountsByRouteAndStatus(t *testing.T) {
	m := New()
	h := m.Instrument("content", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/empty":
			// nothing written: net/http sends 200
		default:
			io.WriteString(w, "hello")
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, p := range []string{"/a", "/b", "/missing", "/empty"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	req, _ := http.NewRequest("BREW", srv.URL+"/a", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	for _, c := range []struct {
		method, code string
		want         float64
	}{{"GET", "200", 3}, {"GET", "404", 1}, {"OTHER", "200", 1}} {
		if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("content", c.method, c.code)); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.code, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.httpDuration); n != 2 {
		t.Errorf("%d duration series, want 2 (GET, OTHER)", n)
	}
}

// The content app sends files with sendfile through io.ReaderFrom; the
// wrapper must not hide it.
func TestInstrumentKeepsReaderFrom(t *testing.T) {
	m := New()
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, []byte(strings.Repeat("x", 1<<16)), 0o644); err != nil {
		t.Fatal(err)
	}
	var isRF bool
	srv := httptest.NewServer(m.Instrument("content", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, isRF = w.(io.ReaderFrom)
		fh, _ := os.Open(f)
		defer fh.Close()
		io.Copy(w, fh)
	})))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !isRF || len(b) != 1<<16 {
		t.Fatalf("ReaderFrom %v, %d bytes", isRF, len(b))
	}
	if got := testutil.ToFloat64(m.httpRequests.WithLabelValues("content", "GET", "200")); got != 1 {
		t.Fatalf("counted %v", got)
	}
}

func TestTasksPluginsDownloads(t *testing.T) {
	m := New()
	m.TaskFinished("core.repair", "completed", 2*time.Second)
	m.TaskFinished("core.repair", "failed", time.Second)
	m.PluginCall("file", "sync", time.Millisecond, nil)
	m.PluginCall("file", "sync", time.Millisecond, errors.New("trap"))
	m.AddDownloadBytes(10)
	m.AddDownloadBytes(-1)
	m.AddDownloadBytes(5)
	if got := testutil.ToFloat64(m.tasks.WithLabelValues("core.repair", "completed")); got != 1 {
		t.Errorf("tasks completed %v", got)
	}
	if got := testutil.ToFloat64(m.pluginCalls.WithLabelValues("file", "sync")); got != 2 {
		t.Errorf("plugin calls %v", got)
	}
	if got := testutil.ToFloat64(m.pluginErrors.WithLabelValues("file", "sync")); got != 1 {
		t.Errorf("plugin errors %v", got)
	}
	if got := testutil.ToFloat64(m.downloadBytes); got != 15 {
		t.Errorf("download bytes %v", got)
	}
	// A nil *Metrics records nothing and does not panic.
	var none *Metrics
	none.TaskFinished("x", "completed", 0)
	none.PluginCall("x", "y", 0, nil)
	none.AddDownloadBytes(1)
	none.ObserveRequest("r", "GET", 200, 0)
	if h := none.Instrument("x", http.NotFoundHandler()); h == nil {
		t.Fatal("nil Instrument")
	}
}

func TestArtifactTotalsAreCached(t *testing.T) {
	m := New()
	calls := 0
	fail := false
	m.WatchArtifacts(func(context.Context) (int64, int64, error) {
		calls++
		if fail {
			return 0, 0, errors.New("database down")
		}
		return 7, 700, nil
	}, time.Hour)
	out := scrape(m)
	scrape(m)
	if calls != 1 {
		t.Fatalf("%d database reads for two scrapes within maxAge", calls)
	}
	for _, want := range []string{"pulpo_artifacts 7", "pulpo_artifacts_bytes 700", "pulpo_artifacts_scrape_ok 1", "go_goroutines", "process_cpu_seconds_total"} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}

	m2 := New()
	fail = true
	m2.WatchArtifacts(func(ctx context.Context) (int64, int64, error) { return 0, 0, errors.New("down") }, 0)
	rec := httptest.NewRecorder()
	m2.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if body := rec.Body.String(); !strings.Contains(body, "pulpo_artifacts_scrape_ok 0") || strings.Contains(body, "pulpo_artifacts 0") {
		t.Fatalf("a failed read must show scrape_ok 0 and no totals:\n%s", body)
	}
}

func TestTaskQueueAndWait(t *testing.T) {
	m := New()
	calls := 0
	m.WatchTaskQueue(func(context.Context) (map[string]int64, time.Time, error) {
		calls++
		return map[string]int64{"waiting": 3, "running": 2, "canceling": 0}, time.Now().Add(-90 * time.Second), nil
	}, time.Hour)
	m.TaskStarted("file.sync", 1500*time.Millisecond)
	m.TaskStarted("file.sync", -time.Second) // clocks of two hosts: never negative
	out := scrape(m)
	scrape(m)
	if calls != 1 {
		t.Fatalf("%d database reads for two scrapes within maxAge", calls)
	}
	for _, want := range []string{`pulpo_tasks_queue{state="waiting"} 3`, `pulpo_tasks_queue{state="running"} 2`,
		`pulpo_tasks_queue{state="canceling"} 0`, "pulpo_tasks_queue_scrape_ok 1",
		`pulpo_tasks_wait_seconds_count{name="file.sync"} 2`, `pulpo_tasks_wait_seconds_sum{name="file.sync"} 1.5`} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q:\n%s", want, out)
		}
	}
	var age float64
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "pulpo_tasks_oldest_waiting_seconds "); ok {
			age, _ = strconv.ParseFloat(v, 64)
		}
	}
	if age < 89 || age > 200 {
		t.Errorf("oldest waiting %v s, want about 90", age)
	}

	down := New()
	down.WatchTaskQueue(func(context.Context) (map[string]int64, time.Time, error) {
		return nil, time.Time{}, errors.New("down")
	}, 0)
	if body := scrape(down); !strings.Contains(body, "pulpo_tasks_queue_scrape_ok 0") || strings.Contains(body, "pulpo_tasks_queue{") {
		t.Fatalf("a failed read must show scrape_ok 0 and no counts:\n%s", body)
	}
	var none *Metrics
	none.TaskStarted("x", time.Second)
}

// scrape returns what m's handler serves.
func scrape(m *Metrics) string {
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

func TestPoolStats(t *testing.T) {
	m := New()
	m.WatchPool(func() PoolStats {
		return PoolStats{Acquired: 2, Idle: 3, Total: 5, Max: 20, Acquires: 42, AcquireDuration: 1500 * time.Millisecond}
	})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{`pulpo_db_pool_connections{state="acquired"} 2`, `pulpo_db_pool_connections{state="max"} 20`,
		"pulpo_db_pool_acquires_total 42", "pulpo_db_pool_acquire_seconds_total 1.5"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

// BenchmarkInstrument measures what the middleware adds to a request.
func BenchmarkInstrument(b *testing.B) {
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) })
	req := httptest.NewRequest("GET", "/pulp/content/x/y", nil)
	b.Run("plain", func(b *testing.B) {
		w := httptest.NewRecorder()
		for b.Loop() {
			plain.ServeHTTP(w, req)
		}
	})
	b.Run("instrumented", func(b *testing.B) {
		h := New().Instrument("content", plain)
		w := httptest.NewRecorder()
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
}

// BenchmarkPluginCall measures the observer's cost per plugin call.
func BenchmarkPluginCall(b *testing.B) {
	m := New()
	for b.Loop() {
		m.PluginCall("file", "sync", time.Microsecond, nil)
	}
}
