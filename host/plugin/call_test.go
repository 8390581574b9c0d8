package plugin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/plugin/plugintest"
)

func route(t testing.TB, p *plugin.Plugin, path string) (abi.RouteResponse, error) {
	t.Helper()
	return p.HandleRoute(context.Background(), abi.RouteRequest{Method: "GET", Path: path}, plugintest.NewHost())
}

func mustRoute(t testing.TB, p *plugin.Plugin, path string) abi.RouteResponse {
	t.Helper()
	resp, err := route(t, p, path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp
}

func syncReq(mode string, count int) abi.SyncRequest {
	opts, _ := json.Marshal(map[string]any{"mode": mode, "count": count})
	return abi.SyncRequest{
		Remote:     abi.Remote{Name: "r", Type: "testplug.remote", URL: "https://upstream.test/data.txt", Policy: abi.PolicyOnDemand},
		Repository: abi.Repository{Name: "repo", Type: "testplug.repo"},
		Options:    opts,
	}
}

func TestSyncFetchMountEmit(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	host := plugintest.NewHost()
	lines := "alpha\nbeta\ngamma/delta\n"
	host.Serve("https://upstream.test/data.txt", []byte(lines))

	res, err := p.SyncFirstStage(t.Context(), syncReq("lines", 0), host)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()

	// The fetch went through the host interface, and the plugin read the file from the mount.
	if f := host.Fetches(); len(f) != 1 || f[0].URL != "https://upstream.test/data.txt" || f[0].Name != "data/lines.txt" {
		t.Fatalf("fetches: %+v", f)
	}
	var details struct {
		Lines      int    `json:"lines"`
		SHA256     string `json:"sha256"`
		HostSHA256 string `json:"host_sha256"`
		WriteError string `json:"write_error"`
	}
	if err := json.Unmarshal(res.Details, &details); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(lines))
	if details.Lines != 3 || details.SHA256 != hex.EncodeToString(sum[:]) || details.HostSHA256 != details.SHA256 {
		t.Fatalf("details: %+v", details)
	}
	// Writing to the read-only mount failed inside the guest.
	if !strings.Contains(strings.ToLower(details.WriteError), "read-only file system") {
		t.Fatalf("write to /in: %q", details.WriteError)
	}
	// The kept metadata file is a host path inside the caller-owned scratch dir.
	if len(res.Metadata) != 1 || !strings.HasPrefix(res.Metadata[0].Path, res.Dir) {
		t.Fatalf("metadata: %+v (dir %s)", res.Metadata, res.Dir)
	}
	if b, err := os.ReadFile(res.Metadata[0].Path); err != nil || string(b) != lines {
		t.Fatalf("metadata file: %q %v", b, err)
	}

	emitted := host.Emitted()
	if len(emitted) != 4 {
		t.Fatalf("emitted %d units: %+v", len(emitted), emitted)
	}
	if emitted[2].Type != "testplug.item" || string(emitted[2].Fields) != `{"name":"gamma/delta","size":11}` ||
		emitted[2].Artifacts[0].RelativePath != "gamma/delta" || !emitted[2].Artifacts[0].Deferred {
		t.Fatalf("unit 2: %+v %s", emitted[2], emitted[2].Fields)
	}
	if l := emitted[3]; l.Type != "testplug.label" || string(l.Relations[0].To.Key) != `{"name":"alpha"}` {
		t.Fatalf("label: %+v", l)
	}
	if r := host.Reports(); len(r) != 1 || r[0].Done != 3 || r[0].State != abi.StateCompleted {
		t.Fatalf("progress: %+v", r)
	}
	if err := res.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(res.Dir); !os.IsNotExist(err) {
		t.Fatalf("scratch dir survives Close: %v", err)
	}
}

func TestSyncEmitBatches(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	host := plugintest.NewHost()
	res, err := p.SyncFirstStage(t.Context(), syncReq("emit", 1234), host)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if units, batches := host.Counts(); units != 1234 || batches != 3 {
		t.Fatalf("%d units in %d batches, want 1234 in 3", units, batches)
	}
}

func TestSyncErrors(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	tests := []struct {
		name  string
		req   abi.SyncRequest
		setup func(h *plugintest.Host)
		code  string
		want  string
		kept  bool // the call itself succeeded: the instance stays
	}{
		{"undeclared type", syncReq("invalid", 0), nil, abi.CodeInvalidInput, `content type "testplug.nope" is not declared`, false},
		{"emit refused", syncReq("emit", 3), func(h *plugintest.Host) { h.EmitErr = abi.NewError(abi.CodeLimitExceeded, "disk full") },
			abi.CodeLimitExceeded, "disk full", false},
		{"emit fails", syncReq("emit", 3), func(h *plugintest.Host) { h.EmitErr = errors.New("db down") }, abi.CodeInternal, "db down", false},
		{"upstream 404", syncReq("lines", 0), func(h *plugintest.Host) { delete(h.Upstream, "https://upstream.test/data.txt") },
			abi.CodeInternal, "status 404", false},
		{"panic", syncReq("panic", 0), nil, abi.CodeInternal, "panic: test panic", false},
		{"metadata outside the mount", syncReq("badmeta", 0), nil, abi.CodeInvalidInput, "a file under /in", true},
	}
	// Sequential: the cases share the plugin's Discarded counter, so a
	// parallel case discarding an instance would show up in another's check.
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := plugintest.NewHost()
			host.Serve("https://upstream.test/data.txt", []byte("a\n"))
			if tt.setup != nil {
				tt.setup(host)
			}
			before := p.Stats().Discarded
			_, err := p.SyncFirstStage(t.Context(), tt.req, host)
			var ae *abi.Error
			if !errors.As(err, &ae) || ae.Code != tt.code || !strings.Contains(ae.Message, tt.want) {
				t.Fatalf("err = %v, want code %s with %q", err, tt.code, tt.want)
			}
			var ce *plugin.CallError
			if !errors.As(err, &ce) || ce.Plugin != "testplug" || ce.Export != abi.ExportSyncFirstStage {
				t.Fatalf("not a CallError naming the plugin: %v", err)
			}
			if discarded := p.Stats().Discarded > before; discarded == tt.kept {
				t.Fatalf("instance discarded: %v, want %v", discarded, !tt.kept)
			}
		})
	}
}

// TestHostCallValidation checks that malformed host calls get ABI errors, not traps.
func TestHostCallValidation(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	res, err := p.SyncFirstStage(t.Context(), syncReq("badcalls", 0), plugintest.NewHost())
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	// artifact_read is unavailable: these Options have no Artifacts.
	want := `{"artifact_read":"unavailable","artifact_stat":"invalid_input","fetch_name":"invalid_input","fetch_url":"invalid_input",` +
		`"lookup_scope":"invalid_input","lookup_type":"invalid_input","progress":"invalid_input"}`
	if string(res.Details) != want {
		t.Fatalf("details:\n got %s\nwant %s", res.Details, want)
	}
}

// TestArtifactRead: artifact_read (ABI 1.1) serves slices of Options.Artifacts.
func TestArtifactRead(t *testing.T) {
	t.Parallel()
	host := plugintest.NewHost()
	host.Blobs[strings.Repeat("cd", 32)] = []byte("0123456789")
	p := testPlugin(t, plugin.Options{Artifacts: host})
	res, err := p.SyncFirstStage(t.Context(), syncReq("readart", 0), plugintest.NewHost())
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if got, want := string(res.Details), `{"data":"23456","missing":"not_found","size":10,"too_long":"limit_exceeded"}`; got != want {
		t.Fatalf("details:\n got %s\nwant %s", got, want)
	}
}

func TestFetchLimit(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{MaxFetchBytes: 10})
	host := plugintest.NewHost()
	host.Serve("https://upstream.test/data.txt", []byte("more than ten bytes\n"))
	_, err := p.SyncFirstStage(t.Context(), syncReq("lines", 0), host)
	if !errors.Is(err, abi.NewError(abi.CodeLimitExceeded, "")) || !strings.Contains(err.Error(), "body exceeds 10 bytes") {
		t.Fatalf("err = %v", err)
	}
}

func TestLookupAndStat(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	host := plugintest.NewHost()
	host.Content = []abi.Content{
		{Type: "testplug.item", Fields: []byte(`{"name":"a","size":1}`)},
		{Type: "testplug.item", Fields: []byte(`{"name": "b"}`)},
		{Type: "testplug.item", Fields: []byte(`{"name":"c"}`)},
	}
	host.Artifacts[strings.Repeat("ab", 32)] = 42
	res, err := p.SyncFirstStage(t.Context(), syncReq("lookup", 0), host)
	if err != nil {
		t.Fatal(err)
	}
	res.Close()
	if got := string(res.Details); got != `{"exists":true,"found":2,"size":42}` {
		t.Fatalf("details: %s", got)
	}
	if l := host.Lookups(); len(l) != 1 || l[0].Scope != abi.ScopeAll || len(l[0].Keys) != 2 {
		t.Fatalf("lookups: %+v", l)
	}
}

func TestPublish(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	content := []abi.Content{
		{Type: "testplug.item", Fields: []byte(`{"name":"a"}`), Artifacts: []abi.ContentArtifact{{RelativePath: "a", SHA256: "00"}}},
		{Type: "testplug.label", Fields: []byte(`{"label":"first"}`)},
	}
	seq := func(yield func(abi.Content, error) bool) {
		for _, c := range content {
			if !yield(c, nil) {
				return
			}
		}
	}
	res, err := p.Publish(t.Context(), abi.PublishRequest{Publication: abi.Publication{Type: "testplug.pub"}, Version: 2}, seq, plugintest.NewHost())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	if !res.PassThrough || len(res.Metadata) != 1 || res.Metadata[0].RelativePath != "INDEX" {
		t.Fatalf("response: %+v", res.PublishResponse)
	}
	b, err := os.ReadFile(res.Metadata[0].Path)
	if err != nil || string(b) != "testplug.item {\"name\":\"a\"}\ntestplug.label {\"label\":\"first\"}\n" {
		t.Fatalf("INDEX: %q %v", b, err)
	}
	if filepath.Dir(res.Metadata[0].Path) != res.Dir {
		t.Fatalf("metadata %s not in %s", res.Metadata[0].Path, res.Dir)
	}

	failing := iter.Seq2[abi.Content, error](func(yield func(abi.Content, error) bool) { yield(abi.Content{}, errors.New("db gone")) })
	if _, err := p.Publish(t.Context(), abi.PublishRequest{}, failing, plugintest.NewHost()); err == nil || !strings.Contains(err.Error(), "db gone") {
		t.Fatalf("publish with a failing listing: %v", err)
	}
}

func TestRoute(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	body := bytes.Repeat([]byte("0123456789"), 10_000)
	resp, err := p.HandleRoute(t.Context(), abi.RouteRequest{Method: "POST", Path: "/test/echo", Body: body}, plugintest.NewHost())
	if err != nil || resp.Status != 200 || !bytes.Equal(resp.Body, body) {
		t.Fatalf("echo: %d, %d bytes, %v", resp.Status, len(resp.Body), err)
	}
	if _, err := route(t, p, "/test/error"); !errors.Is(err, abi.NewError(abi.CodeNotFound, "")) {
		t.Fatalf("error route: %v", err)
	}
}

func TestMisbehaviourDiscardsInstance(t *testing.T) {
	t.Parallel()
	// Generous timeouts: these must fail for their own reason, however loaded the machine.
	crashing := testPlugin(t, plugin.Options{
		// Per-plugin limits override the registry's (keyed by file name).
		MemoryPages:  8192,
		CallTimeout:  time.Second,
		PluginLimits: map[string]plugin.Limits{"goplugin": {MemoryPages: 512, CallTimeout: time.Minute, PoolSize: 2}},
	})
	looping := testPlugin(t, plugin.Options{CallTimeout: time.Second, PoolSize: 2})
	tests := []struct {
		p    *plugin.Plugin
		path string
		is   error
		want string
	}{
		{crashing, "/test/trap", plugin.ErrTrap, "out of bounds memory access"},
		{crashing, "/test/exit", plugin.ErrTrap, "exited with code 3"},
		{crashing, "/test/bomb", plugin.ErrTrap, "fatal error: out of memory"},
		{looping, "/test/loop", plugin.ErrTimeout, "timed out after 1s"},
	}
	for _, tt := range tests {
		p := tt.p
		before := p.Stats().Discarded
		start := time.Now()
		_, err := route(t, p, tt.path)
		if !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %v with %q", tt.path, err, tt.is, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "plugin testplug 0.0.1: handle_route:") {
			t.Errorf("%s: error does not name plugin and export: %v", tt.path, err)
		}
		if p.Stats().Discarded != before+1 {
			t.Errorf("%s: instance not discarded", tt.path)
		}
		t.Logf("%s failed in %s", tt.path, time.Since(start).Round(time.Millisecond))
		// The host keeps working: the next call gets a fresh instance.
		if resp := mustRoute(t, p, "/test/empty"); resp.Status != 204 {
			t.Errorf("after %s: status %d", tt.path, resp.Status)
		}
	}
}

// slowEmitHost waits in every Emit, like a sync whose downstream queue is full, and then
// works: it burns cpu of CPU time on the calling thread (the call's), which is the host's
// time, not the plugin's.
type slowEmitHost struct {
	*plugintest.Host
	wait, cpu time.Duration
}

func (h slowEmitHost) Emit(ctx context.Context, batch []abi.DeclarativeContent) error {
	select {
	case <-time.After(h.wait):
	case <-ctx.Done():
		return ctx.Err()
	}
	for start := threadCPU(); threadCPU()-start < h.cpu; {
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return h.Host.Emit(ctx, batch)
}

// threadCPU is the calling thread's CPU time (Linux: getrusage RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestCallTimeoutCountsGuestTimeOnly: CallTimeout catches a plugin that runs away, not a
// sync that waits on the host: time inside host functions does not count.
func TestCallTimeoutCountsGuestTimeOnly(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{CallTimeout: time.Second, PoolSize: 2})
	host := slowEmitHost{Host: plugintest.NewHost(), wait: 700 * time.Millisecond, cpu: 600 * time.Millisecond}
	start := time.Now()
	// 3 emits: 2.1 s waiting and 1.8 s computing in the host, on the call's thread.
	res, err := p.SyncFirstStage(t.Context(), syncReq("emit", 1234), host)
	if err != nil {
		t.Fatalf("a call that spent %s in host functions failed: %v", time.Since(start), err)
	}
	res.Close()
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("call took %s, want over twice CallTimeout for the test to mean anything", d)
	}
	if units, batches := host.Counts(); units != 1234 || batches != 3 {
		t.Fatalf("%d units in %d batches", units, batches)
	}
	// The same limit still stops a guest that loops.
	start = time.Now()
	if _, err := route(t, p, "/test/loop"); !errors.Is(err, plugin.ErrTimeout) {
		t.Fatalf("loop: err = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("loop stopped after %s", d)
	}
}

func TestSilentFailure(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	before := p.Stats().Discarded
	_, err := p.Call(t.Context(), "test_silent_fail", nil)
	if !errors.Is(err, plugin.ErrTrap) || !strings.Contains(err.Error(), "returned 1 without an error message") {
		t.Fatalf("err = %v", err)
	}
	if p.Stats().Discarded != before+1 {
		t.Fatal("instance not discarded after a silent failure")
	}
}

func TestCancellation(t *testing.T) {
	t.Parallel()
	t.Run("plugin stops within the grace", func(t *testing.T) {
		t.Parallel()
		p := testPlugin(t, plugin.Options{CancelGrace: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		_, err := p.SyncFirstStage(ctx, syncReq("cancel", 0), plugintest.NewHost())
		// The plugin saw cancelled() and returned its own error: the call was not aborted.
		var ae *abi.Error
		if !errors.Is(err, context.Canceled) || !errors.As(err, &ae) || !strings.Contains(ae.Message, "context canceled") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("plugin that ignores it is aborted", func(t *testing.T) {
		t.Parallel()
		p := testPlugin(t, plugin.Options{CancelGrace: 300 * time.Millisecond})
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := p.HandleRoute(ctx, abi.RouteRequest{Method: "GET", Path: "/test/loop"}, plugintest.NewHost())
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "call aborted") {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("aborted after %s, before the grace ended", d)
		}
		mustRoute(t, p, "/test/empty")
	})
}

func TestMaxCalls(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{MaxCalls: 3, PoolSize: 1})
	for range 7 {
		mustRoute(t, p, "/test/empty")
	}
	// With describe called at load (8 calls) or cached (7), two instances retire.
	if s := p.Stats(); s.Discarded != 2 || s.Created != 3 {
		t.Fatalf("stats: %+v", s)
	}
}

// An instance idle longer than IdleTimeout is closed, giving its memory back; the next
// call makes a new one.
func TestIdleInstancesClosed(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{IdleTimeout: 200 * time.Millisecond})
	mustRoute(t, p, "/test/empty")
	created := p.Stats().Created
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Idle != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("stats after idling: %+v, want the idle instance closed", p.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustRoute(t, p, "/test/empty")
	if s := p.Stats(); s.Created != created+1 || s.Idle != 1 {
		t.Fatalf("stats after the next call: %+v", s)
	}
}

// TestIdleCodeReleased checks that a plugin idle past IdleTimeout gives up its compiled
// code as well as its instances, and compiles again on the next call.
func TestIdleCodeReleased(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{IdleTimeout: 200 * time.Millisecond})
	mustRoute(t, p, "/test/empty")
	if !p.Stats().Compiled {
		t.Fatal("not compiled after a call")
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Compiled {
		if time.Now().After(deadline) {
			t.Fatalf("stats after idling: %+v, want the code released", p.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s := p.Stats(); s.Idle != 0 {
		t.Fatalf("code released with %d idle instances", s.Idle)
	}
	mustRoute(t, p, "/test/empty")
	if !p.Stats().Compiled {
		t.Fatal("not compiled again by the next call")
	}
}

// TestReleaseRacesCalls calls a plugin from several goroutines with pauses around the
// idle timeout, so releases and new instances interleave; every call must succeed.
func TestReleaseRacesCalls(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{IdleTimeout: 60 * time.Millisecond, PoolSize: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := range 12 {
				if _, err := route(t, p, "/test/empty"); err != nil {
					errs <- fmt.Errorf("worker %d call %d: %w", w, i, err)
					return
				}
				time.Sleep(time.Duration(20+(w*i*17)%90) * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestInputLimit(t *testing.T) {
	t.Parallel()
	p := testPlugin(t, plugin.Options{})
	_, err := p.Call(t.Context(), abi.ExportHandleRoute, make([]byte, abi.MaxMessageBytes+1))
	if !errors.Is(err, plugin.ErrLimit) {
		t.Fatalf("err = %v", err)
	}
}

// TestPoolHammer runs many concurrent calls, some of them failing, through a small pool.
func TestPoolHammer(t *testing.T) {
	t.Parallel()
	const workers, calls = 16, 25
	p := testPlugin(t, plugin.Options{PoolSize: 3})
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range calls {
				if w%4 == 0 && i%10 == 5 {
					if _, err := route(t, p, "/test/trap"); !errors.Is(err, plugin.ErrTrap) {
						errs <- fmt.Errorf("trap: %v", err)
						return
					}
					continue
				}
				body := []byte(fmt.Sprintf("worker %d call %d", w, i))
				resp, err := p.HandleRoute(context.Background(), abi.RouteRequest{Method: "POST", Path: "/test/echo", Body: body}, nil)
				if err != nil || !bytes.Equal(resp.Body, body) {
					errs <- fmt.Errorf("echo %q: %q %v", body, resp.Body, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s := p.Stats()
	traps := uint64(workers / 4 * (calls / 10))
	if s.Discarded != traps || s.Created > traps+3 || s.Idle > 3 {
		t.Fatalf("stats %+v, want %d discarded and at most 3 live", s, traps)
	}
}
