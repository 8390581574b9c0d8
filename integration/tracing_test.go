package integration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/integration/harness"
)

// otlpCollector is an OTLP/HTTP (JSON) traces endpoint keeping the spans
// it is sent.
type otlpCollector struct {
	mu    sync.Mutex
	spans []map[string]any
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []map[string]any `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	if r.URL.Path != "/v1/traces" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
}

// inTrace returns the spans of trace whose name starts with prefix.
func (c *otlpCollector) inTrace(trace, prefix string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, s := range c.spans {
		if s["traceId"] == trace && strings.HasPrefix(s["name"].(string), prefix) {
			out = append(out, s)
		}
	}
	return out
}

// TestTracing syncs with tracing on: the request's traceparent is
// continued by its server span, the sync task's span (run by a worker, from
// the trace context stored on the task), the plugin call and the downloads,
// and the upstream receives the trace context. Without a traceparent a new
// trace is recorded; with tracing off (every other test) nothing is sent.
func TestTracing(t *testing.T) {
	t.Parallel()
	col := &otlpCollector{}
	cs := httptest.NewServer(col)
	t.Cleanup(cs.Close)
	root := t.TempDir()
	manifest := fixture(t, root, "traced", smallFiles("traced", 3), nil)
	const trace = "5a1f0e2d3c4b5a69788796a5b4c3d2e1"
	var mu sync.Mutex
	var upstreamTP []string
	files := http.FileServer(http.Dir(root))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamTP = append(upstreamTP, r.Header.Get("Traceparent"))
		mu.Unlock()
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	srv := harness.Start(t, harness.Options{Args: []string{"--otel-endpoint", cs.URL + "/v1/traces"}})

	rm := srv.JSON(t, http.MethodPost, "remotes/file/file/", map[string]any{"name": "traced", "url": hs.URL + manifest}, http.StatusCreated)
	repo := srv.JSON(t, http.MethodPost, "repositories/file/file/", map[string]any{"name": "traced", "remote": rm["pulp_href"]}, http.StatusCreated)
	h := http.Header{"Traceparent": {"00-" + trace + "-1122334455667788-01"}}
	resp, body := srv.Do(http.MethodPost, repo["pulp_href"].(string)+"sync/", map[string]any{}, h)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("sync: %s %s", resp.Status, body)
	}
	var accepted map[string]string
	if err := json.Unmarshal(body, &accepted); err != nil {
		t.Fatal(err)
	}
	if task := srv.WaitTask(t, accepted["task"]); task["state"] != "completed" {
		t.Fatalf("sync: %v", task)
	}

	// The exporter sends every 2 s.
	var server, task, plugin, downloads []map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		server = col.inTrace(trace, "POST /pulp/api/v3/repositories/file/file/{pulp_id}/sync/")
		task, plugin, downloads = col.inTrace(trace, "task "), col.inTrace(trace, "plugin file sync_first_stage"), col.inTrace(trace, "download ")
		if len(server) == 1 && len(task) == 1 && len(plugin) == 1 && len(downloads) >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s: %d server, %d task, %d plugin, %d download spans in the trace; all spans:\n%v",
				len(server), len(task), len(plugin), len(downloads), col.spans)
		}
	}
	if server[0]["parentSpanId"] != "1122334455667788" || server[0]["kind"] != 2.0 {
		t.Errorf("server span %v", server[0])
	}
	if task[0]["parentSpanId"] != server[0]["spanId"] {
		t.Errorf("task span's parent %v, want the request's span %v", task[0]["parentSpanId"], server[0]["spanId"])
	}
	if plugin[0]["parentSpanId"] != task[0]["spanId"] {
		t.Errorf("plugin span's parent %v, want the task's span %v", plugin[0]["parentSpanId"], task[0]["spanId"])
	}
	for _, d := range downloads {
		if d["kind"] != 3.0 {
			t.Errorf("download span %v is not a client span", d)
		}
	}
	mu.Lock()
	for i, tp := range upstreamTP {
		if !strings.HasPrefix(tp, "00-"+trace+"-") {
			t.Errorf("upstream request %d carried traceparent %q, want the sync's trace", i, tp)
		}
	}
	mu.Unlock()

	// A request without a traceparent starts a trace of its own.
	col.mu.Lock()
	before := len(col.spans)
	col.mu.Unlock()
	srv.GET("status/", nil)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		col.mu.Lock()
		var found bool
		for _, s := range col.spans[before:] {
			if s["name"] == "GET /pulp/api/v3/status/" && s["traceId"] != trace && s["parentSpanId"] == nil {
				found = true
			}
		}
		col.mu.Unlock()
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no root span for GET status/")
		}
	}
}
