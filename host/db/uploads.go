package db

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Upload is a row of uploads: a file arriving in chunks.
type Upload struct {
	ID          uuid.UUID
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Size        int64
	HashState   []byte // running sha256 over the first HashedBytes bytes
	HashedBytes int64
}

// UploadChunk is one stored piece of an upload.
type UploadChunk struct {
	ID       uuid.UUID
	UploadID uuid.UUID
	Offset   int64
	Size     int64
	File     string // storage key
	SHA256   string
}

const uploadColumns = `u.id, u.created_at, u.updated_at, u.size, u.hash_state, u.hashed_bytes`

func scanUpload(row pgx.Row) (Upload, error) {
	var u Upload
	err := row.Scan(&u.ID, &u.CreatedAt, &u.UpdatedAt, &u.Size, &u.HashState, &u.HashedBytes)
	return u, translate(err)
}

// CreateUpload starts an upload of size bytes.
func (d *DB) CreateUpload(ctx context.Context, size int64) (Upload, error) {
	return scanUpload(d.pool.QueryRow(ctx, `INSERT INTO uploads AS u (id, size) VALUES ($1, $2) RETURNING `+uploadColumns, NewID(), size))
}

// GetUpload reads one upload.
func (d *DB) GetUpload(ctx context.Context, id uuid.UUID) (Upload, error) {
	return scanUpload(d.pool.QueryRow(ctx, "SELECT "+uploadColumns+" FROM uploads u WHERE u.id = $1", id))
}

var uploadList = listSpec{
	from:    "uploads u",
	columns: map[string]string{"pulp_id": "u.id", "pulp_created": "u.created_at", "size": "u.size"},
	idExpr:  "u.id",
}

// ListUploads lists uploads, newest first.
func (d *DB) ListUploads(ctx context.Context, p ListParams) (Page[Upload], error) {
	return listRows(ctx, d.pool, uploadList, uploadColumns, p, scanUpload)
}

// UploadChunks lists an upload's chunks by offset.
func (d *DB) UploadChunks(ctx context.Context, upload uuid.UUID) ([]UploadChunk, error) {
	rows, err := d.pool.Query(ctx, `SELECT id, upload_id, "offset", size, file, sha256 FROM upload_chunks
		WHERE upload_id = $1 ORDER BY "offset"`, upload)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UploadChunk, error) {
		var c UploadChunk
		return c, r.Scan(&c.ID, &c.UploadID, &c.Offset, &c.Size, &c.File, &c.SHA256)
	})
}

// ErrChunkOverlap refuses a chunk overlapping another at a different offset.
var ErrChunkOverlap = fmt.Errorf("chunk overlaps a stored chunk: %w", ErrConflict)

// PutChunk records a stored chunk, replacing a chunk at the same offset (the
// replaced chunk is returned so its file can be removed). When the chunk
// continues the hashed prefix, hashState (the running sha256 after it) and
// the new prefix length are saved; replacing hashed bytes resets the state.
func (d *DB) PutChunk(ctx context.Context, c UploadChunk, hashedBefore int64, hashState []byte) (replaced *UploadChunk, err error) {
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		u, err := scanUpload(tx.QueryRow(ctx, "SELECT "+uploadColumns+" FROM uploads u WHERE u.id = $1 FOR UPDATE", c.UploadID))
		if err != nil {
			return err
		}
		var overlap bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM upload_chunks WHERE upload_id = $1 AND "offset" <> $2
			AND "offset" < $2 + $3 AND "offset" + size > $2)`, c.UploadID, c.Offset, c.Size).Scan(&overlap); err != nil {
			return translate(err)
		}
		if overlap {
			return ErrChunkOverlap
		}
		var old UploadChunk
		err = tx.QueryRow(ctx, `DELETE FROM upload_chunks WHERE upload_id = $1 AND "offset" = $2
			RETURNING id, upload_id, "offset", size, file, sha256`, c.UploadID, c.Offset).
			Scan(&old.ID, &old.UploadID, &old.Offset, &old.Size, &old.File, &old.SHA256)
		switch translate(err) {
		case nil:
			replaced = &old
		case ErrNotFound:
		default:
			return translate(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO upload_chunks (id, upload_id, "offset", size, file, sha256)
			VALUES ($1, $2, $3, $4, $5, $6)`, NewID(), c.UploadID, c.Offset, c.Size, c.File, c.SHA256); err != nil {
			return translate(err)
		}
		switch {
		case c.Offset < u.HashedBytes:
			_, err = tx.Exec(ctx, `UPDATE uploads SET hash_state = NULL, hashed_bytes = 0, updated_at = now() WHERE id = $1`, u.ID)
		case hashState != nil && c.Offset == u.HashedBytes && hashedBefore == u.HashedBytes:
			_, err = tx.Exec(ctx, `UPDATE uploads SET hash_state = $2, hashed_bytes = $3, updated_at = now() WHERE id = $1`,
				u.ID, hashState, c.Offset+c.Size)
		default:
			_, err = tx.Exec(ctx, `UPDATE uploads SET updated_at = now() WHERE id = $1`, u.ID)
		}
		return translate(err)
	})
	return replaced, err
}

// SaveUploadHash stores a running hash computed at commit time.
func (d *DB) SaveUploadHash(ctx context.Context, id uuid.UUID, state []byte, hashed int64) error {
	_, err := d.pool.Exec(ctx, `UPDATE uploads SET hash_state = $2, hashed_bytes = $3 WHERE id = $1`, id, state, hashed)
	return translate(err)
}

// DeleteUpload deletes an upload and returns its chunks so their files can be removed.
func (d *DB) DeleteUpload(ctx context.Context, id uuid.UUID) ([]UploadChunk, error) {
	chunks, err := d.UploadChunks(ctx, id)
	if err != nil {
		return nil, err
	}
	tag, err := d.pool.Exec(ctx, "DELETE FROM uploads WHERE id = $1", id)
	if err != nil {
		return nil, translate(err)
	}
	if tag.RowsAffected() == 0 {
		return nil, ErrNotFound
	}
	return chunks, nil
}
