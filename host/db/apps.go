package db

import (
	"context"
	"encoding/json"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// App is a running Pulpo process role (api, content or worker) and its heartbeat.
type App struct {
	ID            uuid.UUID
	Type          string
	Name          string
	Versions      map[string]string
	TTL           time.Duration
	StartedAt     time.Time
	LastHeartbeat time.Time
	Online        bool
}

const appColumns = `id, app_type, name, versions, ttl, started_at, last_heartbeat, last_heartbeat >= now() - ttl`

func scanApp(row pgx.Row) (App, error) {
	var a App
	var versions []byte
	err := row.Scan(&a.ID, &a.Type, &a.Name, &versions, &a.TTL, &a.StartedAt, &a.LastHeartbeat, &a.Online)
	if err == nil {
		err = json.Unmarshal(versions, &a.Versions)
	}
	return a, translate(err)
}

// RegisterApp records a process role that will heartbeat every ttl/3.
func (d *DB) RegisterApp(ctx context.Context, appType, name string, versions map[string]string, ttl time.Duration) (App, error) {
	v, _ := json.Marshal(versions)
	return scanApp(d.pool.QueryRow(ctx, `INSERT INTO app_status (id, app_type, name, versions, ttl)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+appColumns, NewID(), appType, name, v, ttl))
}

// Heartbeat refreshes the given apps. ErrNotFound means some row was reaped:
// the process was presumed dead and must stop working on its tasks.
func (d *DB) Heartbeat(ctx context.Context, ids []uuid.UUID) error {
	tag, err := d.pool.Exec(ctx, "UPDATE app_status SET last_heartbeat = now() WHERE id = ANY($1)", ids)
	if err != nil {
		return translate(err)
	}
	if int(tag.RowsAffected()) != len(ids) {
		return ErrNotFound
	}
	return nil
}

// UnregisterApps deletes the rows of a process shutting down cleanly.
func (d *DB) UnregisterApps(ctx context.Context, ids []uuid.UUID) error {
	_, err := d.pool.Exec(ctx, "DELETE FROM app_status WHERE id = ANY($1)", ids)
	return translate(err)
}

// ListApps lists app rows of a type (all types when empty), newest first.
func (d *DB) ListApps(ctx context.Context, appType string) ([]App, error) {
	rows, err := d.pool.Query(ctx, `SELECT `+appColumns+` FROM app_status
		WHERE $1 = '' OR app_type = $1 ORDER BY started_at DESC, id DESC`, appType)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (App, error) { return scanApp(r) })
}

// GetApp reads one app row.
func (d *DB) GetApp(ctx context.Context, id uuid.UUID) (App, error) {
	return scanApp(d.pool.QueryRow(ctx, "SELECT "+appColumns+" FROM app_status WHERE id = $1", id))
}

// ReapDead fails the tasks of processes whose heartbeat expired (or whose
// row is gone), discards the incomplete repository versions those tasks were
// building, and deletes app rows missing for ten TTLs. Only one process does
// it at a time; the others return at once. It returns the reaped task ids.
func (d *DB) ReapDead(ctx context.Context) ([]uuid.UUID, error) {
	var reaped []uuid.UUID
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var got bool
		if err := tx.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(4711, 11)").Scan(&got); err != nil || !got {
			return translate(err)
		}
		rows, err := tx.Query(ctx, `
			UPDATE tasks SET
				state = CASE WHEN state = 'canceling' THEN 'canceled' ELSE 'failed' END,
				error = CASE WHEN state = 'canceling' THEN NULL
					ELSE jsonb_build_object('description', 'Worker has gone missing.') END,
				finished_at = clock_timestamp(), updated_at = clock_timestamp()
			WHERE state IN ('running', 'canceling')
			  AND (worker_id IS NULL OR worker_id IN (SELECT id FROM app_status WHERE last_heartbeat < now() - ttl))
			RETURNING id`)
		if err != nil {
			return translate(err)
		}
		if reaped, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
			return translate(err)
		}
		if len(reaped) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE progress_reports SET state = 'failed'
				WHERE task_id = ANY($1) AND state IN ('waiting', 'running')`, reaped); err != nil {
				return translate(err)
			}
			if err := discardTaskVersions(ctx, tx, reaped); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "SELECT pg_notify($1, '')", ChannelTaskWakeup); err != nil {
				return translate(err)
			}
		}
		_, err = tx.Exec(ctx, "DELETE FROM app_status WHERE last_heartbeat < now() - 10 * ttl")
		return translate(err)
	})
	return reaped, err
}
