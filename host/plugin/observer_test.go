package plugin_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/plugin"
)

// recorder is a CallObserver keeping what it heard.
type recorder struct {
	mu    sync.Mutex
	calls []string
	errs  int
}

func (r *recorder) PluginCall(name, export string, elapsed time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name+"/"+export)
	if err != nil {
		r.errs++
	}
}

func TestObserverHearsEveryCall(t *testing.T) {
	rec := &recorder{}
	// A cache of its own, so that describe is called at load rather than cached.
	p := testPlugin(t, plugin.Options{Observer: rec, CacheDir: t.TempDir()})
	if _, err := p.HandleRoute(t.Context(), abi.RouteRequest{Method: "GET", Path: "/test/empty"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := p.HandleRoute(t.Context(), abi.RouteRequest{Method: "GET", Path: "/test/error"}, nil); err == nil {
		t.Fatal("/test/error succeeded")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	want := []string{"goplugin/" + abi.ExportDescribe, "testplug/" + abi.ExportHandleRoute, "testplug/" + abi.ExportHandleRoute}
	if len(rec.calls) != len(want) || rec.errs != 1 {
		t.Fatalf("heard %v with %d errors, want %v with 1", rec.calls, rec.errs, want)
	}
	for i := range want {
		if rec.calls[i] != want[i] {
			t.Fatalf("heard %v, want %v", rec.calls, want)
		}
	}
}

// BenchmarkEmptyCallObserved is BenchmarkEmptyCall with an observer, to
// compare: the observer must not cost measurably more than the call.
func BenchmarkEmptyCallObserved(b *testing.B) {
	p := testPlugin(b, plugin.Options{Observer: &recorderNoop{}})
	req := abi.RouteRequest{Method: "GET", Path: "/test/empty"}
	for b.Loop() {
		if _, err := p.HandleRoute(context.Background(), req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

type recorderNoop struct{}

func (recorderNoop) PluginCall(string, string, time.Duration, error) {}
