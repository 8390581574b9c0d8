package plugin_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/plugin/plugintest"
)

// The test plugins are built once per test binary by TestMain:
//
//	goplugin     plugins/testdata/goplugin    the SDK test plugin (misbehaviours, workloads)
//	badabi       plugins/testdata/badabi      marker pulpo_abi_version_2_0
//	noexport     plugins/testdata/noexport    no describe export
//	cplugin      plugins/testdata/cplugin     the C plugin (if clang is installed)
//	cbaddescribe the C plugin with -DBAD_DESCRIBE: its describe breaks the spec
var (
	wasmDir   string // built .wasm files, by name
	cacheDir  string // wazero compilation cache shared by the tests
	cBuildErr error  // why the C plugin could not be built
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	tmp, err := os.MkdirTemp("", "pulpo-plugin-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	wasmDir = filepath.Join(tmp, "wasm")
	cacheDir = testCacheDir(tmp)
	if err := os.MkdirAll(wasmDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i, name := range []string{"goplugin", "badabi", "noexport"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = plugintest.BuildGo(ctx, "./plugins/testdata/"+name, filepath.Join(wasmDir, name+".wasm"))
		}()
	}
	root, err := plugintest.ModuleRoot(ctx)
	if err == nil {
		src := filepath.Join(root, "plugins/testdata/cplugin/cplugin.c")
		cBuildErr = plugintest.BuildC(ctx, src, filepath.Join(wasmDir, "cplugin.wasm"))
		if cBuildErr == nil {
			cBuildErr = plugintest.BuildC(ctx, src, filepath.Join(wasmDir, "cbaddescribe.wasm"), "-DBAD_DESCRIBE")
		}
	}
	wg.Wait()
	if err := errors.Join(append(errs, err)...); err != nil {
		fmt.Fprintln(os.Stderr, "building test plugins:", err)
		return 1
	}
	built := time.Since(start)
	// Compile each plugin once, serially, so that parallel tests find the compilation cache
	// warm instead of compiling the same module side by side (wazero does not deduplicate).
	for _, name := range []string{"goplugin", "cplugin"} {
		dir := filepath.Join(tmp, "warm-"+name)
		if os.MkdirAll(dir, 0o755) != nil || os.Link(filepath.Join(wasmDir, name+".wasm"), filepath.Join(dir, name+".wasm")) != nil {
			continue
		}
		if reg, err := plugin.Load(ctx, plugin.Options{Dirs: []string{dir}, CacheDir: cacheDir, ScratchDir: tmp}); err == nil {
			_ = reg.Close(ctx)
		}
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "test plugins built in %s, compiled in %s (C plugin: %v)\n",
			built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond), cBuildErr)
	}
	return m.Run()
}

// testCacheDir returns a compilation cache directory that survives test runs, keyed by the
// wazero version (test binaries report wazero's version as "dev", so the key must come from
// go list), or a fresh one under tmp when that is not possible.
func testCacheDir(tmp string) string {
	base, err := os.UserCacheDir()
	out, lerr := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/tetratelabs/wazero").Output()
	if err != nil || lerr != nil || os.Getenv("PULPO_TEST_FRESH_CACHE") != "" {
		return filepath.Join(tmp, "cache")
	}
	return filepath.Join(base, "pulpo-test", "wazero-"+strings.TrimSpace(string(out)))
}

// testLogger logs to the test's output.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// pluginDir returns a directory holding links to the named test plugins.
func pluginDir(t testing.TB, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		src := filepath.Join(wasmDir, n+".wasm")
		if err := os.Link(src, filepath.Join(dir, n+".wasm")); err != nil {
			b, rerr := os.ReadFile(src)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if err := os.WriteFile(filepath.Join(dir, n+".wasm"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// load loads the named test plugins with opts (Dirs, CacheDir and Logger filled in) and
// closes the registry when the test ends.
func load(t testing.TB, opts plugin.Options, names ...string) *plugin.Registry {
	t.Helper()
	reg, err := tryLoad(t, opts, names...)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func tryLoad(t testing.TB, opts plugin.Options, names ...string) (*plugin.Registry, error) {
	t.Helper()
	opts.Dirs = append(opts.Dirs, pluginDir(t, names...))
	if opts.CacheDir == "" {
		opts.CacheDir = cacheDir
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.ScratchDir == "" {
		opts.ScratchDir = t.TempDir()
	}
	reg, err := plugin.Load(context.Background(), opts)
	if err == nil {
		t.Cleanup(func() {
			if err := reg.Close(context.Background()); err != nil {
				t.Errorf("close: %v", err)
			}
		})
	}
	return reg, err
}

// testPlugin loads goplugin and returns it.
func testPlugin(t testing.TB, opts plugin.Options) *plugin.Plugin {
	t.Helper()
	reg := load(t, opts, "goplugin")
	p, ok := reg.Plugin("testplug")
	if !ok {
		t.Fatal("testplug not loaded")
	}
	return p
}
