// Package pluginhost answers the host functions a plugin may call about one
// repository version while a task runs: content lookups, artifact stats and
// progress reports. The sync pipeline and the publish task both use it.
// Artifacts answers artifact_read for every call of every plugin.
package pluginhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

// Version answers lookups in one repository version and records progress on
// the task; it implements plugin.Lookuper, plugin.ArtifactStatter and
// plugin.ProgressReporter.
type Version struct {
	DB   *db.DB
	Task *tasks.Task
	// NaturalKeys are the natural-key fields of the content types the
	// repository may hold; lookups of other types are refused.
	NaturalKeys map[string][]string
	Repository  uuid.UUID
	Number      int

	mu       sync.Mutex
	progress map[string]*tasks.Progress
}

// Lookup finds units by natural key, in the version or (scope "all") anywhere.
func (h *Version) Lookup(ctx context.Context, req abi.LookupRequest) ([]abi.Content, error) {
	nk, ok := h.NaturalKeys[req.Type]
	if !ok {
		return nil, fmt.Errorf("content type %s is not part of this repository", req.Type)
	}
	keys := make([]string, 0, len(req.Keys))
	for _, k := range req.Keys {
		key, err := db.NaturalKey(k, nk)
		if err != nil {
			return nil, err
		}
		keys = append(keys, key)
	}
	var scope *db.VersionRef
	if req.Scope != abi.ScopeAll {
		scope = &db.VersionRef{Repository: h.Repository, Number: h.Number}
	}
	found, err := h.DB.ContentByKeys(ctx, req.Type, keys, scope)
	if err != nil {
		return nil, err
	}
	return Contents(ctx, h.DB, found)
}

// Contents turns units found for a content_lookup into the ABI's Content, with
// their artifacts (spec 8.3). Every host answering lookups (tasks, live routes,
// the registry's uploads) goes through it, so they answer alike.
func Contents(ctx context.Context, d *db.DB, found []db.Content) ([]abi.Content, error) {
	ids := make([]uuid.UUID, len(found))
	for i, c := range found {
		ids[i] = c.ID
	}
	arts, err := d.UnitArtifacts(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]abi.Content, len(found))
	for i, c := range found {
		out[i] = abi.Content{Type: c.PulpType, Fields: c.Fields}
		for _, a := range arts[c.ID] {
			out[i].Artifacts = append(out[i].Artifacts, abi.ContentArtifact{
				RelativePath: a.RelativePath, SHA256: a.SHA256, Size: a.Size, Downloaded: a.Downloaded})
		}
	}
	return out, nil
}

// StatArtifact tells whether an artifact is stored, and its size.
func (h *Version) StatArtifact(ctx context.Context, sha256 string) (int64, bool, error) {
	return StatArtifact(ctx, h.DB, sha256)
}

// StatArtifact answers artifact_stat: whether an artifact is stored, and its size.
func StatArtifact(ctx context.Context, d *db.DB, sha256 string) (int64, bool, error) {
	a, err := d.ArtifactBySHA256(ctx, sha256)
	if errors.Is(err, db.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return a.Size, true, nil
}

// Artifacts answers artifact_read from the artifact store; it implements
// plugin.ArtifactReader.
type Artifacts struct {
	DB      *db.DB
	Storage storage.Driver
}

// ReadArtifact returns at most length bytes of a stored artifact from offset, and the
// artifact's size. An artifact the host has no bytes of (on-demand content not fetched
// yet) is not_found; an offset past the end is invalid_input.
func (a Artifacts) ReadArtifact(ctx context.Context, sha256 string, offset, length int64) ([]byte, int64, error) {
	art, err := a.DB.ArtifactBySHA256(ctx, sha256)
	if errors.Is(err, db.ErrNotFound) {
		return nil, 0, abi.NewError(abi.CodeNotFound, "artifact "+sha256+" is not stored")
	}
	if err != nil {
		return nil, 0, err
	}
	r, err := a.Storage.Open(ctx, art.File)
	if errors.Is(err, storage.ErrNotFound) {
		// The row without its bytes is a damaged store (repair finds it); for the
		// plugin it is the same as bytes never fetched.
		return nil, 0, abi.NewError(abi.CodeNotFound, "artifact "+sha256+" has no bytes in storage")
	}
	if err != nil {
		return nil, 0, err
	}
	defer r.Close()
	size := r.Size()
	if offset > size {
		return nil, size, abi.NewError(abi.CodeInvalidInput, fmt.Sprintf("offset %d is past the end of artifact %s (%d bytes)", offset, sha256, size))
	}
	if _, err := r.Seek(offset, io.SeekStart); err != nil {
		return nil, size, fmt.Errorf("artifact %s: %w", sha256, err)
	}
	buf := make([]byte, min(length, size-offset))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, size, fmt.Errorf("artifact %s: %w", sha256, err)
	}
	return buf, size, nil
}

// Progress records a plugin's progress report on the task, one report per code.
func (h *Version) Progress(ctx context.Context, r abi.ProgressReport) error {
	h.mu.Lock()
	if h.progress == nil {
		h.progress = map[string]*tasks.Progress{}
	}
	p, ok := h.progress[r.Code]
	h.mu.Unlock()
	if !ok {
		total := r.Total
		if total == 0 {
			total = -1
		}
		var err error
		if p, err = h.Task.Progress(ctx, r.Code, r.Message, total); err != nil {
			return err
		}
		h.mu.Lock()
		h.progress[r.Code] = p
		h.mu.Unlock()
	}
	if r.Total > 0 {
		if err := p.SetTotal(ctx, r.Total); err != nil {
			return err
		}
	}
	if err := p.SetDone(ctx, r.Done); err != nil {
		return err
	}
	if r.State == "completed" {
		return p.Done(ctx)
	}
	return nil
}
