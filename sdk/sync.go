package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/sdk/internal/bridge"
)

// Emit batching: a batch goes to the host when it holds this many units or roughly this
// many bytes, and at the end of the sync.
const (
	emitBatchUnits = 500
	emitBatchBytes = 4 << 20
)

// Sync is one run of a sync's first stage. Its methods are the host services a first stage
// may use; none of them may be used after the Sync function returns.
type Sync struct {
	Remote     abi.Remote
	Repository abi.Repository
	// Mirror asks for a version holding exactly what is emitted.
	Mirror bool
	// InDir is the directory fetched files appear in (read-only).
	InDir string
	// Log sends records to the host's log, tagged with the plugin and the task.
	Log *slog.Logger

	p       *plugin
	host    bridge.Host
	cancel  context.CancelFunc
	options json.RawMessage

	batch      []abi.DeclarativeContent
	batchBytes int
	emitted    int64
	resp       abi.SyncResponse
}

// Options decodes the sync options (the plugin's SyncOptions) into v.
func (s *Sync) Options(v any) error {
	if len(s.options) == 0 {
		return nil
	}
	if err := json.Unmarshal(s.options, v); err != nil {
		return Errorf(abi.CodeInvalidInput, "sync options: %v", err)
	}
	return nil
}

// RemoteFields decodes the remote's plugin fields into v.
func (s *Sync) RemoteFields(v any) error { return decodeFields("remote fields", s.Remote.Fields, v) }

// RepositoryFields decodes the repository's plugin fields into v.
func (s *Sync) RepositoryFields(v any) error {
	return decodeFields("repository fields", s.Repository.Fields, v)
}

// LastSyncDetails decodes what the previous sync passed to SetDetails into v; it reports
// false when there is none.
func (s *Sync) LastSyncDetails(v any) (bool, error) {
	if len(s.Repository.LastSyncDetails) == 0 {
		return false, nil
	}
	return true, decodeFields("last sync details", s.Repository.LastSyncDetails, v)
}

func decodeFields(what string, raw json.RawMessage, v any) error {
	if len(raw) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return Errorf(abi.CodeInvalidInput, "%s: %v", what, err)
	}
	return nil
}

// Deferred reports whether artifacts should be emitted with Deferred set (the remote's
// policy is not immediate).
func (s *Sync) Deferred() bool {
	return s.Remote.Policy != "" && s.Remote.Policy != abi.PolicyImmediate
}

// Fetched is a file the host downloaded for the plugin.
type Fetched struct {
	// Path is where the body is: open it with os.Open (or Open). Empty for HEAD requests
	// and responses that are not 2xx.
	Path   string
	Status int
	// Header holds the response headers, names lower-cased.
	Header map[string]string
	Size   int64
	SHA256 string
}

// Open opens the fetched body for reading.
func (f *Fetched) Open() (*os.File, error) {
	if f.Path == "" {
		return nil, Errorf(abi.CodeNotFound, "status %d response has no body", f.Status)
	}
	return os.Open(f.Path)
}

// FetchOption configures a fetch.
type FetchOption func(*abi.FetchRequest)

// Name sets the file name of the body under InDir.
func Name(name string) FetchOption { return func(r *abi.FetchRequest) { r.Name = name } }

// Header adds a request header.
func Header(key, value string) FetchOption {
	return func(r *abi.FetchRequest) {
		if r.Headers == nil {
			r.Headers = map[string]string{}
		}
		r.Headers[key] = value
	}
}

// Head makes the fetch a HEAD request.
func Head() FetchOption { return func(r *abi.FetchRequest) { r.Method = "HEAD" } }

// Fetch asks the host to download url, with the remote's TLS, proxy and credentials, into
// the read-only mount. A response that is not 2xx returns the *Fetched and a *StatusError.
func (s *Sync) Fetch(ctx context.Context, url string, opts ...FetchOption) (*Fetched, error) {
	return fetch(ctx, s.host, s.cancel, url, opts)
}

func fetch(ctx context.Context, h bridge.Host, cancel context.CancelFunc, url string, opts []FetchOption) (*Fetched, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := abi.FetchRequest{URL: url}
	for _, o := range opts {
		o(&req)
	}
	resp, err := h.Fetch(req)
	if err != nil {
		// The host's errors name the URL already.
		return nil, fmt.Errorf("fetch: %w", noteCancel(err, cancel))
	}
	f := &Fetched{Path: resp.Path, Status: resp.Status, Header: resp.Headers, Size: resp.Size, SHA256: resp.SHA256}
	if resp.Status < 200 || resp.Status > 299 {
		return f, &StatusError{URL: url, Status: resp.Status}
	}
	return f, nil
}

// Unit is a content unit with its artifacts and relations, for EmitUnit.
type Unit struct {
	// Content is a value of a registered content type.
	Content   any
	Artifacts []abi.DeclarativeArtifact
	Relations []Relation
}

// Relation links a unit to another unit.
type Relation struct {
	// Name is a relation the unit's content type declared.
	Name string
	// To is a value of a registered content type (its natural key is used) or an
	// abi.ContentRef (see Ref).
	To any
	// Fields, if not nil, marshals to a JSON object with the link's attributes.
	Fields any
}

// Emit declares one unit (a value of a registered content type) with its artifacts. Units
// are sent to the host in batches; the last batch goes when the Sync function returns.
func (s *Sync) Emit(ctx context.Context, content any, artifacts ...abi.DeclarativeArtifact) error {
	return s.EmitUnit(ctx, Unit{Content: content, Artifacts: artifacts})
}

// EmitUnit declares one unit with relations.
func (s *Sync) EmitUnit(ctx context.Context, u Unit) error {
	dc, err := s.p.declarative(u)
	if err != nil {
		return err
	}
	return s.EmitDeclarative(ctx, dc)
}

// EmitDeclarative declares a unit already in wire form (for units of types the plugin
// builds dynamically).
func (s *Sync) EmitDeclarative(ctx context.Context, dc abi.DeclarativeContent) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.batch = append(s.batch, dc)
	s.batchBytes += len(dc.Fields) + 160*len(dc.Artifacts) + 128*len(dc.Relations) + 64
	if len(s.batch) >= emitBatchUnits || s.batchBytes >= emitBatchBytes {
		return s.Flush(ctx)
	}
	return nil
}

// Flush sends the pending batch now.
func (s *Sync) Flush(ctx context.Context) error {
	if len(s.batch) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n := len(s.batch)
	err := s.host.Emit(s.batch)
	s.batch, s.batchBytes = s.batch[:0], 0
	if err != nil {
		return fmt.Errorf("emit %d units: %w", n, noteCancel(err, s.cancel))
	}
	s.emitted += int64(n)
	return nil
}

// Emitted returns the number of units sent to the host so far.
func (s *Sync) Emitted() int64 { return s.emitted }

func (p *plugin) declarative(u Unit) (abi.DeclarativeContent, error) {
	ct, err := p.contentType(u.Content)
	if err != nil {
		return abi.DeclarativeContent{}, err
	}
	fields, err := json.Marshal(u.Content)
	if err != nil {
		return abi.DeclarativeContent{}, fmt.Errorf("marshal %s: %w", ct.Name, err)
	}
	dc := abi.DeclarativeContent{Type: ct.Name, Fields: fields, Artifacts: u.Artifacts}
	for _, r := range u.Relations {
		ref, err := p.ref(r.To)
		if err != nil {
			return dc, fmt.Errorf("%s relation %s: %w", ct.Name, r.Name, err)
		}
		rel := abi.Relation{Name: r.Name, To: ref}
		if r.Fields != nil {
			if rel.Fields, err = json.Marshal(r.Fields); err != nil {
				return dc, fmt.Errorf("%s relation %s fields: %w", ct.Name, r.Name, err)
			}
		}
		dc.Relations = append(dc.Relations, rel)
	}
	return dc, nil
}

// Lookup finds units of typeName by natural key (each key marshals to a JSON object) in
// scope abi.ScopeVersion or abi.ScopeAll.
func (s *Sync) Lookup(ctx context.Context, typeName, scope string, keys ...any) ([]abi.Content, error) {
	return lookup(ctx, s.host, s.cancel, typeName, scope, keys)
}

func lookup(ctx context.Context, h bridge.Host, cancel context.CancelFunc, typeName, scope string, keys []any) ([]abi.Content, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	req := abi.LookupRequest{Type: typeName, Scope: scope}
	for _, k := range keys {
		b, err := json.Marshal(k)
		if err != nil {
			return nil, fmt.Errorf("lookup %s: key: %w", typeName, err)
		}
		req.Keys = append(req.Keys, b)
	}
	out, err := h.Lookup(req)
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", typeName, noteCancel(err, cancel))
	}
	return out, nil
}

// ArtifactExists asks whether the host already stores the artifact with this sha256, and
// its size.
func (s *Sync) ArtifactExists(ctx context.Context, sha256 string) (bool, int64, error) {
	return artifactExists(ctx, s.host, s.cancel, sha256)
}

func artifactExists(ctx context.Context, h bridge.Host, cancel context.CancelFunc, sha256 string) (bool, int64, error) {
	if err := ctx.Err(); err != nil {
		return false, 0, err
	}
	r, err := h.ArtifactStat(abi.ArtifactStatRequest{SHA256: sha256})
	if err != nil {
		return false, 0, fmt.Errorf("artifact %s: %w", sha256, noteCancel(err, cancel))
	}
	return r.Exists, r.Size, nil
}

// ReadArtifact reads at most length bytes (0: up to abi.MaxArtifactReadBytes, which is
// also the most one call returns) of the stored artifact with this sha256 from offset,
// and returns them with the artifact's whole size: artifact_read, ABI 1.1. An artifact
// the host stores no bytes of (on-demand content) is an error of code not_found.
func (s *Sync) ReadArtifact(ctx context.Context, sha256 string, offset, length int64) ([]byte, int64, error) {
	return readArtifact(ctx, s.host, s.cancel, sha256, offset, length)
}

func readArtifact(ctx context.Context, h bridge.Host, cancel context.CancelFunc, sha256 string, offset, length int64) ([]byte, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	r, err := h.ArtifactRead(abi.ArtifactReadRequest{SHA256: sha256, Offset: offset, Length: length})
	if err != nil {
		return nil, 0, fmt.Errorf("read artifact %s: %w", sha256, noteCancel(err, cancel))
	}
	return r.Data, r.Size, nil
}

// Progress reports progress; reports with the same code update each other.
func (s *Sync) Progress(ctx context.Context, r abi.ProgressReport) error {
	return progress(ctx, s.host, s.cancel, r)
}

func progress(ctx context.Context, h bridge.Host, cancel context.CancelFunc, r abi.ProgressReport) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := h.Progress(r); err != nil {
		return fmt.Errorf("progress %s: %w", r.Code, noteCancel(err, cancel))
	}
	return nil
}

// Cancelled asks the host whether the task was cancelled. Host services also fail with
// code "cancelled" then, and the ctx given to the Sync function is cancelled.
func (s *Sync) Cancelled() bool {
	if s.host.Cancelled() {
		s.cancel()
		return true
	}
	return false
}

// SetDetails stores v (marshalled to a JSON object) as the repository's last sync details;
// the next sync reads it with LastSyncDetails.
func (s *Sync) SetDetails(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sync details: %w", err)
	}
	s.resp.Details = b
	return nil
}

// Skip tells the host nothing changed upstream: it creates no new repository version.
func (s *Sync) Skip() { s.resp.Skipped = true }

// KeepMetadata asks the host to keep a fetched file as published metadata of a mirror
// publication, at relativePath.
func (s *Sync) KeepMetadata(f *Fetched, relativePath string) {
	s.resp.Metadata = append(s.resp.Metadata, abi.MetadataFile{RelativePath: relativePath, Path: f.Path})
}

// noteCancel cancels the call's context when the host reports cancellation.
func noteCancel(err error, cancel context.CancelFunc) error {
	if errors.Is(err, abi.NewError(abi.CodeCancelled, "")) && cancel != nil {
		cancel()
	}
	return err
}
