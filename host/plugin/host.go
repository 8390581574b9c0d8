package plugin

import (
	"context"
	"io"
	"net/http"

	"github.com/pulpo/pulpo/abi"
)

// The host services a plugin call may use, as small interfaces the caller implements. The
// stages pipeline implements SyncHost; the content app implements RouteHost. plugintest.Host
// is an in-memory implementation for tests.

// Fetcher downloads for a plugin.
type Fetcher interface {
	// Fetch performs req with the remote's TLS, proxy, credentials and rate limits and
	// writes the response body (for a 2xx GET) to body. The plugin package creates, hashes
	// and sizes the file behind body and enforces Options.MaxFetchBytes; a write error means
	// the limit was hit and Fetch should return it. A non-2xx status is not an error.
	Fetch(ctx context.Context, req abi.FetchRequest, body io.Writer) (FetchResult, error)
}

// FetchResult is the upstream's answer to a fetch.
type FetchResult struct {
	Status int
	Header http.Header
}

// Emitter receives a sync's declarative content, one batch per content_emit call. The
// batch was already checked against the plugin's describe (abi.Describe.CheckContent) and
// belongs to the callee.
type Emitter interface {
	Emit(ctx context.Context, batch []abi.DeclarativeContent) error
}

// Lookuper finds stored units by natural key.
type Lookuper interface {
	Lookup(ctx context.Context, req abi.LookupRequest) ([]abi.Content, error)
}

// ArtifactStatter tells whether an artifact's bytes are stored.
type ArtifactStatter interface {
	StatArtifact(ctx context.Context, sha256 string) (size int64, ok bool, err error)
}

// ArtifactReader reads stored artifacts for artifact_read: the host's artifact store, the
// same for every call, so it is set once in Options.Artifacts.
type ArtifactReader interface {
	// ReadArtifact returns at most length bytes of the artifact with this sha256 from
	// offset (0 <= offset <= size, checked by the callee) and the artifact's size. An
	// artifact whose bytes are not stored (on-demand content) is an *abi.Error of code
	// not_found.
	ReadArtifact(ctx context.Context, sha256 string, offset, length int64) (data []byte, size int64, err error)
}

// ProgressReporter records progress reports of the task running the call.
type ProgressReporter interface {
	Progress(ctx context.Context, r abi.ProgressReport) error
}

// SyncHost is what sync_first_stage may ask of the host.
type SyncHost interface {
	Fetcher
	Emitter
	Lookuper
	ArtifactStatter
	ProgressReporter
}

// PublishHost is what publish may ask of the host.
type PublishHost interface {
	Lookuper
	ArtifactStatter
	ProgressReporter
}

// RouteHost is what handle_route may ask of the host.
type RouteHost interface {
	Lookuper
	ArtifactStatter
}
