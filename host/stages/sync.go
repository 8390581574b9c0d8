package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/coretask"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/plugin"
	"github.com/pulpo/pulpo/host/pluginhost"
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
	keys := make(map[string][]string, len(types))
	for name, ti := range types {
		keys[name] = ti.NaturalKey
	}
	// Lookups see the latest complete version, as the first stage decides
	// against what the repository holds now.
	h := &syncHost{run: run, dl: dl, Version: &pluginhost.Version{DB: s.DB, Task: t, NaturalKeys: keys,
		Repository: repo.ID, Number: repo.LatestVersion}}
	last, err := s.DB.LastSyncDetails(ctx, repo.ID, remote.ID)
	if err != nil {
		run.Abort(err)
		return fmt.Errorf("last sync details: %w", err)
	}
	res, err := pl.SyncFirstStage(ctx, abi.SyncRequest{
		Remote: abi.Remote{Name: remote.Name, Type: remote.PulpType, URL: remote.URL, Policy: remote.Policy, Fields: remote.Fields},
		Repository: abi.Repository{Name: repo.Name, Type: repo.PulpType, LatestVersion: int64(repo.LatestVersion), Fields: repo.Fields,
			LastSyncDetails: last},
		Mirror: a.Mirror, Options: a.Options,
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
		if err := s.DB.DiscardTaskVersions(ctx, []uuid.UUID{t.ID}); err != nil {
			return err
		}
		s.saveDetails(ctx, t, repo.ID, remote.ID, res.Details)
		return nil
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
	if err := coretask.FinishVersion(ctx, t, repo.ID, a.RepoHref, v.Number, a.ContentTypes, a.RepoKeys, s.OnNewVersion); err != nil {
		return err
	}
	s.saveDetails(ctx, t, repo.ID, remote.ID, res.Details)
	return nil
}

// saveDetails records a successful sync's details for the next sync from
// the same remote. A failure only costs that sync its shortcut, so it is
// logged, not returned: the new version stands.
func (s *Syncer) saveDetails(ctx context.Context, t *tasks.Task, repo, remote uuid.UUID, details json.RawMessage) {
	if err := s.DB.SetLastSyncDetails(ctx, repo, remote, details); err != nil {
		t.Logger().WarnContext(ctx, "saving last sync details", "error", err)
	}
}

// syncHost answers a plugin's host calls during its first stage: fetches and
// emits here, lookups, stats and progress in the version being built.
type syncHost struct {
	*pluginhost.Version
	run *Run
	dl  Downloader
}

var _ plugin.SyncHost = (*syncHost)(nil)

func (h *syncHost) Emit(ctx context.Context, batch []abi.DeclarativeContent) error {
	return h.run.Emit(ctx, batch)
}

func (h *syncHost) Fetch(ctx context.Context, req abi.FetchRequest, w io.Writer) (plugin.FetchResult, error) {
	status, header, err := h.dl.Stream(ctx, req.Method, req.URL, req.Headers, w)
	return plugin.FetchResult{Status: status, Header: header}, err
}
