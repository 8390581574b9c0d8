package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/abi/wasmcheck"
)

// Registry holds the loaded plugins of a process.
type Registry struct {
	opts     Options
	log      *slog.Logger
	cache    wazero.CompilationCache
	emptyDir string
	plugins  []*Plugin
	byName   map[string]*Plugin

	mu       sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	stopReap chan struct{}
}

// Load compiles every *.wasm file in opts.Dirs, serially, and checks each one: its SHA-256
// (when a sidecar or opts.Expected names one), its ABI marker, required exports and imports
// (before compiling), then its describe (on a first instance, which stays in the pool).
// A file whose describe this host version cached in opts.CacheDir is not compiled until
// its first call.
// The first failure aborts Load with a *LoadError naming the file and the reason; two
// plugins with the same name are an error too.
func Load(ctx context.Context, opts Options) (*Registry, error) {
	opts = opts.withDefaults()
	r := &Registry{opts: opts, log: opts.Logger.With("component", "plugin"), byName: map[string]*Plugin{}}
	var err error
	if opts.CacheDir != "" {
		r.cache, err = wazero.NewCompilationCacheWithDir(opts.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("plugin compilation cache %s: %w", opts.CacheDir, err)
		}
	} else {
		r.cache = wazero.NewCompilationCache()
	}
	if r.emptyDir, err = os.MkdirTemp(opts.ScratchDir, "pulpo-empty-"); err != nil {
		_ = r.cache.Close(ctx)
		return nil, fmt.Errorf("plugin scratch dir: %w", err)
	}
	files, err := wasmFiles(opts.Dirs)
	if err != nil {
		_ = r.Close(ctx)
		return nil, err
	}
	for _, path := range files {
		p, err := r.load(ctx, path)
		if err != nil {
			_ = r.Close(ctx)
			return nil, &LoadError{Path: path, Err: err}
		}
		if prev, dup := r.byName[p.Name()]; dup {
			_ = p.close(ctx)
			_ = r.Close(ctx)
			return nil, &LoadError{Path: path, Err: fmt.Errorf("plugin name %q is already taken by %s", p.Name(), prev.path)}
		}
		r.byName[p.Name()] = p
		r.plugins = append(r.plugins, p)
	}
	if opts.IdleTimeout > 0 {
		r.stopReap = make(chan struct{})
		go r.reapIdle(r.stopReap)
	}
	return r, nil
}

// Uncached returns the plugin files of opts.Dirs that a Load with opts would compile at
// once because opts.CacheDir holds no describe of them for this host version.
func Uncached(opts Options) ([]string, error) {
	opts = opts.withDefaults()
	r := &Registry{opts: opts}
	files, err := wasmFiles(opts.Dirs)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, path := range files {
		wasm, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(wasm)
		if _, ok := r.cachedDescribe(hex.EncodeToString(sum[:])); !ok {
			out = append(out, path)
		}
	}
	return out, nil
}

func wasmFiles(dirs []string) ([]string, error) {
	var out []string
	for _, dir := range dirs {
		entries, err := os.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("plugin dir: %w", err)
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".wasm") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
	}
	return out, nil
}

// Plugins returns the loaded plugins in load order.
func (r *Registry) Plugins() []*Plugin { return append([]*Plugin(nil), r.plugins...) }

// Plugin returns the plugin called name.
func (r *Registry) Plugin(name string) (*Plugin, bool) {
	p, ok := r.byName[name]
	return p, ok
}

// Close stops new calls, waits for calls in flight (until ctx is done), and frees every
// instance, runtime and the compilation cache. It may be called more than once.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	if r.stopReap != nil {
		close(r.stopReap)
	}
	done := make(chan struct{})
	go func() { r.inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	var errs []error
	for _, p := range r.plugins {
		errs = append(errs, p.close(ctx))
	}
	if r.cache != nil {
		errs = append(errs, r.cache.Close(ctx))
	}
	if r.emptyDir != "" {
		errs = append(errs, os.RemoveAll(r.emptyDir))
	}
	return errors.Join(errs...)
}

// enter registers a call in flight; it fails once Close has begun.
func (r *Registry) enter() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.inflight.Add(1)
	return nil
}

func (r *Registry) load(ctx context.Context, path string) (*Plugin, error) {
	start := time.Now()
	wasm, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(wasm)
	digest := hex.EncodeToString(sum[:])
	if err := r.checkHash(path, digest); err != nil {
		return nil, err
	}
	check, err := wasmcheck.ParseAndCheck(wasm, abi.Current())
	if err != nil {
		return nil, err
	}

	p := &Plugin{reg: r, path: path, sha256: digest, exports: check,
		limits: r.opts.limitsFor(strings.TrimSuffix(filepath.Base(path), ".wasm"))}
	p.log = r.log.With("plugin_file", filepath.Base(path))
	p.pool = newPool(p.limits.PoolSize, p.newInstance)

	// A plugin described before (same file, same host) is compiled when first called: a
	// process that never calls it pays neither its compiled code nor its instances.
	if d, ok := r.cachedDescribe(digest); ok {
		if err := p.accept(d, check); err == nil {
			p.log = r.log.With("plugin", p.Name(), "plugin_version", p.Version())
			p.log.InfoContext(ctx, "plugin loaded", "path", path, "sha256", digest, "abi_version", check.Version.String(),
				"compile", "on first call", "load_ms", time.Since(start).Milliseconds())
			return p, nil
		}
	}
	if err := p.compile(ctx, wasm); err != nil {
		_ = p.close(ctx)
		return nil, err
	}
	compiled := time.Since(start)

	if err := p.describeSelf(ctx, check); err != nil {
		_ = p.close(ctx)
		return nil, err
	}
	r.storeDescribe(ctx, digest, p.desc)
	p.log = r.log.With("plugin", p.Name(), "plugin_version", p.Version())
	p.log.InfoContext(ctx, "plugin loaded", "path", path, "sha256", digest, "abi_version", check.Version.String(),
		"compile_ms", compiled.Milliseconds(), "load_ms", time.Since(start).Milliseconds())
	return p, nil
}

// ensureCompiled compiles a plugin whose load used a cached describe, once. The file is
// read again and must still have the hash it had at load.
func (p *Plugin) ensureCompiled(ctx context.Context) (wazero.Runtime, wazero.CompiledModule, error) {
	p.compileMu.Lock()
	defer p.compileMu.Unlock()
	if p.compiled != nil {
		return p.rt, p.compiled, nil
	}
	start := time.Now()
	wasm, err := os.ReadFile(p.path)
	if err != nil {
		return nil, nil, fmt.Errorf("compile: %w", err)
	}
	if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != p.sha256 {
		return nil, nil, fmt.Errorf("compile: %s changed since it was loaded; restart to load the new file", filepath.Base(p.path))
	}
	if err := p.compile(ctx, wasm); err != nil {
		return nil, nil, err
	}
	p.log.InfoContext(ctx, "plugin compiled", "compile_ms", time.Since(start).Milliseconds())
	return p.rt, p.compiled, nil
}

// release closes the plugin's runtime and compiled code when it has no instance, in use,
// idle or being made: the code of a Go plugin is tens of MiB, and the next call compiles it
// again from the on-disk compilation cache in tens of milliseconds. Without that cache a
// compile takes seconds, so the code is kept. A get that takes a pool slot after the check
// waits in ensureCompiled for compileMu and compiles anew.
func (p *Plugin) release(ctx context.Context) bool {
	if p.reg.opts.CacheDir == "" {
		return false
	}
	p.compileMu.Lock()
	defer p.compileMu.Unlock()
	if p.rt == nil || !p.pool.unused() {
		return false
	}
	_ = p.compiled.Close(ctx) // the runtime's Close leaves the code to the shared cache
	_ = p.rt.Close(ctx)
	p.rt, p.compiled = nil, nil
	return true
}

// compile makes the plugin's runtime, instantiates WASI and the two host modules in it,
// and compiles the plugin. On failure the runtime is closed and the plugin stays
// uncompiled.
func (p *Plugin) compile(ctx context.Context, wasm []byte) error {
	// One runtime per plugin: its memory limit and host modules are the plugin's own; the
	// compilation cache is shared. CloseOnContextDone lets a deadline stop a guest loop.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().
		WithCompilationCache(p.reg.cache).
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(p.limits.MemoryPages))
	compiled, err := p.setup(ctx, rt, wasm)
	if err != nil {
		_ = rt.Close(ctx)
		return err
	}
	p.rt, p.compiled = rt, compiled
	return nil
}

func (p *Plugin) setup(ctx context.Context, rt wazero.Runtime, wasm []byte) (wazero.CompiledModule, error) {
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		return nil, fmt.Errorf("wasi: %w", err)
	}
	if err := p.instantiateKernel(ctx, rt); err != nil {
		return nil, fmt.Errorf("extism kernel: %w", err)
	}
	if err := p.instantiateHost(ctx, rt); err != nil {
		return nil, fmt.Errorf("host functions: %w", err)
	}
	compiled, err := rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	return compiled, nil
}

// describeCache is what the describe cache keeps of a plugin file: its describe, valid
// for the host version and ABI that asked.
type describeCache struct {
	HostVersion string       `json:"host_version"`
	HostABI     string       `json:"host_abi"`
	Describe    abi.Describe `json:"describe"`
}

func (r *Registry) describePath(digest string) string {
	return filepath.Join(r.opts.CacheDir, "describe-"+digest+".json")
}

// cachedDescribe returns the describe stored for the plugin file with this hash, if the
// same host version and ABI stored it. Without a CacheDir nothing is cached.
func (r *Registry) cachedDescribe(digest string) (abi.Describe, bool) {
	if r.opts.CacheDir == "" {
		return abi.Describe{}, false
	}
	b, err := os.ReadFile(r.describePath(digest))
	if err != nil {
		return abi.Describe{}, false
	}
	var c describeCache
	if json.Unmarshal(b, &c) != nil || c.HostVersion != r.opts.HostVersion || c.HostABI != abi.Current().String() {
		return abi.Describe{}, false
	}
	return c.Describe, true
}

// storeDescribe keeps a plugin's describe for the next load; failing to is only logged,
// as the next load then calls describe again.
func (r *Registry) storeDescribe(ctx context.Context, digest string, d abi.Describe) {
	if r.opts.CacheDir == "" {
		return
	}
	err := func() error {
		b, err := json.Marshal(describeCache{HostVersion: r.opts.HostVersion, HostABI: abi.Current().String(), Describe: d})
		if err != nil {
			return err
		}
		// Processes sharing the cache may store the same describe at once: each
		// writes its own file and renames it into place.
		f, err := os.CreateTemp(r.opts.CacheDir, "describe-*.tmp")
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), r.describePath(digest))
		}
		if err != nil {
			_ = os.Remove(f.Name())
		}
		return err
	}()
	if err != nil {
		r.log.WarnContext(ctx, "could not cache a plugin's describe", "err", err)
	}
}

// reapIdle closes instances idle longer than IdleTimeout until stop is closed.
func (r *Registry) reapIdle(stop <-chan struct{}) {
	every := max(r.opts.IdleTimeout/2, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			freed := false
			for _, p := range r.plugins {
				if n := p.pool.reap(context.Background(), now.Add(-r.opts.IdleTimeout)); n > 0 {
					p.log.Debug("closed idle plugin instances", "count", n)
					freed = true
				}
				if p.pool.idleSince(now.Add(-r.opts.IdleTimeout)) && p.release(context.Background()) {
					p.log.Debug("released idle plugin code")
					freed = true
				}
			}
			if freed {
				// A guest's linear memory is Go heap: without this it would stay
				// resident until the next GC cycle, which an idle server may not
				// run for minutes.
				debug.FreeOSMemory()
			}
		}
	}
}

func (r *Registry) checkHash(path, digest string) error {
	want := r.opts.Expected[filepath.Base(path)]
	source := "expected hashes"
	if b, err := os.ReadFile(path + ".sha256"); err == nil {
		fields := strings.Fields(string(b))
		if len(fields) == 0 {
			return fmt.Errorf("%s.sha256 is empty", filepath.Base(path))
		}
		if want != "" && !strings.EqualFold(want, fields[0]) {
			return fmt.Errorf("%s.sha256 and the expected hashes disagree", filepath.Base(path))
		}
		want, source = fields[0], filepath.Base(path)+".sha256"
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if want != "" && !strings.EqualFold(want, digest) {
		return fmt.Errorf("sha256 %s does not match %s from %s", digest, strings.ToLower(want), source)
	}
	return nil
}

// describeSelf calls describe on the first instance (paying the guest's _initialize now) and
// checks the answer with accept.
func (p *Plugin) describeSelf(ctx context.Context, check wasmcheck.Result) error {
	in, err := json.Marshal(abi.DescribeRequest{Host: abi.HostInfo{
		Name: "pulpo", Version: p.reg.opts.HostVersion, ABIVersion: abi.Current().String()}})
	if err != nil {
		return err
	}
	out, err := p.call(ctx, abi.ExportDescribe, in, &callState{})
	if err != nil {
		return err
	}
	var d abi.Describe
	if err := json.Unmarshal(out, &d); err != nil {
		return fmt.Errorf("describe: output is not a Describe: %w", err)
	}
	return p.accept(d, check)
}

// accept checks a describe against the plugin's module and keeps it: valid, same ABI
// version as the marker, exports it obliges present.
func (p *Plugin) accept(d abi.Describe, check wasmcheck.Result) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("describe is invalid: %w", err)
	}
	if d.ABIVersion != check.Version.String() {
		return fmt.Errorf("describe says ABI %s, marker export says %s", d.ABIVersion, check.Version)
	}
	for _, e := range d.RequiredExports() {
		if !check.Has(e) {
			return fmt.Errorf("missing export %s, required by what describe declares", e)
		}
	}
	p.desc = d
	return nil
}
