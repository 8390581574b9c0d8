// Package bridge joins package sdk to the two things that drive it: the WebAssembly exports
// (under GOOS=wasip1) and sdk/sdktest (natively). Both see a plugin as four byte-level entry
// points and give it a Host; neither is visible to plugin authors.
package bridge

import "github.com/pulpo/pulpo/abi"

// Host is the guest's view of the pulpo:host/v1 functions. The wasm binding implements it by
// JSON over kernel blocks; sdktest implements it in memory (also through JSON, so that tests
// see what the real host would).
type Host interface {
	Fetch(req abi.FetchRequest) (abi.FetchResponse, error)
	Emit(batch []abi.DeclarativeContent) error
	Lookup(req abi.LookupRequest) ([]abi.Content, error)
	ArtifactStat(req abi.ArtifactStatRequest) (abi.ArtifactStatResponse, error)
	// ArtifactRead is artifact_read (ABI 1.1).
	ArtifactRead(req abi.ArtifactReadRequest) (abi.ArtifactReadResponse, error)
	Progress(r abi.ProgressReport) error
	Log(r abi.LogRecord)
	LogEnabled(level int32) bool
	Cancelled() bool
}

// Handler runs one export: the input JSON in, the output JSON or an error out. Errors that
// are *abi.Error keep their code; others become code internal.
type Handler func(h Host, input []byte) ([]byte, error)

// Exports are the plugin's entry points, set by package sdk when a plugin registers.
type Exports struct {
	Describe       Handler
	SyncFirstStage Handler
	Publish        Handler
	HandleRoute    Handler
	// FromUpload is content_from_upload.
	FromUpload Handler
}

// Registered holds the entry points of the registered plugin; zero until sdk.Register runs.
// It is written once, from init, before any export is called.
var Registered Exports //nolint:gochecknoglobals // the guest's exports are process-wide by nature
