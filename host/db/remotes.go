package db

import (
	"context"

	"github.com/google/uuid"
)

// RemoteType returns the pulp_type of a remote, or ErrNotFound.
func (d *DB) RemoteType(ctx context.Context, id uuid.UUID) (string, error) {
	var t string
	err := d.pool.QueryRow(ctx, "SELECT pulp_type FROM remotes WHERE id = $1", id).Scan(&t)
	return t, translate(err)
}
