package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/abi"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/stages"
	"github.com/pulpo/pulpo/host/tasks"
)

// Pull-through, as pulp_container's: a distribution with a remote and no
// repository serves every upstream repository under its base path. The first
// pull of <base_path>/<upstream name> makes a cache for that name (a remote
// copied from the distribution's, on_demand, a repository and a distribution
// at the full name); a manifest the cache lacks, by tag or digest, is added to
// what the cache's remote syncs and synced (additively, under the
// repository's lock, as any sync) before the pull is answered. Blobs stay at
// the upstream until first pulled, then stream from it while being stored.
// A tag is served from the cache for PullThroughTTL, then a pull of it syncs
// again (every ref the cache holds); a failed sync leaves the cache serving.

// pullThroughTarget is the cache a name pulls through, once made.
type pullThroughTarget struct {
	parent   *dist // the pull-through distribution, nil when the cache exists
	cache    *dist // the cache's distribution, nil before the first pull
	upstream string
}

// pullThroughOf finds the pull-through behind name: the cache at name, or the
// longest base path of a pull-through distribution that name is under.
func (h *Handler) pullThroughOf(t *distTable, name string) (pullThroughTarget, bool) {
	if d := t.byName[name]; d != nil {
		if d.RemoteID != nil && d.RepositoryID != nil && d.VersionID == nil {
			return pullThroughTarget{cache: d}, true
		}
		return pullThroughTarget{}, false
	}
	for i := strings.LastIndexByte(name, '/'); i > 0; i = strings.LastIndexByte(name[:i], '/') {
		if d := t.byName[name[:i]]; d != nil {
			if d.RemoteID != nil && d.RepositoryID == nil {
				return pullThroughTarget{parent: d, upstream: name[i+1:]}, true
			}
			return pullThroughTarget{}, false
		}
	}
	return pullThroughTarget{}, false
}

// pullThrough syncs ref of name from its upstream when name is behind a
// pull-through distribution, and reports whether it did; the caller then
// resolves again. The client must be allowed to pull name.
func (h *Handler) pullThrough(r *http.Request, name, ref string) (bool, error) {
	ctx := r.Context()
	t, err := h.dists(ctx)
	if err != nil {
		return false, err
	}
	pt, ok := h.pullThroughOf(t, name)
	if !ok {
		return false, nil
	}
	d := pt.cache
	if d == nil {
		d = pt.parent
	}
	if err := h.access.Allow(r, AccessRequest{Name: name, Action: ActionPull, Exists: true, Private: d.Private}); err != nil {
		return false, err
	}
	var c db.PullThroughCache
	if pt.cache != nil {
		c = db.PullThroughCache{Repository: *pt.cache.RepositoryID, RepoType: pt.cache.RepositoryType, Remote: *pt.cache.RemoteID}
	} else {
		if checkName(name) != nil {
			return false, nil
		}
		if c, err = h.d.DB.EnsurePullThroughCache(ctx, pt.parent.ID, name, pt.upstream, h.roles.DistributionType, h.syncRepoTypes()); err != nil {
			if errors.Is(err, db.ErrWrongType) {
				return false, nil
			}
			return false, fmt.Errorf("pull-through cache %s: %w", name, err)
		}
		h.cache.flush() // the new distribution
		h.log.InfoContext(ctx, "pull-through cache ready", "name", name, "upstream", pt.upstream, "repository", c.Repository)
	}
	if err := h.d.DB.IncludeInPullThrough(ctx, c.Remote, ref); err != nil {
		return false, fmt.Errorf("pull-through %s: %w", name, err)
	}
	if err := h.syncCache(ctx, c); err != nil {
		return false, err
	}
	h.cache.flush()
	return true, nil
}

// staleCache reports whether name is a pull-through cache this process has not
// synced for PullThroughTTL.
func (h *Handler) staleCache(ctx context.Context, name string) bool {
	t, err := h.dists(ctx)
	if err != nil {
		return false
	}
	d := t.byName[name]
	if d == nil || d.RemoteID == nil || d.RepositoryID == nil || d.VersionID != nil {
		return false
	}
	at, ok := h.refreshed.Load(*d.RepositoryID)
	return !ok || time.Since(at.(time.Time)) >= h.d.PullThroughTTL
}

// syncRepoTypes maps each remote type of the plugin to the repository type
// syncing from it (the push repository type syncs from none).
func (h *Handler) syncRepoTypes() map[string]string {
	out := map[string]string{}
	for _, rt := range h.d.Describe.RepositoryTypes {
		for _, remote := range rt.RemoteTypes {
			if _, ok := out[remote]; !ok && rt.Name != h.roles.PushRepositoryType {
				out[remote] = rt.Name
			}
		}
	}
	return out
}

// syncCache runs an additive sync of the cache and waits for it.
func (h *Handler) syncCache(ctx context.Context, c db.PullThroughCache) error {
	idx := slices.IndexFunc(h.d.Describe.RepositoryTypes, func(rt abi.RepositoryType) bool { return rt.Name == c.RepoType })
	if idx < 0 {
		return fmt.Errorf("pull-through: repository type %s is not the plugin's", c.RepoType)
	}
	rt := h.d.Describe.RepositoryTypes[idx]
	repoHref := typedHref(href.Repositories, c.RepoType, c.Repository)
	keys := map[string][]string{}
	for _, ct := range rt.ContentTypes {
		keys[ct] = h.repoKeys[ct]
	}
	args := stages.SyncArgs{Repository: c.Repository, RepoHref: repoHref, Remote: c.Remote, Plugin: h.d.Describe.Name,
		ContentTypes: rt.ContentTypes, RepoKeys: keys}
	remoteHref := ""
	if len(rt.RemoteTypes) > 0 {
		remoteHref = typedHref(href.Remotes, rt.RemoteTypes[0], c.Remote)
	}
	spec := tasks.Spec{Name: stages.TaskSync, Args: args, Exclusive: []string{repoHref}}
	if remoteHref != "" {
		spec.Shared = []string{remoteHref}
	}
	task, err := h.d.Tasks.Dispatch(ctx, spec)
	if err != nil {
		return fmt.Errorf("pull-through sync: %w", err)
	}
	// Failed or not, the upstream is not asked again for PullThroughTTL.
	defer h.refreshed.Store(c.Repository, time.Now())
	if !slices.Contains(db.FinalTaskStates, task.State) {
		if task, err = h.d.Tasks.WaitTask(ctx, task.ID); err != nil {
			return fmt.Errorf("pull-through sync: wait for task %s: %w", task.ID, err)
		}
	}
	if task.State != db.TaskCompleted {
		// The upstream's answer (unknown name, refused credentials...) is the
		// client's business: the name stays unknown, the reason logged.
		h.log.WarnContext(ctx, "pull-through sync failed", "repository", c.Repository, "task", task.ID, "error", string(task.Error))
	}
	return nil
}

// typedHref is the API href of an object of a plugin type "plugin.endpoint".
func typedHref(master, pulpType string, id uuid.UUID) string {
	pl, endpoint, _ := strings.Cut(pulpType, ".")
	return href.Typed(master, pl, endpoint, id)
}
