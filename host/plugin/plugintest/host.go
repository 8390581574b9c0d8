// Package plugintest helps test code that runs plugins: an in-memory implementation of the
// host interfaces of package plugin, helpers that build test plugins with the Go and C
// toolchains, and the runner of the ABI conformance kit (abi/abitest).
package plugintest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/plugin"
)

// Response is a canned upstream answer for Host.Fetch.
type Response struct {
	Status int // default 200
	Header http.Header
	Body   []byte
}

// Host is an in-memory host for plugin calls: fetch answers from Upstream (404 otherwise),
// emitted content is collected, lookups search Content. It is safe for concurrent use.
type Host struct {
	mu sync.Mutex
	// Upstream maps URLs to responses.
	Upstream map[string]Response
	// Content is what Lookup searches (by type and natural key fields; scope is ignored).
	Content []abi.Content
	// Artifacts maps sha256 to size for StatArtifact.
	Artifacts map[string]int64
	// Blobs maps sha256 to the bytes ReadArtifact serves; others are not_found.
	Blobs map[string][]byte
	// CountOnly makes Emit count units without keeping them (benchmarks).
	CountOnly bool
	// EmitErr, when set, is returned by Emit.
	EmitErr error

	emitted []abi.DeclarativeContent
	units   int
	batches int
	fetches []abi.FetchRequest
	reports []abi.ProgressReport
	lookups []abi.LookupRequest
}

var (
	_ plugin.SyncHost    = (*Host)(nil)
	_ plugin.PublishHost = (*Host)(nil)
	_ plugin.RouteHost   = (*Host)(nil)
	// Host also reads artifacts: set it as plugin.Options.Artifacts.
	_ plugin.ArtifactReader = (*Host)(nil)
)

// NewHost returns an empty Host.
func NewHost() *Host {
	return &Host{Upstream: map[string]Response{}, Artifacts: map[string]int64{}, Blobs: map[string][]byte{}}
}

// Serve makes url answer 200 with body.
func (h *Host) Serve(url string, body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Upstream[url] = Response{Body: body}
}

// Fetch implements plugin.Fetcher.
func (h *Host) Fetch(ctx context.Context, req abi.FetchRequest, body io.Writer) (plugin.FetchResult, error) {
	h.mu.Lock()
	h.fetches = append(h.fetches, req)
	resp, ok := h.Upstream[req.URL]
	h.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return plugin.FetchResult{}, err
	}
	if !ok {
		return plugin.FetchResult{Status: http.StatusNotFound, Header: http.Header{}}, nil
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if req.Method != http.MethodHead && status/100 == 2 {
		if _, err := io.Copy(body, bytes.NewReader(resp.Body)); err != nil {
			return plugin.FetchResult{}, err
		}
	}
	hdr := resp.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	return plugin.FetchResult{Status: status, Header: hdr}, nil
}

// Emit implements plugin.Emitter.
func (h *Host) Emit(ctx context.Context, batch []abi.DeclarativeContent) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.EmitErr != nil {
		return h.EmitErr
	}
	h.batches++
	h.units += len(batch)
	if !h.CountOnly {
		h.emitted = append(h.emitted, batch...)
	}
	return nil
}

// Lookup implements plugin.Lookuper.
func (h *Host) Lookup(ctx context.Context, req abi.LookupRequest) ([]abi.Content, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lookups = append(h.lookups, req)
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

func matches(fields, key json.RawMessage) bool {
	var f, k map[string]json.RawMessage
	if json.Unmarshal(fields, &f) != nil || json.Unmarshal(key, &k) != nil {
		return false
	}
	for name, want := range k {
		if got, ok := f[name]; !ok || !bytes.Equal(compact(got), compact(want)) {
			return false
		}
	}
	return true
}

func compact(b []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return b
	}
	return buf.Bytes()
}

// StatArtifact implements plugin.ArtifactStatter.
func (h *Host) StatArtifact(ctx context.Context, sha256 string) (int64, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	size, ok := h.Artifacts[sha256]
	return size, ok, nil
}

// ReadArtifact implements plugin.ArtifactReader from Blobs.
func (h *Host) ReadArtifact(ctx context.Context, sha256 string, offset, length int64) ([]byte, int64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.Blobs[sha256]
	if !ok {
		return nil, 0, abi.NewError(abi.CodeNotFound, "artifact "+sha256+" is not stored")
	}
	size := int64(len(b))
	if offset > size {
		return nil, size, abi.NewError(abi.CodeInvalidInput, "offset past the end")
	}
	return bytes.Clone(b[offset:min(size, offset+length)]), size, nil
}

// Progress implements plugin.ProgressReporter.
func (h *Host) Progress(ctx context.Context, r abi.ProgressReport) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reports = append(h.reports, r)
	return nil
}

// Emitted returns the units received so far (none with CountOnly).
func (h *Host) Emitted() []abi.DeclarativeContent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]abi.DeclarativeContent(nil), h.emitted...)
}

// Counts returns the numbers of units and batches received.
func (h *Host) Counts() (units, batches int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.units, h.batches
}

// Fetches returns the fetch requests received.
func (h *Host) Fetches() []abi.FetchRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]abi.FetchRequest(nil), h.fetches...)
}

// Reports returns the progress reports received.
func (h *Host) Reports() []abi.ProgressReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]abi.ProgressReport(nil), h.reports...)
}

// Lookups returns the lookup requests received.
func (h *Host) Lookups() []abi.LookupRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]abi.LookupRequest(nil), h.lookups...)
}
