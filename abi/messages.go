package abi

import "encoding/json"

// SyncRequest is the input of sync_first_stage.
type SyncRequest struct {
	Remote     Remote     `json:"remote"`
	Repository Repository `json:"repository"`
	// Mirror asks for a version holding exactly the upstream content (the host removes what
	// the first stage did not emit); otherwise emitted units are added to the latest version.
	Mirror bool `json:"mirror"`
	// Options holds the plugin's sync options (Describe.SyncOptions) as a JSON object.
	Options json.RawMessage `json:"options,omitempty"`
	// InDir is the guest path of this call's read-only mount, where fetch puts files.
	InDir string `json:"in_dir"`
}

// Remote is the remote a sync runs against. Credentials, TLS and proxy settings are never
// sent to plugins: the host applies them in fetch.
type Remote struct {
	Name string `json:"name"`
	Type string `json:"type"`
	URL  string `json:"url"`
	// Policy is immediate, on_demand or streamed. Artifacts of a non-immediate sync are
	// emitted with Deferred set.
	Policy string `json:"policy"`
	// Fields is a JSON object with the remote type's plugin fields.
	Fields json.RawMessage `json:"fields,omitempty"`
}

// Repository is the repository a sync or publish works on.
type Repository struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// LatestVersion is the number of the latest version (0 for a new repository).
	LatestVersion int64 `json:"latest_version"`
	// Fields is a JSON object with the repository type's plugin fields.
	Fields json.RawMessage `json:"fields,omitempty"`
	// LastSyncDetails is what the previous sync returned as SyncResponse.Details.
	LastSyncDetails json.RawMessage `json:"last_sync_details,omitempty"`
}

// SyncResponse is the output of sync_first_stage. Content went through content_emit.
type SyncResponse struct {
	// Details is a JSON object the host stores as the repository's last sync details and
	// hands back in the next SyncRequest (to skip unchanged syncs).
	Details json.RawMessage `json:"details,omitempty"`
	// Skipped says nothing changed upstream: the host creates no new version.
	Skipped bool `json:"skipped,omitempty"`
	// Metadata lists fetched files the host keeps as published metadata of a mirror sync's
	// publication (pulp_file keeps the upstream PULP_MANIFEST).
	Metadata []MetadataFile `json:"metadata,omitempty"`
}

// MetadataFile is a file a plugin produced or fetched, to be published under RelativePath.
type MetadataFile struct {
	// RelativePath is where the file is published, a clean relative path.
	RelativePath string `json:"relative_path"`
	// Path is the guest path of the file, under InDir or OutDir.
	Path string `json:"path"`
}

// FetchRequest is the request of the fetch host function: the host downloads URL with the
// call's remote settings into the read-only mount.
type FetchRequest struct {
	URL string `json:"url"`
	// Method is GET (default) or HEAD.
	Method string `json:"method,omitempty"`
	// Headers are extra request headers (Accept). The host may override authentication.
	Headers map[string]string `json:"headers,omitempty"`
	// Name is the file name wanted under InDir: a clean relative path. Default: a name the
	// host picks. Fetching the same name twice replaces the file.
	Name string `json:"name,omitempty"`
}

// FetchResponse is the response of fetch. A response with any HTTP status is a success; the
// body is kept only for 2xx. Transport failures are errors (code upstream).
type FetchResponse struct {
	Status int `json:"status"`
	// Headers holds the response headers, names lower-cased, repeated values joined by ", ".
	Headers map[string]string `json:"headers,omitempty"`
	// Path is the guest path of the body (InDir + "/" + name); empty for HEAD and non-2xx.
	Path string `json:"path,omitempty"`
	// Size and SHA256 describe the stored body.
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256,omitempty"`
	ErrorResponse
}

// EmitRequest is the request of content_emit: one batch of units, at most MaxEmitBatch.
type EmitRequest struct {
	Content []DeclarativeContent `json:"content"`
}

// EmitResponse is the response of content_emit.
type EmitResponse struct {
	// Accepted is the number of units taken from the batch (all of them on success).
	Accepted int `json:"accepted"`
	ErrorResponse
}

// Lookup scopes.
const (
	// ScopeVersion looks in the repository version the call works on (default).
	ScopeVersion = "version"
	// ScopeAll looks in all content the host stores.
	ScopeAll = "all"
)

// LookupRequest is the request of content_lookup: find units by natural key.
type LookupRequest struct {
	Type string `json:"type"`
	// Keys are JSON objects, each holding a natural key; at most MaxLookupKeys.
	Keys []json.RawMessage `json:"keys"`
	// Scope is "version" (default) or "all".
	Scope string `json:"scope,omitempty"`
}

// LookupResponse is the response of content_lookup: the units found, in no particular order.
type LookupResponse struct {
	Content []Content `json:"content"`
	ErrorResponse
}

// ArtifactStatRequest is the request of artifact_stat.
type ArtifactStatRequest struct {
	SHA256 string `json:"sha256"`
}

// ArtifactStatResponse is the response of artifact_stat.
type ArtifactStatResponse struct {
	// Exists is true when the host stores the artifact's bytes.
	Exists bool  `json:"exists"`
	Size   int64 `json:"size,omitempty"`
	ErrorResponse
}

// ArtifactReadRequest is the request of artifact_read (since 1.1): a bounded read of a
// stored artifact's bytes.
type ArtifactReadRequest struct {
	// SHA256 names the artifact, lowercase hex.
	SHA256 string `json:"sha256"`
	// Offset is where the read starts; at most the artifact's size.
	Offset int64 `json:"offset,omitempty"`
	// Length is the most bytes wanted, at most MaxArtifactReadBytes; 0 reads up to
	// MaxArtifactReadBytes.
	Length int64 `json:"length,omitempty"`
}

// ArtifactReadResponse is the response of artifact_read.
type ArtifactReadResponse struct {
	// Data holds the bytes read (base64 in JSON): fewer than asked only at the end of the
	// artifact.
	Data []byte `json:"data"`
	// Size is the artifact's whole size, so a plugin knows what remains after Data.
	Size int64 `json:"size"`
	ErrorResponse
}

// Progress states.
const (
	StateRunning   = "running"
	StateCompleted = "completed"
	StateSkipped   = "skipped"
)

// ProgressReport is the request of the progress host function. Reports with the same Code
// update one another.
type ProgressReport struct {
	// Code identifies the report, e.g. "sync.parsing.metadata".
	Code    string `json:"code"`
	Message string `json:"message"`
	// State is running (default), completed or skipped.
	State string `json:"state,omitempty"`
	Done  int64  `json:"done"`
	// Total is 0 when unknown.
	Total int64 `json:"total,omitempty"`
}

// LogRecord is the request of the log host function.
type LogRecord struct {
	// Level is trace, debug, info, warn or error.
	Level   string `json:"level"`
	Message string `json:"message"`
	// Attrs are structured attributes, logged with the plugin's name.
	Attrs map[string]any `json:"attrs,omitempty"`
}

// Publication is the publication a publish call creates.
type Publication struct {
	Type string `json:"type"`
	// Fields is a JSON object with the publication type's plugin fields.
	Fields json.RawMessage `json:"fields,omitempty"`
}

// PublishRequest is the input of publish.
type PublishRequest struct {
	Publication Publication `json:"publication"`
	Repository  Repository  `json:"repository"`
	// Version is the number of the repository version being published.
	Version int64 `json:"version"`
	// ContentPath is the guest path of a JSON Lines file under InDir, one Content per line:
	// every unit of the version.
	ContentPath string `json:"content_path"`
	InDir       string `json:"in_dir"`
	// OutDir is the guest path of the writable mount for metadata files.
	OutDir string `json:"out_dir"`
}

// PublishResponse is the output of publish.
type PublishResponse struct {
	// PassThrough publishes every artifact of the version at its own relative path.
	PassThrough bool `json:"pass_through,omitempty"`
	// Metadata lists the files written under OutDir and where to publish them.
	Metadata []MetadataFile `json:"metadata,omitempty"`
	// ArtifactsPath is the guest path of a JSON Lines file under OutDir, one
	// PublishedArtifact per line, for publications that lay artifacts out themselves.
	ArtifactsPath string `json:"artifacts_path,omitempty"`
}

// PublishedArtifact places one artifact in a publication.
type PublishedArtifact struct {
	RelativePath string `json:"relative_path"`
	SHA256       string `json:"sha256"`
}

// RouteRequest is the input of handle_route: a live API request under one of the plugin's
// route prefixes.
type RouteRequest struct {
	Method string `json:"method"`
	// Path is the URL path, starting with the matched prefix.
	Path string `json:"path"`
	// Query is the raw query string without "?".
	Query string `json:"query,omitempty"`
	// Headers holds the request headers, names lower-cased, repeated values joined by ", ".
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the request body (base64 in JSON), at most what fits the input limit.
	Body []byte `json:"body,omitempty"`
}

// RouteResponse is the output of handle_route.
type RouteResponse struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	// Body is the response body (base64 in JSON).
	Body []byte `json:"body,omitempty"`
	// ServeArtifact asks the host to stream the artifact with this sha256 as the body
	// instead; artifact bytes never pass through a plugin.
	ServeArtifact string `json:"serve_artifact,omitempty"`
}

// UploadRequest is the input of content_from_upload: bytes a client uploaded, stored by
// the host as an artifact and mounted read-only at Path, to be read as a unit of Type.
type UploadRequest struct {
	// Type is the content type the host wants, one the plugin declares.
	Type string `json:"type"`
	// Path is the guest path of the uploaded bytes, under InDir.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	// Digest is the digest the client addressed the bytes by, "<algorithm>:<hex>" (a
	// manifest pushed by sha512 digest), checked by the host; empty: "sha256:" + SHA256.
	Digest string `json:"digest,omitempty"`
	// MediaType is the Content-Type the client sent, if any.
	MediaType string `json:"media_type,omitempty"`
}

// UploadResponse is the output of content_from_upload: the unit, with its fields and
// relations. Its artifact is the uploaded one, at the relative path the type's
// relative_path_field names; Artifacts must be empty.
type UploadResponse struct {
	Content DeclarativeContent `json:"content"`
}
