package tracing

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestTraceparent(t *testing.T) {
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	sc, ok := ParseTraceparent(good)
	if !ok || !sc.Sampled || sc.Traceparent() != good {
		t.Fatalf("%q: %+v %v -> %q", good, sc, ok, sc.Traceparent())
	}
	if sc, ok := ParseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"); !ok || sc.Sampled {
		t.Fatalf("unsampled: %+v %v", sc, ok)
	}
	// A later version is read by its first four fields.
	if _, ok := ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"); !ok {
		t.Fatal("a later version's traceparent was refused")
	}
	for _, bad := range []string{
		"", "garbage",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", // zero span id
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", // upper case
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", // forbidden version
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if sc, ok := ParseTraceparent(bad); ok {
			t.Errorf("%q parsed to %+v", bad, sc)
		}
	}
}

// collector is an OTLP/HTTP endpoint recording the spans it receives.
type collector struct {
	mu    sync.Mutex
	spans []map[string]any
	res   []any
	fail  bool
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []any `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Spans []map[string]any `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(body, &req) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	for _, rs := range req.ResourceSpans {
		c.res = append(c.res, rs.Resource.Attributes...)
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
}

func (c *collector) byName(name string) map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s["name"] == name {
			return s
		}
	}
	return nil
}

func newTracer(t *testing.T, ratio float64) (*Tracer, *collector) {
	t.Helper()
	c := &collector{}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	tr, err := New(Config{Endpoint: srv.URL + "/v1/traces", SampleRatio: ratio, Service: "test", Attrs: []Attr{String("service.version", "9")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr, c
}

func flush(t *testing.T, tr *Tracer) {
	t.Helper()
	if err := tr.exp.forceFlush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestSpansExported(t *testing.T) {
	tr, c := newTracer(t, 1)
	ctx, root := tr.StartRoot(t.Context(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "POST /sync/", Server, String("url.path", "/sync/"))
	cctx, child := Start(ctx, "download example.org", Client, Int("bytes", 42), Bool("cached", false))
	if got := Traceparent(cctx); !strings.HasPrefix(got, "00-4bf92f3577b34da6a3ce929d0e0e4736-") || strings.Contains(got, "00f067aa0ba902b7") {
		t.Fatalf("child traceparent %q: want the trace, with the child's own span id", got)
	}
	child.End(errors.New("upstream 502"))
	child.End(nil) // a second End changes nothing
	root.End(nil)
	flush(t, tr)

	r, d := c.byName("POST /sync/"), c.byName("download example.org")
	if r == nil || d == nil {
		t.Fatalf("spans received: %v", c.spans)
	}
	if r["traceId"] != "4bf92f3577b34da6a3ce929d0e0e4736" || r["parentSpanId"] != "00f067aa0ba902b7" || r["kind"] != 2.0 {
		t.Errorf("server span %v", r)
	}
	if d["traceId"] != r["traceId"] || d["parentSpanId"] != r["spanId"] || d["kind"] != 3.0 {
		t.Errorf("client span %v, want a child of %v", d, r["spanId"])
	}
	if st, _ := d["status"].(map[string]any); st["code"] != 2.0 || st["message"] != "upstream 502" {
		t.Errorf("failed span status %v", d["status"])
	}
	if st, _ := r["status"].(map[string]any); len(st) != 0 {
		t.Errorf("ok span status %v", r["status"])
	}
	attrs, _ := json.Marshal(d["attributes"])
	if !strings.Contains(string(attrs), `{"key":"bytes","value":{"intValue":"42"}}`) || !strings.Contains(string(attrs), `"boolValue":false`) {
		t.Errorf("attributes %s", attrs)
	}
	start, end := d["startTimeUnixNano"].(string), d["endTimeUnixNano"].(string)
	if len(start) < 18 || end < start {
		t.Errorf("times %s..%s", start, end)
	}
	res, _ := json.Marshal(c.res)
	if !strings.Contains(string(res), `"service.name","value":{"stringValue":"test"}`) || !strings.Contains(string(res), "service.version") {
		t.Errorf("resource %s", res)
	}
}

func TestSampling(t *testing.T) {
	tr, c := newTracer(t, 0)
	ctx, s := tr.StartRoot(t.Context(), "", "dropped", Server)
	if s != nil || Traceparent(ctx) != "" {
		t.Fatal("a new trace was sampled at ratio 0")
	}
	// An unsampled parent: nothing recorded, the decision passes on.
	const off = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	ctx, s = tr.StartRoot(t.Context(), off, "unsampled", Server)
	if _, child := Start(ctx, "child", Internal); s != nil || child != nil || Traceparent(ctx) != off {
		t.Fatalf("unsampled parent: span %v, traceparent %q", s, Traceparent(ctx))
	}
	// A sampled parent is recorded whatever the ratio.
	_, s = tr.StartRoot(t.Context(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "kept", Server)
	s.End(nil)
	flush(t, tr)
	if c.byName("kept") == nil || c.byName("dropped") != nil || c.byName("unsampled") != nil {
		t.Fatalf("spans %v", c.spans)
	}

	half, _ := newTracer(t, 0.5)
	n := 0
	for range 2000 {
		if _, s := half.StartRoot(t.Context(), "", "x", Server); s != nil {
			n++
		}
	}
	if n < 800 || n > 1200 {
		t.Fatalf("ratio 0.5 sampled %d of 2000", n)
	}
}

func TestOffIsNil(t *testing.T) {
	var tr *Tracer
	ctx, s := tr.StartRoot(context.Background(), "", "x", Server)
	s.SetName("y")
	s.SetAttrs(String("a", "b"))
	s.Fail("z")
	s.End(nil)
	if _, c := Start(ctx, "child", Internal); c != nil || SpanFrom(ctx) != nil || Traceparent(ctx) != "" {
		t.Fatal("spans without a tracer")
	}
	h := http.NotFoundHandler()
	if tr.Handler(h) == nil || tr.Shutdown(ctx) != nil || tr.Dropped() != 0 {
		t.Fatal("nil tracer")
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without an endpoint")
	}
	if _, err := New(Config{Endpoint: "http://x", SampleRatio: 2}); err == nil {
		t.Fatal("New with ratio 2")
	}
}

func TestHandler(t *testing.T) {
	tr, c := newTracer(t, 1)
	var seen string
	h := tr.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = Traceparent(r.Context())
		SpanFrom(r.Context()).SetName("GET /things/{id}/")
		if _, ok := w.(io.ReaderFrom); !ok {
			t.Error("the span writer hides io.ReaderFrom (sendfile)")
		}
		http.Error(w, "boom", http.StatusBadGateway)
	}))
	req := httptest.NewRequest("GET", "/things/1/", nil)
	req.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	flush(t, tr)
	s := c.byName("GET /things/{id}/")
	if s == nil || s["traceId"] != "4bf92f3577b34da6a3ce929d0e0e4736" || !strings.Contains(seen, s["spanId"].(string)) {
		t.Fatalf("span %v, handler saw %q", s, seen)
	}
	if st, _ := s["status"].(map[string]any); st["code"] != 2.0 {
		t.Errorf("502 answer: status %v", s["status"])
	}
	if a, _ := json.Marshal(s["attributes"]); !strings.Contains(string(a), `"http.response.status_code","value":{"intValue":"502"}`) {
		t.Errorf("attributes %s", a)
	}
}

func TestExportFailuresDrop(t *testing.T) {
	tr, c := newTracer(t, 1)
	c.fail = true
	_, s := tr.StartRoot(t.Context(), "", "lost", Server)
	s.End(nil)
	flush(t, tr)
	if tr.Dropped() != 1 {
		t.Fatalf("dropped %d, want the span the collector refused", tr.Dropped())
	}
	// A full queue drops instead of blocking the request: here the collector
	// holds the exporter's first post until the spans are ended.
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer slow.Close()
	small, err := New(Config{Endpoint: slow.URL, SampleRatio: 1, QueueSize: 1, Interval: time.Hour, BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Shutdown(context.Background()) //nolint:errcheck
	defer close(release)
	done := make(chan struct{})
	go func() {
		for range 100 {
			_, s := small.StartRoot(context.Background(), "", "x", Server)
			s.End(nil)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ending spans blocked on a full queue")
	}
	if small.Dropped() == 0 {
		t.Fatal("nothing dropped from a queue of one")
	}
}
