//go:build wasip1

package sdk

import (
	"encoding/json"
	"fmt"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/kernel"
)

// The pulpo:host/v1 imports, typed as in abi.HostFunctions. Request and response blocks are
// kernel blocks holding JSON; the guest owns both (it frees the request after the call and
// the response after reading it). A zero response means success with nothing to say.

//go:wasmimport pulpo:host/v1 fetch
func hostFetch(req uint64) uint64

//go:wasmimport pulpo:host/v1 content_emit
func hostContentEmit(req uint64) uint64

//go:wasmimport pulpo:host/v1 content_lookup
func hostContentLookup(req uint64) uint64

//go:wasmimport pulpo:host/v1 artifact_stat
func hostArtifactStat(req uint64) uint64

//go:wasmimport pulpo:host/v1 artifact_read
func hostArtifactRead(req uint64) uint64

//go:wasmimport pulpo:host/v1 progress
func hostProgress(req uint64) uint64

//go:wasmimport pulpo:host/v1 log
func hostLog(req uint64)

//go:wasmimport pulpo:host/v1 log_enabled
func hostLogEnabled(level uint32) uint32

//go:wasmimport pulpo:host/v1 cancelled
func hostCancelled() uint32

// wasmHost implements bridge.Host over the imports.
type wasmHost struct {
	buf []byte // reused encoding buffer for emit batches
}

// call sends req as JSON to fn and decodes the response into resp, whose embedded
// abi.ErrorResponse (reached through errOf) reports a host-side failure.
func call(name string, fn func(uint64) uint64, req any, resp any, errOf func() error) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("%s request: %w", name, err)
	}
	return callRaw(name, fn, b, resp, errOf)
}

// callRaw is call with the request already encoded.
func callRaw(name string, fn func(uint64) uint64, b []byte, resp any, errOf func() error) error {
	if len(b) > abi.MaxMessageBytes {
		return Errorf(abi.CodeLimitExceeded, "%s request of %d bytes exceeds %d", name, len(b), abi.MaxMessageBytes)
	}
	p := kernel.Store(b)
	r := fn(p)
	kernel.Free(p)
	if r == 0 {
		return nil
	}
	out := kernel.Load(r)
	kernel.Free(r)
	if err := json.Unmarshal(out, resp); err != nil {
		return fmt.Errorf("%s response: %w", name, err)
	}
	return errOf()
}

func (*wasmHost) Fetch(req abi.FetchRequest) (abi.FetchResponse, error) {
	var resp abi.FetchResponse
	err := call(abi.HostFetch, hostFetch, req, &resp, func() error { return resp.Err() })
	return resp, err
}

func (h *wasmHost) Emit(batch []abi.DeclarativeContent) error {
	var resp abi.EmitResponse
	h.buf = appendEmitRequest(h.buf[:0], batch)
	return callRaw(abi.HostContentEmit, hostContentEmit, h.buf, &resp, func() error { return resp.Err() })
}

func (*wasmHost) Lookup(req abi.LookupRequest) ([]abi.Content, error) {
	var resp abi.LookupResponse
	err := call(abi.HostContentLookup, hostContentLookup, req, &resp, func() error { return resp.Err() })
	return resp.Content, err
}

func (*wasmHost) ArtifactStat(req abi.ArtifactStatRequest) (abi.ArtifactStatResponse, error) {
	var resp abi.ArtifactStatResponse
	err := call(abi.HostArtifactStat, hostArtifactStat, req, &resp, func() error { return resp.Err() })
	return resp, err
}

func (*wasmHost) ArtifactRead(req abi.ArtifactReadRequest) (abi.ArtifactReadResponse, error) {
	var resp abi.ArtifactReadResponse
	err := call(abi.HostArtifactRead, hostArtifactRead, req, &resp, func() error { return resp.Err() })
	return resp, err
}

func (*wasmHost) Progress(r abi.ProgressReport) error {
	var resp abi.ErrorResponse
	return call(abi.HostProgress, hostProgress, r, &resp, func() error { return resp.Err() })
}

func (*wasmHost) Log(r abi.LogRecord) {
	if len(r.Message) > abi.MaxLogBytes {
		r.Message = r.Message[:abi.MaxLogBytes]
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	p := kernel.Store(b)
	hostLog(p)
	kernel.Free(p)
}

func (*wasmHost) LogEnabled(level int32) bool { return hostLogEnabled(uint32(level)) == 1 }

func (*wasmHost) Cancelled() bool { return hostCancelled() == 1 }
