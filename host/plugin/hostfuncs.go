package plugin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/pulpo/pulpo/abi"
)

// instantiateHost defines the pulpo:host/v1 module in rt. Every function is a closure over
// the plugin; the call it serves comes from the context (callState). Request blocks stay
// the guest's; response blocks become the guest's. Host functions never trap on bad input:
// they answer {"error": {...}}, so a misbehaving guest gets an error it can report.
func (p *Plugin) instantiateHost(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.HostNamespace)
	sigs := abi.HostFunctions()
	def := func(name string, fn func(ctx context.Context, stack []uint64)) {
		sig := sigs[name]
		b.NewFunctionBuilder().
			WithGoFunction(api.GoFunc(hostTimed(fn)), valueTypes(sig.Params), valueTypes(sig.Results)).
			Export(name)
		delete(sigs, name)
	}
	def(abi.HostFetch, p.jsonFunc(abi.HostFetch, p.hostFetch))
	def(abi.HostContentEmit, p.jsonFunc(abi.HostContentEmit, p.hostEmit))
	def(abi.HostContentLookup, p.jsonFunc(abi.HostContentLookup, p.hostLookup))
	def(abi.HostArtifactStat, p.jsonFunc(abi.HostArtifactStat, p.hostArtifactStat))
	def(abi.HostArtifactRead, p.jsonFunc(abi.HostArtifactRead, p.hostArtifactRead))
	def(abi.HostProgress, p.jsonFunc(abi.HostProgress, p.hostProgress))
	def(abi.HostLog, func(ctx context.Context, stack []uint64) {
		k := kernelFrom(ctx)
		raw, ok := k.block(stack[0])
		if !ok {
			return
		}
		var rec abi.LogRecord
		if json.Unmarshal(raw, &rec) != nil {
			rec = abi.LogRecord{Level: "warn", Message: "undecodable log record: " + string(truncate(raw, 256))}
		}
		p.logRecord(ctx, rec)
	})
	def(abi.HostLogEnabled, func(ctx context.Context, stack []uint64) {
		level := slogLevel(int32(stack[0]))
		stack[0] = 0
		if p.log.Enabled(ctx, level) {
			stack[0] = 1
		}
	})
	def(abi.HostCancelled, func(ctx context.Context, stack []uint64) {
		stack[0] = 0
		if cs := callFrom(ctx); cs != nil && (cs.cancelled.Load() || (cs.hostCtx != nil && cs.hostCtx.Err() != nil)) {
			stack[0] = 1
		}
	})
	if len(sigs) != 0 {
		return fmt.Errorf("host functions without an implementation: %v", sigs)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// jsonFunc adapts a handler of JSON request bytes to an (i64) -> i64 host function.
func (p *Plugin) jsonFunc(name string, h func(cs *callState, req []byte) (any, error)) func(context.Context, []uint64) {
	return func(ctx context.Context, stack []uint64) {
		k := kernelFrom(ctx)
		resp := p.serveJSON(ctx, k, name, stack[0], h)
		stack[0] = 0
		if resp == nil {
			return
		}
		b, err := json.Marshal(resp)
		if err != nil {
			b, _ = json.Marshal(abi.ErrorResponse{Error: abi.NewError(abi.CodeInternal, "encode response: "+err.Error())})
		}
		if len(b) > abi.MaxMessageBytes {
			b, _ = json.Marshal(abi.ErrorResponse{Error: abi.NewError(abi.CodeLimitExceeded,
				fmt.Sprintf("%s response of %d bytes exceeds %d", name, len(b), abi.MaxMessageBytes))})
		}
		off, ok := k.put(b)
		if !ok {
			panic(fmt.Errorf("%s: the kernel memory cannot hold a %d-byte response", name, len(b))) // trap
		}
		stack[0] = off
	}
}

func (p *Plugin) serveJSON(ctx context.Context, k *kernel, name string, ptr uint64,
	h func(cs *callState, req []byte) (any, error)) (resp any) {
	defer func() {
		if r := recover(); r != nil {
			p.log.ErrorContext(ctx, "host function panicked", "function", name, "panic", r)
			resp = abi.ErrorResponse{Error: abi.NewError(abi.CodeInternal, fmt.Sprintf("%s: host panic: %v", name, r))}
		}
	}()
	cs := callFrom(ctx)
	if cs.cancelled.Load() {
		return abi.ErrorResponse{Error: abi.NewError(abi.CodeCancelled, "the call was cancelled")}
	}
	req, err := readBlock(k, ptr)
	if err == nil {
		resp, err = h(cs, req)
	}
	if err != nil {
		return abi.ErrorResponse{Error: wireError(cs.hostCtx, err)}
	}
	return resp
}

// wireError turns a host-side error into the ABI error the guest sees.
func wireError(ctx context.Context, err error) *abi.Error {
	var ae *abi.Error
	switch {
	case errors.As(err, &ae):
		return &abi.Error{Code: ae.Code, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
		return abi.NewError(abi.CodeCancelled, err.Error())
	}
	return abi.NewError(abi.CodeInternal, err.Error())
}

func readBlock(k *kernel, ptr uint64) ([]byte, error) {
	n := k.length(ptr)
	switch {
	case ptr == 0:
		return nil, abi.NewError(abi.CodeInvalidInput, "null request block")
	case n == 0:
		return nil, abi.NewError(abi.CodeInvalidInput, "request is not a kernel block")
	case n > abi.MaxMessageBytes:
		return nil, abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("request of %d bytes exceeds %d", n, abi.MaxMessageBytes))
	}
	b, _ := k.block(ptr)
	return b, nil
}

func decode(name string, b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return abi.NewError(abi.CodeInvalidInput, name+" request: "+err.Error())
	}
	return nil
}

func unavailable(name string) error {
	return abi.NewError(abi.CodeUnavailable, name+" is not available in this call")
}

func (p *Plugin) hostFetch(cs *callState, b []byte) (any, error) {
	if cs.sync == nil || cs.inDir == "" {
		return nil, unavailable(abi.HostFetch)
	}
	var req abi.FetchRequest
	if err := decode(abi.HostFetch, b, &req); err != nil {
		return nil, err
	}
	req.Method = strings.ToUpper(req.Method)
	if req.Method == "" {
		req.Method = "GET"
	}
	if req.Method != "GET" && req.Method != "HEAD" {
		return nil, abi.NewError(abi.CodeInvalidInput, "fetch: method "+req.Method+": want GET or HEAD")
	}
	if req.URL == "" {
		return nil, abi.NewError(abi.CodeInvalidInput, "fetch: url is empty")
	}
	cs.fetches++
	if req.Name == "" {
		req.Name = fmt.Sprintf("fetch-%d", cs.fetches)
	}
	if !abi.CleanRelativePath(req.Name) {
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("fetch: name %q is not a clean relative path", req.Name))
	}
	path := filepath.Join(cs.inDir, filepath.FromSlash(req.Name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	w := &bodyWriter{f: f, h: sha256.New(), max: p.limits.MaxFetchBytes}
	res, err := cs.sync.Fetch(cs.hostCtx, req, w)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || w.over {
		_ = os.Remove(path)
		if w.over {
			return nil, abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("fetch %s: body exceeds %d bytes", req.URL, w.max))
		}
		var ae *abi.Error
		if errors.As(err, &ae) || cs.hostCtx.Err() != nil {
			return nil, err
		}
		return nil, abi.NewError(abi.CodeUpstream, err.Error()) // the downloader's errors name the URL
	}
	resp := abi.FetchResponse{Status: res.Status, Headers: map[string]string{}}
	for k, vs := range res.Header {
		resp.Headers[strings.ToLower(k)] = strings.Join(vs, ", ")
	}
	if req.Method == "HEAD" || res.Status < 200 || res.Status > 299 {
		_ = os.Remove(path)
		return resp, nil
	}
	resp.Path = abi.InDir + "/" + req.Name
	resp.Size = w.n
	resp.SHA256 = hex.EncodeToString(w.h.Sum(nil))
	return resp, nil
}

// bodyWriter writes a fetched body to its file, hashing and counting, up to max bytes.
type bodyWriter struct {
	f    *os.File
	h    hash.Hash
	n    int64
	max  int64
	over bool
}

func (w *bodyWriter) Write(b []byte) (int, error) {
	if w.n+int64(len(b)) > w.max {
		w.over = true
		return 0, fmt.Errorf("%w: fetched body exceeds %d bytes", ErrLimit, w.max)
	}
	n, err := w.f.Write(b)
	w.h.Write(b[:n])
	w.n += int64(n)
	return n, err
}

var _ io.Writer = (*bodyWriter)(nil)

func (p *Plugin) hostEmit(cs *callState, b []byte) (any, error) {
	if cs.sync == nil {
		return nil, unavailable(abi.HostContentEmit)
	}
	var req abi.EmitRequest
	if err := decode(abi.HostContentEmit, b, &req); err != nil {
		return nil, err
	}
	if len(req.Content) > abi.MaxEmitBatch {
		return nil, abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("content_emit: %d units exceed %d", len(req.Content), abi.MaxEmitBatch))
	}
	for i, dc := range req.Content {
		if err := p.desc.CheckContent(dc); err != nil {
			return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("content_emit: unit %d: %v", i, err))
		}
	}
	if err := cs.sync.Emit(cs.hostCtx, req.Content); err != nil {
		return nil, fmt.Errorf("content_emit: %w", err)
	}
	return abi.EmitResponse{Accepted: len(req.Content)}, nil
}

func (p *Plugin) hostLookup(cs *callState, b []byte) (any, error) {
	if cs.lookup == nil {
		return nil, unavailable(abi.HostContentLookup)
	}
	var req abi.LookupRequest
	if err := decode(abi.HostContentLookup, b, &req); err != nil {
		return nil, err
	}
	switch {
	case !abi.ValidTypeName(req.Type):
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("content_lookup: type %q", req.Type))
	case len(req.Keys) > abi.MaxLookupKeys:
		return nil, abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("content_lookup: %d keys exceed %d", len(req.Keys), abi.MaxLookupKeys))
	case req.Scope != "" && req.Scope != abi.ScopeVersion && req.Scope != abi.ScopeAll:
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("content_lookup: scope %q", req.Scope))
	}
	if req.Scope == "" {
		req.Scope = abi.ScopeVersion
	}
	found, err := cs.lookup.Lookup(cs.hostCtx, req)
	if err != nil {
		return nil, fmt.Errorf("content_lookup: %w", err)
	}
	if found == nil {
		found = []abi.Content{}
	}
	return abi.LookupResponse{Content: found}, nil
}

func (p *Plugin) hostArtifactStat(cs *callState, b []byte) (any, error) {
	if cs.stat == nil {
		return nil, unavailable(abi.HostArtifactStat)
	}
	var req abi.ArtifactStatRequest
	if err := decode(abi.HostArtifactStat, b, &req); err != nil {
		return nil, err
	}
	if len(req.SHA256) != 64 || strings.ToLower(req.SHA256) != req.SHA256 {
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("artifact_stat: %q is not a lowercase hex sha256", req.SHA256))
	}
	size, ok, err := cs.stat.StatArtifact(cs.hostCtx, req.SHA256)
	if err != nil {
		return nil, fmt.Errorf("artifact_stat: %w", err)
	}
	return abi.ArtifactStatResponse{Exists: ok, Size: size}, nil
}

// hostArtifactRead answers artifact_read: at most MaxArtifactReadBytes of a stored
// artifact, so a plugin reads small artifacts (an image config) without a fetch while
// bulk bytes still never cross into it.
func (p *Plugin) hostArtifactRead(cs *callState, b []byte) (any, error) {
	if cs.read == nil {
		return nil, unavailable(abi.HostArtifactRead)
	}
	var req abi.ArtifactReadRequest
	if err := decode(abi.HostArtifactRead, b, &req); err != nil {
		return nil, err
	}
	switch {
	case len(req.SHA256) != 64 || strings.ToLower(req.SHA256) != req.SHA256 || !isHex(req.SHA256):
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("artifact_read: sha256 %q is not lowercase hex", req.SHA256))
	case req.Offset < 0:
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("artifact_read: offset %d is negative", req.Offset))
	case req.Length < 0:
		return nil, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("artifact_read: length %d is negative", req.Length))
	case req.Length > abi.MaxArtifactReadBytes:
		return nil, abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("artifact_read: length %d exceeds %d", req.Length, abi.MaxArtifactReadBytes))
	}
	if req.Length == 0 {
		req.Length = abi.MaxArtifactReadBytes
	}
	data, size, err := cs.read.ReadArtifact(cs.hostCtx, req.SHA256, req.Offset, req.Length)
	if err != nil {
		return nil, fmt.Errorf("artifact_read: %w", err)
	}
	if int64(len(data)) > req.Length {
		return nil, fmt.Errorf("artifact_read: the store returned %d bytes for %d", len(data), req.Length)
	}
	if data == nil {
		data = []byte{}
	}
	return abi.ArtifactReadResponse{Data: data, Size: size}, nil
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (p *Plugin) hostProgress(cs *callState, b []byte) (any, error) {
	if cs.progress == nil {
		return nil, unavailable(abi.HostProgress)
	}
	var r abi.ProgressReport
	if err := decode(abi.HostProgress, b, &r); err != nil {
		return nil, err
	}
	if r.Code == "" {
		return nil, abi.NewError(abi.CodeInvalidInput, "progress: code is empty")
	}
	if err := cs.progress.Progress(cs.hostCtx, r); err != nil {
		return nil, fmt.Errorf("progress: %w", err)
	}
	return nil, nil
}

// logRecord forwards a plugin's log record to slog with the plugin's name.
func (p *Plugin) logRecord(ctx context.Context, rec abi.LogRecord) {
	level := slog.LevelInfo
	switch rec.Level {
	case "trace":
		level = slog.LevelDebug - 4
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	}
	if !p.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(rec.Attrs)+1)
	for k, v := range rec.Attrs {
		attrs = append(attrs, slog.Any(k, v))
	}
	p.log.LogAttrs(ctx, level, string(truncate([]byte(rec.Message), abi.MaxLogBytes)),
		slog.Attr{Key: "plugin_attrs", Value: slog.GroupValue(attrs...)})
}

func slogLevel(level int32) slog.Level {
	switch level {
	case abi.LevelTrace:
		return slog.LevelDebug - 4
	case abi.LevelDebug:
		return slog.LevelDebug
	case abi.LevelInfo:
		return slog.LevelInfo
	case abi.LevelWarn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
