package db

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Distribution is a row of distributions: it serves, under BasePath, at most
// one of a repository's latest version, a fixed version or a publication.
type Distribution struct {
	ID                  uuid.UUID
	CreatedAt           time.Time
	UpdatedAt           time.Time
	PulpType            string
	Name                string
	BasePath            string
	PulpLabels          map[string]string
	Hidden              bool
	ContentGuardID      *uuid.UUID
	RepositoryID        *uuid.UUID
	RepositoryVersionID *uuid.UUID
	PublicationID       *uuid.UUID
	RemoteID            *uuid.UUID
	Fields              json.RawMessage
	// Refs describe the referenced objects, for their hrefs; writes ignore them.
	Refs DistributionRefs `json:"-"`
}

// DistributionRefs are the types and locations of a distribution's references.
type DistributionRefs struct {
	GuardType, RepositoryType, PublicationType, RemoteType string
	// The served version's repository, its type and the version's number.
	VersionRepository     *uuid.UUID
	VersionRepositoryType string
	VersionNumber         int
}

// distributionColumns ends with the references' types, read by subselects
// that also work in RETURNING.
const distributionColumns = `id, created_at, updated_at, pulp_type, name, base_path, pulp_labels, hidden,
	content_guard_id, repository_id, repository_version_id, publication_id, remote_id, fields,
	coalesce((SELECT g.pulp_type FROM content_guards g WHERE g.id = distributions.content_guard_id), ''),
	coalesce((SELECT r.pulp_type FROM repositories r WHERE r.id = distributions.repository_id), ''),
	coalesce((SELECT p.pulp_type FROM publications p WHERE p.id = distributions.publication_id), ''),
	(SELECT v.repository_id FROM repository_versions v WHERE v.id = distributions.repository_version_id),
	coalesce((SELECT r.pulp_type FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
		WHERE v.id = distributions.repository_version_id), ''),
	coalesce((SELECT v.number FROM repository_versions v WHERE v.id = distributions.repository_version_id), 0),
	coalesce((SELECT m.pulp_type FROM remotes m WHERE m.id = distributions.remote_id), '')`

func scanDistribution(row pgx.Row) (Distribution, error) {
	var d Distribution
	err := row.Scan(&d.ID, &d.CreatedAt, &d.UpdatedAt, &d.PulpType, &d.Name, &d.BasePath, &d.PulpLabels,
		&d.Hidden, &d.ContentGuardID, &d.RepositoryID, &d.RepositoryVersionID, &d.PublicationID, &d.RemoteID,
		&d.Fields, &d.Refs.GuardType, &d.Refs.RepositoryType, &d.Refs.PublicationType, &d.Refs.VersionRepository,
		&d.Refs.VersionRepositoryType, &d.Refs.VersionNumber, &d.Refs.RemoteType)
	return d, translate(err)
}

func (x *Distribution) normalize() {
	if x.PulpLabels == nil {
		x.PulpLabels = map[string]string{}
	}
	if len(x.Fields) == 0 {
		x.Fields = json.RawMessage("{}")
	}
}

// CreateDistribution inserts a distribution; a taken name or base path is
// ErrConflict (a *ConstraintError naming the constraint).
func (d *DB) CreateDistribution(ctx context.Context, x Distribution) (Distribution, error) {
	x.normalize()
	if x.ID == uuid.Nil {
		x.ID = NewID()
	}
	return scanDistribution(d.pool.QueryRow(ctx, `INSERT INTO distributions (id, pulp_type, name, base_path,
		pulp_labels, hidden, content_guard_id, repository_id, repository_version_id, publication_id, remote_id, fields)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING `+distributionColumns,
		x.ID, x.PulpType, x.Name, x.BasePath, x.PulpLabels, x.Hidden, x.ContentGuardID, x.RepositoryID,
		x.RepositoryVersionID, x.PublicationID, x.RemoteID, x.Fields))
}

// GetDistribution reads one distribution.
func (d *DB) GetDistribution(ctx context.Context, id uuid.UUID) (Distribution, error) {
	return scanDistribution(d.pool.QueryRow(ctx, "SELECT "+distributionColumns+" FROM distributions WHERE id = $1", id))
}

// UpdateDistribution writes every mutable field of x.
func (d *DB) UpdateDistribution(ctx context.Context, x Distribution) (Distribution, error) {
	x.normalize()
	return scanDistribution(d.pool.QueryRow(ctx, `UPDATE distributions SET name = $2, base_path = $3,
		pulp_labels = $4, hidden = $5, content_guard_id = $6, repository_id = $7, repository_version_id = $8,
		publication_id = $9, remote_id = $10, fields = $11, updated_at = now()
		WHERE id = $1 RETURNING `+distributionColumns,
		x.ID, x.Name, x.BasePath, x.PulpLabels, x.Hidden, x.ContentGuardID, x.RepositoryID,
		x.RepositoryVersionID, x.PublicationID, x.RemoteID, x.Fields))
}

// DeleteDistribution deletes a distribution.
func (d *DB) DeleteDistribution(ctx context.Context, id uuid.UUID) error {
	return d.deleteByID(ctx, "distributions", id)
}

var distributionList = listSpec{
	from: "distributions",
	columns: map[string]string{
		"pulp_id": "id", "pulp_created": "created_at", "pulp_last_updated": "updated_at",
		"pulp_type": "pulp_type", "name": "name", "base_path": "base_path", "hidden": "hidden",
		"repository": "repository_id", "repository_version": "repository_version_id",
		"publication": "publication_id", "content_guard": "content_guard_id", "remote": "remote_id",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"pulp_label_select": labelSelect("pulp_labels"),
	},
	idExpr: "id",
}

// ListDistributions lists distributions.
func (d *DB) ListDistributions(ctx context.Context, p ListParams) (Page[Distribution], error) {
	return listRows(ctx, d.pool, distributionList, distributionColumns, p, scanDistribution)
}

// ContentGuard is a row of content_guards; Fields holds the type's settings,
// secrets included (the API decides what it shows).
type ContentGuard struct {
	ID          uuid.UUID
	CreatedAt   time.Time
	UpdatedAt   time.Time
	PulpType    string
	Name        string
	Description *string
	Fields      json.RawMessage
}

const guardColumns = `id, created_at, updated_at, pulp_type, name, description, fields`

func scanGuard(row pgx.Row) (ContentGuard, error) {
	var g ContentGuard
	err := row.Scan(&g.ID, &g.CreatedAt, &g.UpdatedAt, &g.PulpType, &g.Name, &g.Description, &g.Fields)
	return g, translate(err)
}

// CreateContentGuard inserts a guard; a taken name is ErrConflict.
func (d *DB) CreateContentGuard(ctx context.Context, g ContentGuard) (ContentGuard, error) {
	if len(g.Fields) == 0 {
		g.Fields = json.RawMessage("{}")
	}
	return scanGuard(d.pool.QueryRow(ctx, `INSERT INTO content_guards (id, pulp_type, name, description, fields)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+guardColumns, NewID(), g.PulpType, g.Name, g.Description, g.Fields))
}

// GetContentGuard reads one guard.
func (d *DB) GetContentGuard(ctx context.Context, id uuid.UUID) (ContentGuard, error) {
	return scanGuard(d.pool.QueryRow(ctx, "SELECT "+guardColumns+" FROM content_guards WHERE id = $1", id))
}

// UpdateContentGuard writes name, description and fields.
func (d *DB) UpdateContentGuard(ctx context.Context, g ContentGuard) (ContentGuard, error) {
	if len(g.Fields) == 0 {
		g.Fields = json.RawMessage("{}")
	}
	return scanGuard(d.pool.QueryRow(ctx, `UPDATE content_guards SET name = $2, description = $3, fields = $4,
		updated_at = now() WHERE id = $1 RETURNING `+guardColumns, g.ID, g.Name, g.Description, g.Fields))
}

// DeleteContentGuard deletes a guard; distributions it guarded become open.
func (d *DB) DeleteContentGuard(ctx context.Context, id uuid.UUID) error {
	return d.deleteByID(ctx, "content_guards", id)
}

var guardList = listSpec{
	from: "content_guards",
	columns: map[string]string{
		"pulp_id": "id", "pulp_created": "created_at", "pulp_last_updated": "updated_at",
		"pulp_type": "pulp_type", "name": "name", "description": "description",
	},
	idExpr: "id",
}

// ListContentGuards lists guards.
func (d *DB) ListContentGuards(ctx context.Context, p ListParams) (Page[ContentGuard], error) {
	return listRows(ctx, d.pool, guardList, guardColumns, p, scanGuard)
}

// deleteByID deletes one row of table; none is ErrNotFound.
func (d *DB) deleteByID(ctx context.Context, table string, id uuid.UUID) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM "+table+" WHERE id = $1", id)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}
