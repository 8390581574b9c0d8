package db

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ArtifactPage returns up to limit artifacts with ids above after, in id
// order, so a caller can walk every artifact in stable pages (repair).
func (d *DB) ArtifactPage(ctx context.Context, after uuid.UUID, limit int) ([]Artifact, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+artifactColumns+` FROM artifacts a
		WHERE a.id > $1 ORDER BY a.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) { return scanArtifact(r) })
}

// VersionArtifactIDs lists, in id order, the artifacts of the content in a
// complete repository version.
func (d *DB) VersionArtifactIDs(ctx context.Context, repo uuid.UUID, number int) ([]uuid.UUID, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT ca.artifact_id FROM repository_content rc
		JOIN content_artifacts ca ON ca.content_id = rc.content_id
		WHERE rc.repository_id = $1 AND `+member("$2")+` AND ca.artifact_id IS NOT NULL
		  AND `+completeVersion("$1", "$2")+`
		ORDER BY ca.artifact_id`, repo, number)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// ArtifactsByIDs reads the artifacts among ids that still exist, in id order.
func (d *DB) ArtifactsByIDs(ctx context.Context, ids []uuid.UUID) ([]Artifact, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+artifactColumns+` FROM artifacts a
		WHERE a.id = ANY($1) ORDER BY a.id`, ids)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) { return scanArtifact(r) })
}

// ContentArtifactsOfArtifact lists the content artifacts whose file is the
// artifact, whose remote artifacts tell where its bytes came from.
func (d *DB) ContentArtifactsOfArtifact(ctx context.Context, artifact uuid.UUID) ([]uuid.UUID, error) {
	rows, err := d.pool.Query(ctx, `SELECT id FROM content_artifacts WHERE artifact_id = $1 ORDER BY id`, artifact)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// ArtifactExists tells whether the artifact row is still there.
func (d *DB) ArtifactExists(ctx context.Context, id uuid.UUID) (bool, error) {
	var ok bool
	err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM artifacts WHERE id = $1)`, id).Scan(&ok)
	return ok, translate(err)
}

// ArtifactTotals counts the artifacts and sums their sizes (for metrics).
func (d *DB) ArtifactTotals(ctx context.Context) (count, bytes int64, err error) {
	err = d.pool.QueryRow(ctx, `SELECT count(*), coalesce(sum(size), 0)::bigint FROM artifacts`).Scan(&count, &bytes)
	return count, bytes, translate(err)
}
