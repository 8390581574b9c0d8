package plugin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/plugin/plugintest"
)

// The plugin runtime benchmarks of perf-and-wasm.md §3.1 B9, on the Go test plugin:
//
//	go test -run '^$' -bench . -benchtime 2s ./host/plugin/
//
// Load = file read + check + compile + first instance + describe.

func BenchmarkLoadCold(b *testing.B) {
	dir := pluginDir(b, "goplugin")
	for b.Loop() {
		reg, err := plugin.Load(context.Background(), plugin.Options{Dirs: []string{dir}, CacheDir: b.TempDir(), ScratchDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		_ = reg.Close(context.Background())
	}
}

func BenchmarkLoadCached(b *testing.B) {
	dir := pluginDir(b, "goplugin")
	cache := b.TempDir()
	opts := plugin.Options{Dirs: []string{dir}, CacheDir: cache, ScratchDir: b.TempDir()}
	if reg, err := plugin.Load(context.Background(), opts); err != nil {
		b.Fatal(err)
	} else {
		_ = reg.Close(context.Background())
	}
	for b.Loop() {
		reg, err := plugin.Load(context.Background(), opts)
		if err != nil {
			b.Fatal(err)
		}
		_ = reg.Close(context.Background())
	}
}

func BenchmarkInstance(b *testing.B) {
	p := testPlugin(b, plugin.Options{})
	for b.Loop() {
		if _, _, err := p.BenchInstance(context.Background(), "", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFirstCall measures a fresh instance's first call, which runs the Go runtime's
// _initialize; instantiation is reported separately.
func BenchmarkFirstCall(b *testing.B) {
	p := testPlugin(b, plugin.Options{})
	in := []byte(`{"method":"GET","path":"/test/empty"}`)
	var inst, call time.Duration
	for b.Loop() {
		i, c, err := p.BenchInstance(context.Background(), abi.ExportHandleRoute, in)
		if err != nil {
			b.Fatal(err)
		}
		inst += i
		call += c
	}
	b.ReportMetric(float64(inst.Microseconds())/float64(b.N), "instance-µs")
	b.ReportMetric(float64(call.Microseconds())/float64(b.N), "first-call-µs")
}

func BenchmarkEmptyCall(b *testing.B) {
	p := testPlugin(b, plugin.Options{})
	req := abi.RouteRequest{Method: "GET", Path: "/test/empty"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.HandleRoute(context.Background(), req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallsParallel(b *testing.B) {
	p := testPlugin(b, plugin.Options{PoolSize: runtime.GOMAXPROCS(0)})
	req := abi.RouteRequest{Method: "GET", Path: "/test/empty"}
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := p.HandleRoute(context.Background(), req, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkEcho1MiB sends 1 MiB in and gets it back (base64 in JSON both ways): the cost of
// bulk data through the Extism input/output buffers.
func BenchmarkEcho1MiB(b *testing.B) {
	p := testPlugin(b, plugin.Options{})
	body := bytes.Repeat([]byte{0xa5}, 1<<20)
	req := abi.RouteRequest{Method: "POST", Path: "/test/echo", Body: body}
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		resp, err := p.HandleRoute(context.Background(), req, nil)
		if err != nil || len(resp.Body) != len(body) {
			b.Fatal(err)
		}
	}
}

// BenchmarkEmit emits 10,000 file-like units per op through content_emit (500 per batch).
func BenchmarkEmit(b *testing.B) {
	p := testPlugin(b, plugin.Options{})
	req := syncReq("emit", 10_000)
	host := plugintest.NewHost()
	host.CountOnly = true
	start := time.Now()
	for b.Loop() {
		res, err := p.SyncFirstStage(context.Background(), req, host)
		if err != nil {
			b.Fatal(err)
		}
		_ = res.Close()
	}
	units, _ := host.Counts()
	b.ReportMetric(float64(units)/time.Since(start).Seconds(), "units/s")
}

// BenchmarkMountRead fetches a 64 MiB file into the scratch dir and has the plugin read it
// from the read-only mount; mount-MB/s is the guest's own read rate.
func BenchmarkMountRead(b *testing.B) {
	const size = 64 << 20
	p := testPlugin(b, plugin.Options{})
	host := plugintest.NewHost()
	host.Serve("https://upstream.test/data.txt", bytes.Repeat([]byte("0123456789abcdef"), size/16))
	req := syncReq("read", 0)
	b.SetBytes(size)
	var readNs int64
	for b.Loop() {
		res, err := p.SyncFirstStage(context.Background(), req, host)
		if err != nil {
			b.Fatal(err)
		}
		var d struct {
			Read   int64 `json:"read"`
			ReadNs int64 `json:"read_ns"`
		}
		if err := json.Unmarshal(res.Details, &d); err != nil || d.Read != size {
			b.Fatalf("details %s: %v", res.Details, err)
		}
		readNs += d.ReadNs
		_ = res.Close()
	}
	b.ReportMetric(float64(size)*float64(b.N)/(float64(readNs)/1e9)/1e6, "mount-MB/s")
}
