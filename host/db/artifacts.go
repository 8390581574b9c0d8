package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Artifact is a row of artifacts: a stored file known by its digests.
type Artifact struct {
	ID        uuid.UUID
	CreatedAt time.Time
	UpdatedAt time.Time
	File      string // storage key
	Size      int64
	MD5       *string
	SHA1      *string
	SHA224    *string
	SHA256    string
	SHA384    *string
	SHA512    *string
}

const artifactColumns = `a.id, a.created_at, a.updated_at, a.file, a.size, a.md5, a.sha1, a.sha224, a.sha256, a.sha384, a.sha512`

func scanArtifact(row pgx.Row) (Artifact, error) {
	var a Artifact
	err := row.Scan(&a.ID, &a.CreatedAt, &a.UpdatedAt, &a.File, &a.Size, &a.MD5, &a.SHA1, &a.SHA224, &a.SHA256, &a.SHA384, &a.SHA512)
	return a, translate(err)
}

// InsertArtifact stores a new artifact row; an existing sha256 gives ErrConflict.
func (d *DB) InsertArtifact(ctx context.Context, a Artifact) (Artifact, error) {
	return scanArtifact(d.pool.QueryRow(ctx, `INSERT INTO artifacts AS a (id, file, size, md5, sha1, sha224, sha256, sha384, sha512)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+artifactColumns,
		NewID(), a.File, a.Size, a.MD5, a.SHA1, a.SHA224, a.SHA256, a.SHA384, a.SHA512))
}

// GetOrCreateArtifact returns the artifact with a's sha256, inserting a when
// there is none; created tells which. An existing row is touched so orphan
// cleanup spares it. Every unique digest arbitrates the insert: a concurrent
// insert of the same bytes may collide on sha384 before sha256.
func (d *DB) GetOrCreateArtifact(ctx context.Context, a Artifact) (Artifact, bool, error) {
	out, err := scanArtifact(d.pool.QueryRow(ctx, `INSERT INTO artifacts AS a (id, file, size, md5, sha1, sha224, sha256, sha384, sha512)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT DO NOTHING
		RETURNING `+artifactColumns,
		NewID(), a.File, a.Size, a.MD5, a.SHA1, a.SHA224, a.SHA256, a.SHA384, a.SHA512))
	if err == nil {
		return out, true, nil
	}
	if err != ErrNotFound {
		return out, false, err
	}
	out, err = scanArtifact(d.pool.QueryRow(ctx, `UPDATE artifacts a SET timestamp_of_interest = now()
		WHERE a.sha256 = $1 RETURNING `+artifactColumns, a.SHA256))
	if err == ErrNotFound {
		return out, false, fmt.Errorf("artifact %s conflicts with another artifact's digests: %w", a.SHA256, ErrConflict)
	}
	return out, false, err
}

// GetArtifact reads one artifact.
func (d *DB) GetArtifact(ctx context.Context, id uuid.UUID) (Artifact, error) {
	return scanArtifact(d.pool.QueryRow(ctx, "SELECT "+artifactColumns+" FROM artifacts a WHERE a.id = $1", id))
}

// ArtifactBySHA256 reads the artifact with a digest.
func (d *DB) ArtifactBySHA256(ctx context.Context, sha256 string) (Artifact, error) {
	return scanArtifact(d.pool.QueryRow(ctx, "SELECT "+artifactColumns+" FROM artifacts a WHERE a.sha256 = $1", sha256))
}

// DeleteArtifact deletes an artifact no content uses (else ErrInUse) and
// returns its row so the caller can remove the file.
func (d *DB) DeleteArtifact(ctx context.Context, id uuid.UUID) (Artifact, error) {
	return scanArtifact(d.pool.QueryRow(ctx, "DELETE FROM artifacts a WHERE a.id = $1 RETURNING "+artifactColumns, id))
}

// DeleteOrphanArtifacts deletes up to limit artifacts no content references,
// untouched for protection, and returns them so their files can be removed.
func (d *DB) DeleteOrphanArtifacts(ctx context.Context, protection time.Duration, limit int) ([]Artifact, error) {
	rows, err := d.pool.Query(ctx, `DELETE FROM artifacts a WHERE a.id = ANY(ARRAY(
			SELECT x.id FROM artifacts x
			WHERE NOT EXISTS (SELECT 1 FROM content_artifacts ca WHERE ca.artifact_id = x.id)
			  AND NOT EXISTS (SELECT 1 FROM published_artifacts pa WHERE pa.artifact_id = x.id)
			  AND x.timestamp_of_interest < now() - $1::interval
			LIMIT $2 FOR UPDATE SKIP LOCKED))
		RETURNING `+artifactColumns, protection, limit)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) { return scanArtifact(r) })
}

var artifactList = listSpec{
	from: "artifacts a",
	columns: map[string]string{
		"pulp_id": "a.id", "pulp_created": "a.created_at", "pulp_last_updated": "a.updated_at",
		"size": "a.size", "md5": "a.md5", "sha1": "a.sha1", "sha224": "a.sha224",
		"sha256": "a.sha256", "sha384": "a.sha384", "sha512": "a.sha512",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"repository_version": func(f Filter, arg func(any) string) (string, error) {
			v, ok := f.Value.(VersionRef)
			if !ok {
				return "", fmt.Errorf("%w: %s needs a repository version", ErrBadFilter, f.Field)
			}
			r, n := arg(v.Repository), arg(v.Number)
			return completeVersion(r, n) + " AND EXISTS (SELECT 1 FROM content_artifacts ca JOIN repository_content rc ON rc.content_id = ca.content_id" +
				" WHERE ca.artifact_id = a.id AND rc.repository_id = " + r + " AND " + member(n) + ")", nil
		},
		"orphaned_for": func(f Filter, arg func(any) string) (string, error) {
			return "NOT EXISTS (SELECT 1 FROM content_artifacts ca WHERE ca.artifact_id = a.id)" +
				" AND NOT EXISTS (SELECT 1 FROM published_artifacts pa WHERE pa.artifact_id = a.id) AND a.timestamp_of_interest < now() - " +
				arg(f.Value) + " * interval '1 minute'", nil
		},
	},
	idExpr: "a.id",
}

// ListArtifacts lists artifacts, newest first.
func (d *DB) ListArtifacts(ctx context.Context, p ListParams) (Page[Artifact], error) {
	return listRows(ctx, d.pool, artifactList, artifactColumns, p, scanArtifact)
}
