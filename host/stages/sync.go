package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/tasks"
)

// TaskSync is the name of the sync task.
const TaskSync = "core.sync"

// FirstStager runs a plugin's first stage; *plugin.Plugin implements it.
type FirstStager interface {
	SyncFirstStage(ctx context.Context, req abi.SyncRequest, host plugin.SyncHost) (*plugin.SyncResult, error)
}

// Syncer runs sync tasks.
type Syncer struct {
	DB        *db.DB
	Artifacts *artifact.Store
	TempDir   string
	Log       *slog.Logger
	// Plugin finds a loaded plugin by name.
	Plugin func(name string) (FirstStager, bool)
	// Downloader builds the downloader of a remote.
	Downloader func(db.Remote) (Downloader, error)
	// Types describes every content type, by pulp_type.
	Types map[string]TypeInfo
	// OnNewVersion runs after a sync completed a new version (autopublish).
	OnNewVersion coretask.VersionHook
}

// SyncArgs are the arguments of TaskSync, resolved by the API.
type SyncArgs struct {
	Repository   uuid.UUID           `json:"repository"`
	RepoHref     string              `json:"repository_href"`
	Remote       uuid.UUID           `json:"remote"`
	Mirror       bool                `json:"mirror"`
	Plugin       string              `json:"plugin"`
	Options      json.RawMessage     `json:"options,omitempty"`
	ContentTypes []string            `json:"content_types"`
	RepoKeys     map[string][]string `json:"repo_keys"`
}

// Register adds the sync task to reg.
func (s *Syncer) Register(reg *tasks.Registry) { reg.Register(TaskSync, s.sync) }

func (s *Syncer) sync(ctx context.Context, t *tasks.Task) error {
	var a SyncArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	repo, err := s.DB.GetRepository(ctx, a.Repository)
	if err != nil {
		return fmt.Errorf("repository: %w", err)
	}
	remote, err := s.DB.GetRemote(ctx, a.Remote)
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	pl, ok := s.Plugin(a.Plugin)
	if !ok {
		return fmt.Errorf("plugin %q is not loaded", a.Plugin)
	}
	dl, err := s.Downloader(remote)
	if err != nil {
		return fmt.Errorf("remote %s: %w", remote.Name, err)
	}
	types := map[string]TypeInfo{}
	for _, ct := range a.ContentTypes {
		if ti, ok := s.Types[ct]; ok {
			types[ct] = ti
		}
	}
	v, err := s.DB.NewVersion(ctx, repo.ID, &t.ID, nil)
	if err != nil {
		return fmt.Errorf("new version: %w", err)
	}
	if a.Mirror {
		if err := s.DB.RemoveAllContent(ctx, repo.ID, v.Number); err != nil {
			return err
		}
	}
	p := &Pipeline{DB: s.DB, Artifacts: s.Artifacts, TempDir: s.TempDir, Types: types, RemoteID: remote.ID,
		Downloader: dl, Repository: repo.ID, Version: v.Number, Task: t, Log: t.Logger()}
	run, err := p.Start(ctx)
	if err != nil {
		return err
	}
	h := &syncHost{run: run, dl: dl, db: s.DB, task: t, types: types, repo: repo.ID, latest: repo.LatestVersion, progress: map[string]*tasks.Progress{}}
	res, err := pl.SyncFirstStage(ctx, abi.SyncRequest{
		Remote:     abi.Remote{Name: remote.Name, Type: remote.PulpType, URL: remote.URL, Policy: remote.Policy, Fields: remote.Fields},
		Repository: abi.Repository{Name: repo.Name, Type: repo.PulpType, LatestVersion: int64(repo.LatestVersion), Fields: repo.Fields},
		Mirror:     a.Mirror, Options: a.Options,
	}, h)
	if err != nil {
		run.Abort(err)
		if serr := run.Err(); serr != nil && serr != err {
			return fmt.Errorf("sync: %w", serr) // a stage failed first; the plugin only saw its echo
		}
		return fmt.Errorf("sync: %w", err)
	}
	defer res.Close()
	if err := run.Finish(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if res.Skipped {
		return s.DB.DiscardTaskVersions(ctx, []uuid.UUID{t.ID})
	}
	if a.Mirror {
		n, err := s.DB.CountRemoved(ctx, repo.ID, v.Number)
		if err != nil {
			return err
		}
		un, err := t.Progress(ctx, "unassociating.content", "Un-Associating Content", n)
		if err != nil {
			return err
		}
		if err := un.Increment(ctx, n); err != nil {
			return err
		}
		if err := un.Done(ctx); err != nil {
			return err
		}
	}
	return coretask.FinishVersion(ctx, t, repo.ID, a.RepoHref, v.Number, a.ContentTypes, a.RepoKeys, s.OnNewVersion)
}

// syncHost answers a plugin's host calls during its first stage.
type syncHost struct {
	run    *Run
	dl     Downloader
	db     *db.DB
	task   *tasks.Task
	types  map[string]TypeInfo
	repo   uuid.UUID
	latest int

	mu       sync.Mutex
	progress map[string]*tasks.Progress
}

var _ plugin.SyncHost = (*syncHost)(nil)

func (h *syncHost) Emit(ctx context.Context, batch []abi.DeclarativeContent) error {
	return h.run.Emit(ctx, batch)
}

func (h *syncHost) Fetch(ctx context.Context, req abi.FetchRequest, w io.Writer) (plugin.FetchResult, error) {
	status, header, err := h.dl.Stream(ctx, req.URL, req.Headers, w)
	return plugin.FetchResult{Status: status, Header: header}, err
}

func (h *syncHost) Lookup(ctx context.Context, req abi.LookupRequest) ([]abi.Content, error) {
	ti, ok := h.types[req.Type]
	if !ok {
		return nil, fmt.Errorf("content type %s is not part of this repository", req.Type)
	}
	keys := make([]string, 0, len(req.Keys))
	for _, k := range req.Keys {
		nk, err := NaturalKey(k, ti.NaturalKey)
		if err != nil {
			return nil, err
		}
		keys = append(keys, nk)
	}
	var scope *db.VersionRef
	if req.Scope != abi.ScopeAll {
		scope = &db.VersionRef{Repository: h.repo, Number: h.latest}
	}
	found, err := h.db.ContentByKeys(ctx, req.Type, keys, scope)
	if err != nil {
		return nil, err
	}
	out := make([]abi.Content, len(found))
	for i, c := range found {
		out[i] = abi.Content{Type: c.PulpType, Fields: c.Fields}
	}
	return out, nil
}

func (h *syncHost) StatArtifact(ctx context.Context, sha256 string) (int64, bool, error) {
	a, err := h.db.ArtifactBySHA256(ctx, sha256)
	if err == db.ErrNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	return a.Size, true, nil
}

func (h *syncHost) Progress(ctx context.Context, r abi.ProgressReport) error {
	h.mu.Lock()
	p, ok := h.progress[r.Code]
	h.mu.Unlock()
	if !ok {
		total := r.Total
		if total == 0 {
			total = -1
		}
		var err error
		if p, err = h.task.Progress(ctx, r.Code, r.Message, total); err != nil {
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
