// Package coretask holds the code of Pulp's core tasks: modifying
// repositories, committing uploads, deleting repositories and versions, and
// orphan cleanup. The API dispatches them by name with the argument structs
// defined here; each task gets everything it needs in its arguments.
package coretask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/pulpo/pulpo/host/artifact"
	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/href"
	"github.com/pulpo/pulpo/host/storage"
	"github.com/pulpo/pulpo/host/tasks"
)

// Task names.
const (
	Modify           = "core.modify"
	CommitUpload     = "core.commit_upload"
	UpdateRepository = "core.update_repository"
	DeleteRepository = "core.delete_repository"
	DeleteVersion    = "core.delete_version"
	OrphanCleanup    = "core.orphan_cleanup"
	UpdateRemote     = "core.update_remote"
	DeleteRemote     = "core.delete_remote"
)

// Deps are what core tasks use.
type Deps struct {
	DB        *db.DB
	Storage   storage.Driver
	Artifacts *artifact.Store
	// OrphanProtection is the default orphan_protection_time.
	OrphanProtection time.Duration
	// OnNewVersion runs after a task completed a new repository version.
	OnNewVersion VersionHook
}

// VersionHook runs in the task that completed a new repository version, e.g.
// to publish it; its error fails the task but leaves the version.
type VersionHook func(ctx context.Context, t *tasks.Task, repo uuid.UUID, number int) error

// Register adds every core task to reg.
func Register(reg *tasks.Registry, d Deps) {
	reg.Register(Modify, d.modify)
	reg.Register(CommitUpload, d.commitUpload)
	reg.Register(UpdateRepository, d.updateRepository)
	reg.Register(DeleteRepository, d.deleteRepository)
	reg.Register(DeleteVersion, d.deleteVersion)
	reg.Register(OrphanCleanup, d.orphanCleanup)
	reg.Register(UpdateRemote, d.updateRemote)
	reg.Register(DeleteRemote, d.deleteRemote)
	reg.Register(CreateDistribution, d.createDistribution)
	reg.Register(UpdateDistribution, d.updateDistribution)
	reg.Register(DeleteDistribution, d.deleteDistribution)
	reg.Register(CreateContent, d.createContent)
}

// ModifyArgs add and remove content in a new repository version.
type ModifyArgs struct {
	Repository   uuid.UUID   `json:"repository"`
	RepoHref     string      `json:"repository_href"`
	Add          []uuid.UUID `json:"add"`
	Remove       []uuid.UUID `json:"remove"`
	RemoveAll    bool        `json:"remove_all"`
	BaseVersion  *int        `json:"base_version"`
	ContentTypes []string    `json:"content_types"`
	// RepoKeys maps content types to their repository key fields.
	RepoKeys map[string][]string `json:"repo_keys"`
}

func (d Deps) modify(ctx context.Context, t *tasks.Task) error {
	var a ModifyArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	v, err := d.DB.NewVersion(ctx, a.Repository, &t.ID, a.BaseVersion)
	if err != nil {
		return fmt.Errorf("new version: %w", err)
	}
	if a.RemoveAll {
		err = d.DB.RemoveAllContent(ctx, a.Repository, v.Number)
	} else if len(a.Remove) > 0 {
		err = d.DB.RemoveContent(ctx, a.Repository, v.Number, a.Remove)
	}
	if err != nil {
		return fmt.Errorf("remove content: %w", err)
	}
	if len(a.Add) > 0 {
		if err := d.DB.AddContent(ctx, a.Repository, v.Number, a.Add); err != nil {
			return fmt.Errorf("add content: %w", err)
		}
	}
	return FinishVersion(ctx, t, a.Repository, a.RepoHref, v.Number, a.ContentTypes, a.RepoKeys, d.OnNewVersion)
}

// FinishVersion validates and completes an incomplete version: repository
// keys are enforced, content types checked, and the version is recorded as
// created (or deleted when it changed nothing).
func FinishVersion(ctx context.Context, t *tasks.Task, repo uuid.UUID, repoHref string, n int, allowed []string, repoKeys map[string][]string, onNew VersionHook) error {
	d := t.DB()
	types, err := d.VersionContentTypes(ctx, repo, n)
	if err != nil {
		return err
	}
	for _, typ := range types {
		if !contains(allowed, typ) {
			return fmt.Errorf("content of type %s cannot be added to this repository (allowed: %v)", typ, allowed)
		}
		if keys := repoKeys[typ]; len(keys) > 0 {
			if err := d.ReplaceDuplicates(ctx, repo, n, typ, keys); err != nil {
				return err
			}
		}
	}
	v, err := d.FinalizeVersion(ctx, repo, n)
	if err != nil {
		return err
	}
	if v == nil {
		return nil
	}
	if err := t.Created(ctx, href.Version(repoHref, v.Number)); err != nil {
		return err
	}
	if onNew != nil {
		return onNew(ctx, t, repo, v.Number)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// CommitUploadArgs turn an upload into an artifact.
type CommitUploadArgs struct {
	Upload uuid.UUID `json:"upload"`
	SHA256 string    `json:"sha256"`
}

func (d Deps) commitUpload(ctx context.Context, t *tasks.Task) error {
	var a CommitUploadArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	art, err := d.uploadToArtifact(ctx, t, a.Upload, a.SHA256)
	if err != nil {
		return err
	}
	return t.Created(ctx, href.Flat(href.Artifacts, art.ID))
}

// chunkReader reads an upload's chunks in order, opening one at a time.
type chunkReader struct {
	ctx    context.Context
	st     storage.Driver
	chunks []db.UploadChunk
	cur    io.ReadCloser
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if len(c.chunks) == 0 {
				return 0, io.EOF
			}
			r, err := c.st.Open(c.ctx, c.chunks[0].File)
			if err != nil {
				return 0, fmt.Errorf("open chunk at %d: %w", c.chunks[0].Offset, err)
			}
			c.cur, c.chunks = r, c.chunks[1:]
		}
		n, err := c.cur.Read(p)
		if err == io.EOF {
			c.cur.Close()
			c.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// UpdateRepositoryArgs carry the full, validated new state of a repository.
type UpdateRepositoryArgs struct {
	Repository         uuid.UUID         `json:"repository"`
	Name               string            `json:"name"`
	Description        *string           `json:"description"`
	PulpLabels         map[string]string `json:"pulp_labels"`
	RetainRepoVersions *int              `json:"retain_repo_versions"`
	Remote             *uuid.UUID        `json:"remote"`
	Fields             json.RawMessage   `json:"fields"`
}

func (d Deps) updateRepository(ctx context.Context, t *tasks.Task) error {
	var a UpdateRepositoryArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	r, err := d.DB.GetRepository(ctx, a.Repository)
	if err != nil {
		return err
	}
	r.Name, r.Description, r.PulpLabels, r.RetainRepoVersions, r.RemoteID, r.Fields =
		a.Name, a.Description, a.PulpLabels, a.RetainRepoVersions, a.Remote, a.Fields
	if _, err := d.DB.UpdateRepository(ctx, r); err != nil {
		var ce *db.ConstraintError
		if errors.As(err, &ce) && errors.Is(err, db.ErrConflict) {
			return fmt.Errorf("a repository named %q already exists", a.Name)
		}
		return err
	}
	return nil
}

// IDArgs name one resource.
type IDArgs struct {
	ID uuid.UUID `json:"id"`
}

func (d Deps) deleteRepository(ctx context.Context, t *tasks.Task) error {
	var a IDArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	return d.DB.DeleteRepository(ctx, a.ID)
}

// DeleteVersionArgs name a repository version.
type DeleteVersionArgs struct {
	Repository uuid.UUID `json:"repository"`
	Number     int       `json:"number"`
}

func (d Deps) deleteVersion(ctx context.Context, t *tasks.Task) error {
	var a DeleteVersionArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	return d.DB.DeleteVersion(ctx, a.Repository, a.Number)
}

// OrphanCleanupArgs select what orphan cleanup may delete.
type OrphanCleanupArgs struct {
	// Content limits the cleanup to these content units (nil: all orphans).
	Content []uuid.UUID `json:"content"`
	// ProtectionMinutes overrides the default protection time; nil keeps it.
	ProtectionMinutes *int `json:"orphan_protection_time"`
}

func (d Deps) orphanCleanup(ctx context.Context, t *tasks.Task) error {
	var a OrphanCleanupArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	protection := d.OrphanProtection
	if a.ProtectionMinutes != nil {
		protection = time.Duration(*a.ProtectionMinutes) * time.Minute
	}
	cp, err := t.Progress(ctx, "clean-up.content", "Clean up orphan Content", -1)
	if err != nil {
		return err
	}
	n, err := d.DB.DeleteOrphanContent(ctx, protection, a.Content)
	if err != nil {
		return fmt.Errorf("delete orphan content: %w", err)
	}
	if err := cp.Increment(ctx, n); err != nil {
		return err
	}
	if err := cp.Done(ctx); err != nil {
		return err
	}
	ap, err := t.Progress(ctx, "clean-up.artifacts", "Clean up orphan Artifacts", -1)
	if err != nil {
		return err
	}
	for {
		arts, err := d.DB.DeleteOrphanArtifacts(ctx, protection, 1000)
		if err != nil {
			return fmt.Errorf("delete orphan artifacts: %w", err)
		}
		if len(arts) == 0 {
			break
		}
		// Rows first, then files: a failed file delete leaves a stray file,
		// never a row without its file.
		for _, art := range arts {
			if err := d.Storage.Delete(ctx, art.File); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Logger().WarnContext(ctx, "delete artifact file", "file", art.File, "err", err)
			}
		}
		if err := ap.Increment(ctx, int64(len(arts))); err != nil {
			return err
		}
	}
	return ap.Done(ctx)
}

// Distribution task names. Every distribution write locks the distributions
// master resource, so base path and name checks see each other's results.
const (
	CreateDistribution = "core.create_distribution"
	UpdateDistribution = "core.update_distribution"
	DeleteDistribution = "core.delete_distribution"
)

// DistributionArgs carry a distribution validated by the API and its href.
type DistributionArgs struct {
	Distribution db.Distribution `json:"distribution"`
	Href         string          `json:"href"`
}

func (d Deps) createDistribution(ctx context.Context, t *tasks.Task) error {
	var a DistributionArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	if _, err := d.DB.CreateDistribution(ctx, a.Distribution); err != nil {
		return distributionErr(err)
	}
	return t.Created(ctx, a.Href)
}

func (d Deps) updateDistribution(ctx context.Context, t *tasks.Task) error {
	var a DistributionArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	_, err := d.DB.UpdateDistribution(ctx, a.Distribution)
	return distributionErr(err)
}

func (d Deps) deleteDistribution(ctx context.Context, t *tasks.Task) error {
	var a IDArgs
	if err := t.Decode(&a); err != nil {
		return err
	}
	return d.DB.DeleteDistribution(ctx, a.ID)
}

// distributionErr names the field a unique constraint refused.
func distributionErr(err error) error {
	var ce *db.ConstraintError
	if errors.As(err, &ce) && errors.Is(err, db.ErrConflict) {
		switch ce.Constraint {
		case "distributions_base_path_key":
			return fmt.Errorf("base_path: this base path is taken by another distribution: %w", err)
		case "distributions_name_key":
			return fmt.Errorf("name: this name is taken by another distribution: %w", err)
		}
	}
	return err
}
