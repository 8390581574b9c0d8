package db

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// LastSyncDetails returns the details the last successful sync of repo from
// remote recorded, or nil when there is none or when the repository's latest
// version is no longer the one that sync left (someone changed it since).
func (d *DB) LastSyncDetails(ctx context.Context, repo, remote uuid.UUID) (json.RawMessage, error) {
	var out json.RawMessage
	err := d.pool.QueryRow(ctx, `SELECT s.details FROM repository_sync_details s
		WHERE s.repository_id = $1 AND s.remote_id = $2 AND s.version = `+syncedVersion, repo, remote).Scan(&out)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return out, translate(err)
}

// syncedVersion is the repository's highest complete version number, as
// repoColumns computes it.
const syncedVersion = `(SELECT coalesce(max(number), 0) FROM repository_versions v
	WHERE v.repository_id = $1 AND v.complete)`

// SetLastSyncDetails records a successful sync's details along with the
// repository's latest version it left; empty details forget the previous ones.
func (d *DB) SetLastSyncDetails(ctx context.Context, repo, remote uuid.UUID, details json.RawMessage) error {
	if len(details) == 0 || string(details) == "null" {
		_, err := d.pool.Exec(ctx, `DELETE FROM repository_sync_details WHERE repository_id = $1 AND remote_id = $2`, repo, remote)
		return translate(err)
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO repository_sync_details (repository_id, remote_id, version, details)
		SELECT $1, $2, `+syncedVersion+`, $3
		ON CONFLICT (repository_id, remote_id) DO UPDATE
		SET version = EXCLUDED.version, details = EXCLUDED.details, updated_at = now()`,
		repo, remote, details)
	return translate(err)
}
