package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Publication is a row of publications: a plugin's layout of one repository
// version. Only complete publications are served.
type Publication struct {
	ID                  uuid.UUID
	CreatedAt           time.Time
	UpdatedAt           time.Time
	PulpType            string
	RepositoryVersionID uuid.UUID
	Complete            bool
	PassThrough         bool
	TaskID              *uuid.UUID
	Fields              json.RawMessage
	// RepositoryID, RepositoryType and VersionNumber locate the version, for hrefs.
	RepositoryID   uuid.UUID
	RepositoryType string
	VersionNumber  int
}

// PublishedArtifact is one path a publication serves beyond pass-through:
// either metadata the plugin wrote (ArtifactID) or a unit's artifact laid out
// at another path (ContentArtifactID).
type PublishedArtifact struct {
	RelativePath      string
	ContentArtifactID *uuid.UUID
	ArtifactID        *uuid.UUID
}

const publicationColumns = `p.id, p.created_at, p.updated_at, p.pulp_type, p.repository_version_id, p.complete,
	p.pass_through, p.task_id, p.fields, v.repository_id, r.pulp_type, v.number`

const publicationFrom = `publications p JOIN repository_versions v ON v.id = p.repository_version_id
	JOIN repositories r ON r.id = v.repository_id`

func scanPublication(row pgx.Row) (Publication, error) {
	var p Publication
	err := row.Scan(&p.ID, &p.CreatedAt, &p.UpdatedAt, &p.PulpType, &p.RepositoryVersionID, &p.Complete,
		&p.PassThrough, &p.TaskID, &p.Fields, &p.RepositoryID, &p.RepositoryType, &p.VersionNumber)
	return p, translate(err)
}

// CreatePublication inserts an incomplete publication of a version, owned by
// taskID (failing that task discards it).
func (d *DB) CreatePublication(ctx context.Context, pulpType string, versionID uuid.UUID, fields json.RawMessage, taskID *uuid.UUID) (Publication, error) {
	if len(fields) == 0 {
		fields = json.RawMessage("{}")
	}
	id := NewID()
	if _, err := d.pool.Exec(ctx, `INSERT INTO publications (id, pulp_type, repository_version_id, fields, task_id)
		VALUES ($1, $2, $3, $4, $5)`, id, pulpType, versionID, fields, taskID); err != nil {
		return Publication{}, translate(err)
	}
	return d.GetPublication(ctx, id)
}

// AddPublishedArtifacts records paths of an incomplete publication in one
// statement; a path given twice is ErrConflict.
func (d *DB) AddPublishedArtifacts(ctx context.Context, pubID uuid.UUID, items []PublishedArtifact) error {
	if len(items) == 0 {
		return nil
	}
	paths := make([]string, len(items))
	cas := make([]*uuid.UUID, len(items))
	arts := make([]*uuid.UUID, len(items))
	for i, it := range items {
		paths[i], cas[i], arts[i] = it.RelativePath, it.ContentArtifactID, it.ArtifactID
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO published_artifacts (publication_id, relative_path, content_artifact_id, artifact_id)
		SELECT $1, * FROM unnest($2::text[], $3::uuid[], $4::uuid[])`, pubID, paths, cas, arts)
	return translate(err)
}

// CompletePublication marks a publication served.
func (d *DB) CompletePublication(ctx context.Context, id uuid.UUID, passThrough bool) (Publication, error) {
	tag, err := d.pool.Exec(ctx, `UPDATE publications SET complete = true, pass_through = $2, updated_at = now()
		WHERE id = $1 AND NOT complete`, id, passThrough)
	if err != nil {
		return Publication{}, translate(err)
	}
	if tag.RowsAffected() == 0 {
		return Publication{}, ErrNotFound
	}
	return d.GetPublication(ctx, id)
}

// GetPublication reads one publication, complete or not.
func (d *DB) GetPublication(ctx context.Context, id uuid.UUID) (Publication, error) {
	return scanPublication(d.pool.QueryRow(ctx, "SELECT "+publicationColumns+" FROM "+publicationFrom+" WHERE p.id = $1", id))
}

// LatestPublication is the newest complete publication of a version.
func (d *DB) LatestPublication(ctx context.Context, versionID uuid.UUID) (Publication, error) {
	return scanPublication(d.pool.QueryRow(ctx, "SELECT "+publicationColumns+" FROM "+publicationFrom+`
		WHERE p.repository_version_id = $1 AND p.complete ORDER BY p.created_at DESC, p.id DESC LIMIT 1`, versionID))
}

// DeletePublication deletes a publication; distributions serving it serve nothing.
func (d *DB) DeletePublication(ctx context.Context, id uuid.UUID) error {
	return d.deleteByID(ctx, "publications", id)
}

var publicationList = listSpec{
	from: publicationFrom,
	columns: map[string]string{
		"pulp_id": "p.id", "pulp_created": "p.created_at", "pulp_last_updated": "p.updated_at",
		"pulp_type": "p.pulp_type", "repository": "v.repository_id", "complete": "p.complete",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"repository_version": func(f Filter, arg func(any) string) (string, error) {
			v, ok := f.Value.(VersionRef)
			if !ok {
				return "", fmt.Errorf("%w: %s needs a repository version", ErrBadFilter, f.Field)
			}
			return "v.repository_id = " + arg(v.Repository) + " AND v.number = " + arg(v.Number), nil
		},
	},
	idExpr: "p.id",
}

// ListPublications lists publications; callers filter on complete.
func (d *DB) ListPublications(ctx context.Context, p ListParams) (Page[Publication], error) {
	return listRows(ctx, d.pool, publicationList, publicationColumns, p, scanPublication)
}
