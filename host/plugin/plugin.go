package plugin

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/abi/wasmcheck"
)

// Plugin is one loaded plugin: its compiled module, its describe and its instance pool.
// Its methods are safe for concurrent use.
type Plugin struct {
	reg      *Registry
	path     string
	sha256   string
	exports  wasmcheck.Result
	desc     abi.Describe
	rt       wazero.Runtime
	compiled wazero.CompiledModule
	pool     *pool
	limits   Limits
	// compileMu guards rt and compiled, set once by compile (at load, or at the first
	// call of a plugin loaded from a cached describe).
	compileMu sync.Mutex
	log       *slog.Logger

	instances atomic.Uint64 // numbers instance module names
}

// Name returns the plugin's name from describe.
func (p *Plugin) Name() string { return p.desc.Name }

// Version returns the plugin's version from describe.
func (p *Plugin) Version() string { return p.desc.Version }

// SHA256 returns the hex SHA-256 of the plugin file as loaded.
func (p *Plugin) SHA256() string { return p.sha256 }

// Path returns the plugin file.
func (p *Plugin) Path() string { return p.path }

// ABIVersion returns the ABI version of the plugin's marker export.
func (p *Plugin) ABIVersion() abi.Version { return p.exports.Version }

// Describe returns the plugin's describe. Its slices are shared: treat it as read-only.
func (p *Plugin) Describe() abi.Describe { return p.desc }

// Stats are counters of a plugin's instance pool.
type Stats struct {
	Created   uint64 // instances created
	Discarded uint64 // instances thrown away after a failure or MaxCalls
	Idle      int    // instances waiting in the pool
	Compiled  bool   // the plugin's code is compiled and in memory
}

// Stats returns the pool counters.
func (p *Plugin) Stats() Stats {
	p.compileMu.Lock()
	compiled := p.compiled != nil
	p.compileMu.Unlock()
	return Stats{Created: p.pool.created.Load(), Discarded: p.pool.discarded.Load(), Idle: len(p.pool.idle), Compiled: compiled}
}

func (p *Plugin) close(ctx context.Context) error {
	if p.pool != nil {
		p.pool.close(ctx)
	}
	p.compileMu.Lock()
	defer p.compileMu.Unlock()
	if p.rt != nil {
		return p.rt.Close(ctx) // closes the compiled module and every instance
	}
	return nil
}

// SyncResult is the outcome of a sync's first stage.
type SyncResult struct {
	abi.SyncResponse
	// Dir is the call's scratch directory, holding the fetched files. Metadata paths in
	// the response point into it (host paths). The caller owns Dir: Close removes it.
	Dir string
}

// Close removes the scratch directory.
func (r *SyncResult) Close() error { return os.RemoveAll(r.Dir) }

// SyncFirstStage runs sync_first_stage. The plugin fetches through host (files land in a
// fresh scratch directory, mounted read-only at /in) and emits content batches to host;
// the rest of the pipeline is the caller's. On success the caller owns the result's Dir.
func (p *Plugin) SyncFirstStage(ctx context.Context, req abi.SyncRequest, host SyncHost) (*SyncResult, error) {
	dir, err := os.MkdirTemp(p.reg.opts.ScratchDir, "pulpo-sync-")
	if err != nil {
		return nil, fmt.Errorf("sync scratch dir: %w", err)
	}
	req.InDir = abi.InDir
	cs := &callState{inDir: dir, sync: host, lookup: host, stat: host, progress: host, read: p.reg.opts.Artifacts}
	var resp abi.SyncResponse
	if err := p.callJSON(ctx, abi.ExportSyncFirstStage, req, &resp, cs); err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	for i, m := range resp.Metadata {
		hp, err := hostPath(m.Path, dir, "")
		if err != nil || !abi.CleanRelativePath(m.RelativePath) {
			_ = os.RemoveAll(dir)
			return nil, p.callError(abi.ExportSyncFirstStage, fmt.Errorf("metadata[%d] %q at %q: %w", i, m.RelativePath, m.Path,
				abi.NewError(abi.CodeInvalidInput, "want a clean relative path and a file under "+abi.InDir)))
		}
		resp.Metadata[i].Path = hp
	}
	return &SyncResult{SyncResponse: resp, Dir: dir}, nil
}

// PublishResult is the outcome of a publish call.
type PublishResult struct {
	abi.PublishResponse
	// Dir holds the metadata files the plugin wrote; Metadata and ArtifactsPath are host
	// paths into it. The caller owns Dir: Close removes it.
	Dir string
}

// Close removes the metadata directory.
func (r *PublishResult) Close() error { return os.RemoveAll(r.Dir) }

// Publish runs publish for one repository version whose units content yields. The host
// writes the listing to the read-only mount, the plugin writes metadata to /out, a fresh
// directory the caller owns on success.
func (p *Plugin) Publish(ctx context.Context, req abi.PublishRequest, content iter.Seq2[abi.Content, error], host PublishHost) (*PublishResult, error) {
	in, err := os.MkdirTemp(p.reg.opts.ScratchDir, "pulpo-publish-in-")
	if err != nil {
		return nil, fmt.Errorf("publish scratch dir: %w", err)
	}
	defer os.RemoveAll(in)
	out, err := os.MkdirTemp(p.reg.opts.ScratchDir, "pulpo-publish-out-")
	if err != nil {
		return nil, fmt.Errorf("publish scratch dir: %w", err)
	}
	fail := func(err error) (*PublishResult, error) {
		_ = os.RemoveAll(out)
		return nil, err
	}
	if err := writeListing(filepath.Join(in, "content.jsonl"), content); err != nil {
		return fail(fmt.Errorf("publish content listing: %w", err))
	}
	req.ContentPath, req.InDir, req.OutDir = abi.InDir+"/content.jsonl", abi.InDir, abi.OutDir
	cs := &callState{inDir: in, outDir: out, lookup: host, stat: host, progress: host, read: p.reg.opts.Artifacts}
	var resp abi.PublishResponse
	if err := p.callJSON(ctx, abi.ExportPublish, req, &resp, cs); err != nil {
		return fail(err)
	}
	for i, m := range resp.Metadata {
		hp, err := hostPath(m.Path, "", out)
		if err != nil || !abi.CleanRelativePath(m.RelativePath) {
			return fail(p.callError(abi.ExportPublish, fmt.Errorf("metadata[%d] %q at %q: %w", i, m.RelativePath, m.Path,
				abi.NewError(abi.CodeInvalidInput, "want a clean relative path and a file under "+abi.OutDir))))
		}
		resp.Metadata[i].Path = hp
	}
	if resp.ArtifactsPath != "" {
		hp, err := hostPath(resp.ArtifactsPath, "", out)
		if err != nil {
			return fail(p.callError(abi.ExportPublish, fmt.Errorf("artifacts_path %q: %w", resp.ArtifactsPath, err)))
		}
		resp.ArtifactsPath = hp
	}
	return &PublishResult{PublishResponse: resp, Dir: out}, nil
}

func writeListing(path string, content iter.Seq2[abi.Content, error]) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	enc := json.NewEncoder(w)
	for c, err := range content {
		if err != nil {
			_ = f.Close()
			return err
		}
		if err := enc.Encode(c); err != nil {
			_ = f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// hostPath maps a guest path under /in (to inDir) or /out (to outDir) to a host path; an
// empty host dir refuses that mount.
func hostPath(guest, inDir, outDir string) (string, error) {
	for _, m := range []struct{ guest, host string }{{abi.InDir, inDir}, {abi.OutDir, outDir}} {
		rel, ok := strings.CutPrefix(guest, m.guest+"/")
		if !ok || m.host == "" {
			continue
		}
		if !abi.CleanRelativePath(rel) {
			return "", fmt.Errorf("%q is not a clean path", guest)
		}
		return filepath.Join(m.host, filepath.FromSlash(rel)), nil
	}
	return "", fmt.Errorf("%q is not under a mount of this call", guest)
}

// HandleRoute runs handle_route for one live API request.
func (p *Plugin) HandleRoute(ctx context.Context, req abi.RouteRequest, host RouteHost) (abi.RouteResponse, error) {
	cs := &callState{lookup: host, stat: host, read: p.reg.opts.Artifacts}
	var resp abi.RouteResponse
	err := p.callJSON(ctx, abi.ExportHandleRoute, req, &resp, cs)
	return resp, err
}

// Call runs any export with raw input and no host services (host functions other than log
// answer "unavailable"). It serves the conformance kit and tests; the typed methods above
// are the API.
func (p *Plugin) Call(ctx context.Context, export string, input []byte) ([]byte, error) {
	return p.call(ctx, export, input, &callState{})
}

func (p *Plugin) callJSON(ctx context.Context, export string, req, resp any, cs *callState) error {
	in, err := json.Marshal(req)
	if err != nil {
		return p.callError(export, fmt.Errorf("encode input: %w", err))
	}
	out, err := p.call(ctx, export, in, cs)
	if err != nil {
		return err
	}
	if len(out) == 0 {
		out = []byte("{}") // an empty output is an empty object (spec 5.1)
	}
	if err := json.Unmarshal(out, resp); err != nil {
		return p.callError(export, fmt.Errorf("decode output: %w", abi.NewError(abi.CodeInvalidInput, err.Error())))
	}
	return nil
}

// observedName names the plugin to a CallObserver: describe's name, or the file's base
// name without .wasm while describe has not answered yet.
func (p *Plugin) observedName() string {
	if p.desc.Name != "" {
		return p.desc.Name
	}
	return strings.TrimSuffix(filepath.Base(p.path), ".wasm")
}

func (p *Plugin) callError(export string, err error) error {
	name := p.desc.Name
	if name == "" {
		name = filepath.Base(p.path)
	}
	var ce *CallError
	if errors.As(err, &ce) {
		return err
	}
	return &CallError{Plugin: name, Version: p.desc.Version, Export: export, Err: err}
}
