package db

import (
	"context"

	"github.com/google/uuid"
)

// UnitArtifacts returns the content artifacts of the given units, by content
// id, ordered by relative path: what a plugin's content_lookup reports. An
// artifact not yet downloaded has the digest and size its first remote
// artifact expects, as in VersionUnits.
func (d *DB) UnitArtifacts(ctx context.Context, ids []uuid.UUID) (map[uuid.UUID][]UnitArtifact, error) {
	out := make(map[uuid.UUID][]UnitArtifact, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := d.pool.Query(ctx, `SELECT ca.content_id, ca.relative_path,
			coalesce(a.sha256, ra.sha256, ''), coalesce(a.size, ra.size, 0), a.id IS NOT NULL
		FROM content_artifacts ca
		LEFT JOIN artifacts a ON a.id = ca.artifact_id
		LEFT JOIN LATERAL (SELECT r.sha256, r.size FROM remote_artifacts r
			WHERE r.content_artifact_id = ca.id ORDER BY r.created_at LIMIT 1) ra ON ca.artifact_id IS NULL
		WHERE ca.content_id = ANY($1)
		ORDER BY ca.content_id, ca.relative_path`, ids)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id uuid.UUID
			ua UnitArtifact
		)
		if err := rows.Scan(&id, &ua.RelativePath, &ua.SHA256, &ua.Size, &ua.Downloaded); err != nil {
			return nil, translate(err)
		}
		out[id] = append(out[id], ua)
	}
	return out, translate(rows.Err())
}
