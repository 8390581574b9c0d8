// Package sdktest runs a plugin written with package sdk natively, under plain go test,
// against an in-memory host.
//
// The fake host behaves like the real one where it matters for plugin logic: fetch serves
// bodies from a map and writes them to a directory the plugin reads with normal file I/O,
// every message crosses as JSON (so what a test sees is what the host would get), emitted
// units are checked against the plugin's own describe, and the batch and size limits of
// the ABI are enforced.
//
//	func TestSync(t *testing.T) {
//		h := sdktest.New(t)
//		h.Serve("https://example.org/PULP_MANIFEST", []byte("a.txt,<sha256>,3\n"))
//		_, err := h.Sync(abi.SyncRequest{Remote: abi.Remote{URL: "https://example.org/PULP_MANIFEST"}})
//		...
//		h.Emitted // the declarative content
//	}
//
// The plugin under test registers itself from init, so the test must be in (or import) the
// plugin's package.
package sdktest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// Response is a canned upstream response for fetch.
type Response struct {
	Status  int // default 200
	Headers map[string]string
	Body    []byte
}

// Host is an in-memory host. Set the inputs, call Sync, Publish or Route, read the results.
// A Host is not safe for concurrent use; use one per test.
type Host struct {
	// Upstream maps URLs to responses; other URLs answer 404.
	Upstream map[string]Response
	// Content is what content_lookup searches (scope is ignored).
	Content []abi.Content
	// Artifacts maps sha256 to size for artifact_stat.
	Artifacts map[string]int64
	// Blobs maps sha256 to the stored bytes artifact_read serves (add them with
	// StoreBlob); an artifact not here is not_found, as on-demand content is.
	Blobs map[string][]byte
	// Cancel makes cancelled() answer 1 and every other host function fail with code
	// cancelled.
	Cancel bool
	// LogLevel is the lowest level log_enabled accepts; default debug.
	LogLevel int32

	// Results.
	Emitted  []abi.DeclarativeContent
	Batches  int
	Fetches  []abi.FetchRequest
	Lookups  []abi.LookupRequest
	Reports  []abi.ProgressReport
	Logs     []abi.LogRecord
	describe *abi.Describe

	t      testing.TB
	inDir  string
	outDir string
}

// New returns a Host whose mounts live in t.TempDir().
func New(t testing.TB) *Host {
	t.Helper()
	if bridge.Registered.Describe == nil {
		t.Fatal("sdktest: no plugin registered; the test must import the plugin's package")
	}
	root := t.TempDir()
	h := &Host{
		Upstream: map[string]Response{}, Artifacts: map[string]int64{}, Blobs: map[string][]byte{}, LogLevel: abi.LevelDebug,
		t: t, inDir: filepath.Join(root, "in"), outDir: filepath.Join(root, "out"),
	}
	return h
}

// Serve makes fetch answer url with 200 and body.
func (h *Host) Serve(url string, body []byte) { h.Upstream[url] = Response{Body: body} }

// StoreBlob stores body as an artifact (for artifact_read and artifact_stat) and returns
// its sha256.
func (h *Host) StoreBlob(body []byte) string {
	sum := sha256.Sum256(body)
	sha := hex.EncodeToString(sum[:])
	h.Blobs[sha] = body
	h.Artifacts[sha] = int64(len(body))
	return sha
}

// InDir returns the directory standing in for the read-only mount.
func (h *Host) InDir() string { return h.inDir }

// Describe calls the plugin's describe and fails the test unless the result is valid.
func (h *Host) Describe() abi.Describe {
	h.t.Helper()
	if h.describe != nil {
		return *h.describe
	}
	in, _ := json.Marshal(abi.DescribeRequest{Host: abi.HostInfo{Name: "sdktest", Version: "0", ABIVersion: abi.Current().String()}})
	out, err := bridge.Registered.Describe(fake{h}, in)
	if err != nil {
		h.t.Fatalf("describe: %v", err)
	}
	var d abi.Describe
	if err := json.Unmarshal(out, &d); err != nil {
		h.t.Fatalf("describe output: %v", err)
	}
	if err := d.Validate(); err != nil {
		h.t.Fatalf("describe is invalid:\n%v", err)
	}
	h.describe = &d
	return d
}

func (h *Host) resetDirs() {
	h.t.Helper()
	for _, d := range []string{h.inDir, h.outDir} {
		if err := os.RemoveAll(d); err != nil {
			h.t.Fatal(err)
		}
		if err := os.MkdirAll(d, 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
}

// Sync runs sync_first_stage. InDir is set to the fake mount; Remote.Type and Policy default
// to the first declared remote type and immediate.
func (h *Host) Sync(req abi.SyncRequest) (abi.SyncResponse, error) {
	h.t.Helper()
	d := h.Describe()
	h.resetDirs()
	req.InDir = h.inDir
	if req.Remote.Type == "" && len(d.RemoteTypes) > 0 {
		req.Remote.Type = d.RemoteTypes[0].Name
	}
	if req.Remote.Policy == "" {
		req.Remote.Policy = abi.PolicyImmediate
	}
	var resp abi.SyncResponse
	err := h.call(bridge.Registered.SyncFirstStage, req, &resp)
	return resp, err
}

// Publish runs publish with content as the version's listing. Metadata paths in the
// response are real paths; read them with os.ReadFile.
func (h *Host) Publish(req abi.PublishRequest, content []abi.Content) (abi.PublishResponse, error) {
	h.t.Helper()
	h.Describe()
	h.resetDirs()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, c := range content {
		if err := enc.Encode(c); err != nil {
			h.t.Fatal(err)
		}
	}
	listing := filepath.Join(h.inDir, "content.jsonl")
	if err := os.WriteFile(listing, buf.Bytes(), 0o644); err != nil {
		h.t.Fatal(err)
	}
	req.ContentPath, req.InDir, req.OutDir = listing, h.inDir, h.outDir
	var resp abi.PublishResponse
	err := h.call(bridge.Registered.Publish, req, &resp)
	if err == nil {
		for _, m := range resp.Metadata {
			if !strings.HasPrefix(m.Path, h.outDir+"/") && !strings.HasPrefix(m.Path, h.inDir+"/") {
				return resp, fmt.Errorf("sdktest: metadata %s is outside the mounts", m.Path)
			}
		}
	}
	return resp, err
}

// Route runs handle_route.
func (h *Host) Route(req abi.RouteRequest) (abi.RouteResponse, error) {
	h.t.Helper()
	h.Describe()
	var resp abi.RouteResponse
	err := h.call(bridge.Registered.HandleRoute, req, &resp)
	return resp, err
}

// FromUpload runs content_from_upload on body, written to the fake mount; Path, SHA256
// and Size are set from it.
func (h *Host) FromUpload(req abi.UploadRequest, body []byte) (abi.UploadResponse, error) {
	h.t.Helper()
	h.Describe()
	h.resetDirs()
	path := filepath.Join(h.inDir, "upload")
	if err := os.WriteFile(path, body, 0o644); err != nil {
		h.t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	req.Path, req.SHA256, req.Size = path, hex.EncodeToString(sum[:]), int64(len(body))
	var resp abi.UploadResponse
	err := h.call(bridge.Registered.FromUpload, req, &resp)
	return resp, err
}

func (h *Host) call(handler bridge.Handler, req, resp any) error {
	h.t.Helper()
	in, err := json.Marshal(req)
	if err != nil {
		h.t.Fatal(err)
	}
	if len(in) > abi.MaxMessageBytes {
		h.t.Fatalf("sdktest: input of %d bytes exceeds the ABI limit", len(in))
	}
	out, err := handler(fake{h}, in)
	if err != nil {
		var ae *abi.Error
		if !errors.As(err, &ae) {
			h.t.Fatalf("sdktest: handler returned %T, not *abi.Error", err)
		}
		return ae
	}
	if err := json.Unmarshal(out, resp); err != nil {
		h.t.Fatalf("sdktest: output does not decode: %v", err)
	}
	return nil
}

// fake adapts Host to bridge.Host.
type fake struct{ h *Host }

var errCancelled = abi.NewError(abi.CodeCancelled, "task cancelled")

// wire round-trips v through JSON into out, as the real ABI would.
func wire(t testing.TB, v, out any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("sdktest: message does not encode: %v", err)
	}
	if len(b) > abi.MaxMessageBytes {
		t.Fatalf("sdktest: message of %d bytes exceeds the ABI limit", len(b))
	}
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("sdktest: message does not decode: %v", err)
	}
}

func (f fake) Fetch(in abi.FetchRequest) (abi.FetchResponse, error) {
	h := f.h
	var req abi.FetchRequest
	wire(h.t, in, &req)
	h.Fetches = append(h.Fetches, req)
	if h.Cancel {
		return abi.FetchResponse{}, errCancelled
	}
	if req.Method != "" && req.Method != "GET" && req.Method != "HEAD" {
		return abi.FetchResponse{}, abi.NewError(abi.CodeInvalidInput, "method "+req.Method)
	}
	up, ok := h.Upstream[req.URL]
	if !ok {
		return abi.FetchResponse{Status: 404}, nil
	}
	status := up.Status
	if status == 0 {
		status = 200
	}
	resp := abi.FetchResponse{Status: status, Headers: up.Headers}
	if req.Method == "HEAD" || status < 200 || status > 299 {
		return resp, nil
	}
	name := req.Name
	if name == "" {
		name = fmt.Sprintf("fetch-%d-%s", len(h.Fetches), path.Base(req.URL))
	}
	if !abi.CleanRelativePath(name) {
		return abi.FetchResponse{}, abi.NewError(abi.CodeInvalidInput, "name "+name)
	}
	full := filepath.Join(h.inDir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(full, up.Body, 0o444); err != nil {
		h.t.Fatal(err)
	}
	sum := sha256.Sum256(up.Body)
	resp.Path, resp.Size, resp.SHA256 = full, int64(len(up.Body)), hex.EncodeToString(sum[:])
	var out abi.FetchResponse
	wire(h.t, resp, &out)
	return out, nil
}

func (f fake) Emit(batch []abi.DeclarativeContent) error {
	h := f.h
	if h.Cancel {
		return errCancelled
	}
	if len(batch) > abi.MaxEmitBatch {
		return abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("batch of %d units", len(batch)))
	}
	var req abi.EmitRequest
	wire(h.t, abi.EmitRequest{Content: batch}, &req)
	d := h.Describe()
	for i, dc := range req.Content {
		if err := d.CheckContent(dc); err != nil {
			return abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("unit %d: %v", i, err))
		}
	}
	h.Emitted = append(h.Emitted, req.Content...)
	h.Batches++
	return nil
}

func (f fake) Lookup(in abi.LookupRequest) ([]abi.Content, error) {
	h := f.h
	var req abi.LookupRequest
	wire(h.t, in, &req)
	h.Lookups = append(h.Lookups, req)
	if h.Cancel {
		return nil, errCancelled
	}
	var out []abi.Content
	for _, c := range h.Content {
		if c.Type != req.Type {
			continue
		}
		for _, k := range req.Keys {
			if matches(c.Fields, k) {
				out = append(out, c)
				break
			}
		}
	}
	return out, nil
}

// matches reports whether every member of key has an equal member in fields.
func matches(fields, key json.RawMessage) bool {
	var f, k map[string]any
	if json.Unmarshal(fields, &f) != nil || json.Unmarshal(key, &k) != nil {
		return false
	}
	for name, want := range k {
		got, ok := f[name]
		if !ok {
			return false
		}
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			return false
		}
	}
	return true
}

func (f fake) ArtifactStat(req abi.ArtifactStatRequest) (abi.ArtifactStatResponse, error) {
	if f.h.Cancel {
		return abi.ArtifactStatResponse{}, errCancelled
	}
	size, ok := f.h.Artifacts[req.SHA256]
	return abi.ArtifactStatResponse{Exists: ok, Size: size}, nil
}

// ArtifactRead checks the request as the host does and serves Blobs.
func (f fake) ArtifactRead(in abi.ArtifactReadRequest) (abi.ArtifactReadResponse, error) {
	h := f.h
	var req abi.ArtifactReadRequest
	wire(h.t, in, &req)
	if h.Cancel {
		return abi.ArtifactReadResponse{}, errCancelled
	}
	switch {
	case len(req.SHA256) != 64 || strings.Trim(req.SHA256, "0123456789abcdef") != "":
		return abi.ArtifactReadResponse{}, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("sha256 %q is not lowercase hex", req.SHA256))
	case req.Offset < 0 || req.Length < 0:
		return abi.ArtifactReadResponse{}, abi.NewError(abi.CodeInvalidInput, "negative offset or length")
	case req.Length > abi.MaxArtifactReadBytes:
		return abi.ArtifactReadResponse{}, abi.NewError(abi.CodeLimitExceeded, fmt.Sprintf("length %d exceeds %d", req.Length, abi.MaxArtifactReadBytes))
	}
	body, ok := h.Blobs[req.SHA256]
	if !ok {
		return abi.ArtifactReadResponse{}, abi.NewError(abi.CodeNotFound, "artifact "+req.SHA256+" is not stored")
	}
	size := int64(len(body))
	if req.Offset > size {
		return abi.ArtifactReadResponse{}, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("offset %d is past the end (%d bytes)", req.Offset, size))
	}
	if req.Length == 0 {
		req.Length = abi.MaxArtifactReadBytes
	}
	var out abi.ArtifactReadResponse
	wire(h.t, abi.ArtifactReadResponse{Data: body[req.Offset:min(size, req.Offset+req.Length)], Size: size}, &out)
	return out, nil
}

func (f fake) Progress(r abi.ProgressReport) error {
	if f.h.Cancel {
		return errCancelled
	}
	var out abi.ProgressReport
	wire(f.h.t, r, &out)
	f.h.Reports = append(f.h.Reports, out)
	return nil
}

func (f fake) Log(r abi.LogRecord) {
	var out abi.LogRecord
	wire(f.h.t, r, &out)
	f.h.Logs = append(f.h.Logs, out)
}

func (f fake) LogEnabled(level int32) bool { return level >= f.h.LogLevel }

func (f fake) Cancelled() bool { return f.h.Cancel }
