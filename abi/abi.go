package abi

import (
	"fmt"
	"strconv"
	"strings"
)

// The version of the ABI described by this package and by spec/v1.md. A host at this
// version runs plugins built for 1.0 to 1.VersionMinor (Version.Supports).
const (
	VersionMajor = 1
	VersionMinor = 1
)

// Module names (WebAssembly import namespaces) a plugin may import from.
const (
	// HostNamespace is the module of Pulpo's host functions. Its suffix is the ABI major
	// version: a breaking change gets a new namespace, never a changed function.
	HostNamespace = "pulpo:host/v1"
	// KernelNamespace is the Extism kernel: input, output, kernel memory, errors, logs.
	KernelNamespace = "extism:host/env"
	// WASINamespace is WASI preview 1. Hosts provide all of it; the file system holds only
	// the mounts described in the spec (InDir, OutDir).
	WASINamespace = "wasi_snapshot_preview1"
)

// Export names. Every callable export has the signature () -> i32: 0 is success, anything
// else is failure (with an Error set through the kernel's error_set).
const (
	// ExportDescribe returns the plugin's Describe. Required.
	ExportDescribe = "describe"
	// ExportSyncFirstStage turns upstream metadata into declarative content. Required when
	// Describe declares a remote type.
	ExportSyncFirstStage = "sync_first_stage"
	// ExportPublish lays out a publication of a repository version. Required when Describe
	// declares a publication type.
	ExportPublish = "publish"
	// ExportHandleRoute answers a request under one of the plugin's live route prefixes.
	// Required when Describe declares routes.
	ExportHandleRoute = "handle_route"
	// ExportContentFromUpload reads bytes a client uploaded (a pushed manifest) and returns
	// the unit they make. Optional; a host offers uploads of types whose fields come from
	// the bytes only to plugins exporting it.
	ExportContentFromUpload = "content_from_upload"

	// MarkerPrefix starts the marker export that names the ABI version a plugin was built
	// for: MarkerPrefix + "<major>_<minor>", a function of type () -> () the host never calls.
	MarkerPrefix = "pulpo_abi_version_"
)

// Host function names in HostNamespace.
const (
	HostFetch         = "fetch"          // (i64 req) -> i64 resp: FetchRequest -> FetchResponse
	HostContentEmit   = "content_emit"   // (i64 req) -> i64 resp: EmitRequest -> EmitResponse
	HostContentLookup = "content_lookup" // (i64 req) -> i64 resp: LookupRequest -> LookupResponse
	HostArtifactStat  = "artifact_stat"  // (i64 req) -> i64 resp: ArtifactStatRequest -> ArtifactStatResponse
	HostArtifactRead  = "artifact_read"  // (i64 req) -> i64 resp: ArtifactReadRequest -> ArtifactReadResponse (since 1.1)
	HostProgress      = "progress"       // (i64 req) -> i64 resp: ProgressReport -> 0 or ErrorResponse
	HostLog           = "log"            // (i64 req) -> (): LogRecord
	HostLogEnabled    = "log_enabled"    // (i32 level) -> i32: 1 if a record at level would be kept
	HostCancelled     = "cancelled"      // () -> i32: 1 once the host wants the call to stop
)

// Limits every host honours at least. A host may be configured with larger ones.
const (
	// MaxMessageBytes caps an export's input and output and each host function's request and
	// response block (16 MiB). Bulk data goes through the file system, never the buffers.
	MaxMessageBytes = 16 << 20
	// MaxEmitBatch caps the number of units in one content_emit call.
	MaxEmitBatch = 10_000
	// MaxLookupKeys caps the number of keys in one content_lookup call.
	MaxLookupKeys = 10_000
	// MaxLogBytes caps one log message; longer messages are truncated by the host.
	MaxLogBytes = 64 << 10
	// MaxArtifactReadBytes caps the bytes one artifact_read returns (4 MiB, 5.6 MB as
	// base64): enough for any image config, small against MaxMessageBytes. Artifact
	// bytes in bulk never pass through a plugin.
	MaxArtifactReadBytes = 4 << 20
)

// Guest paths of the per-call mounts.
const (
	// InDir is the read-only mount holding files the host put there for this call: fetched
	// metadata (sync) and the content listing (publish). It is empty at the start of a call.
	InDir = "/in"
	// OutDir is the writable mount a publish call writes published metadata into. It is
	// empty at the start of a call and its content is discarded after the call.
	OutDir = "/out"
)

// Log levels as passed to log_enabled, the same numbers as the Extism kernel's
// get_log_level. LogRecord.Level carries the names.
const (
	LevelTrace int32 = 0
	LevelDebug int32 = 1
	LevelInfo  int32 = 2
	LevelWarn  int32 = 3
	LevelError int32 = 4
)

// Version is an ABI version. Plugins and hosts agree when the majors are equal and the
// plugin's minor is at most the host's.
type Version struct {
	Major int
	Minor int
}

// Current is the version described by this package.
func Current() Version { return Version{Major: VersionMajor, Minor: VersionMinor} }

// String returns "major.minor".
func (v Version) String() string { return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) }

// Marker returns the name of the marker export for v, e.g. "pulpo_abi_version_1_1".
func (v Version) Marker() string {
	return MarkerPrefix + strconv.Itoa(v.Major) + "_" + strconv.Itoa(v.Minor)
}

// Supports reports whether a host at version v can run a plugin built for version plugin.
func (v Version) Supports(plugin Version) bool {
	return plugin.Major == v.Major && plugin.Minor <= v.Minor
}

// ParseVersion parses "major.minor".
func ParseVersion(s string) (Version, error) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return Version{}, fmt.Errorf("abi version %q: want major.minor", s)
	}
	return parseParts(s, maj, min)
}

// ParseMarker returns the version named by a marker export, and false if name is not a
// well-formed marker.
func ParseMarker(name string) (Version, bool) {
	rest, ok := strings.CutPrefix(name, MarkerPrefix)
	if !ok {
		return Version{}, false
	}
	maj, min, ok := strings.Cut(rest, "_")
	if !ok {
		return Version{}, false
	}
	v, err := parseParts(name, maj, min)
	return v, err == nil
}

func parseParts(s, maj, min string) (Version, error) {
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	if err1 != nil || err2 != nil || a < 0 || b < 0 || strconv.Itoa(a) != maj || strconv.Itoa(b) != min {
		return Version{}, fmt.Errorf("abi version %q: want non-negative decimal numbers", s)
	}
	return Version{Major: a, Minor: b}, nil
}

// Since returns the minor version of major 1 that added a callable export or a host
// function of HostNamespace, and false for a name the ABI does not define. A plugin may
// use only what its marker's version defines (spec 3.1).
func Since(name string) (minor int, ok bool) {
	switch name {
	case ExportContentFromUpload, HostArtifactRead:
		return 1, true
	case ExportDescribe, ExportSyncFirstStage, ExportPublish, ExportHandleRoute,
		HostFetch, HostContentEmit, HostContentLookup, HostArtifactStat, HostProgress,
		HostLog, HostLogEnabled, HostCancelled:
		return 0, true
	}
	return 0, false
}
