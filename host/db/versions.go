package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Summary counts content per pulp_type: added and removed relative to the
// previous version, and present in the version.
type Summary struct {
	Added   map[string]int64 `json:"added"`
	Removed map[string]int64 `json:"removed"`
	Present map[string]int64 `json:"present"`
}

// RepositoryVersion is a row of repository_versions.
type RepositoryVersion struct {
	ID             uuid.UUID
	CreatedAt      time.Time
	UpdatedAt      time.Time
	RepositoryID   uuid.UUID
	Number         int
	Complete       bool
	BaseVersionID  *uuid.UUID
	TaskID         *uuid.UUID
	ContentSummary Summary
}

const versionColumns = `id, created_at, updated_at, repository_id, number, complete, base_version_id, task_id, content_summary`

func scanVersion(row pgx.Row) (RepositoryVersion, error) {
	var v RepositoryVersion
	var summary []byte
	err := row.Scan(&v.ID, &v.CreatedAt, &v.UpdatedAt, &v.RepositoryID, &v.Number, &v.Complete,
		&v.BaseVersionID, &v.TaskID, &summary)
	if err == nil {
		err = json.Unmarshal(summary, &v.ContentSummary)
	}
	return v, translate(err)
}

// membershipSQL selects repository_content rows (alias rc) present in version $n.
const membershipSQL = `rc.version_added <= %[1]s AND (rc.version_removed IS NULL OR rc.version_removed > %[1]s)`

func member(n string) string { return fmt.Sprintf(membershipSQL, n) }

// GetVersion reads a complete version of a repository by number.
func (d *DB) GetVersion(ctx context.Context, repo uuid.UUID, number int) (RepositoryVersion, error) {
	return scanVersion(d.pool.QueryRow(ctx, `SELECT `+versionColumns+` FROM repository_versions
		WHERE repository_id = $1 AND number = $2 AND complete`, repo, number))
}

// GetVersionByID reads a complete version by id.
func (d *DB) GetVersionByID(ctx context.Context, id uuid.UUID) (RepositoryVersion, error) {
	return scanVersion(d.pool.QueryRow(ctx, `SELECT `+versionColumns+` FROM repository_versions
		WHERE id = $1 AND complete`, id))
}

// LatestVersion reads the highest complete version of a repository.
func (d *DB) LatestVersion(ctx context.Context, repo uuid.UUID) (RepositoryVersion, error) {
	return latestVersion(ctx, d.pool, repo)
}

func latestVersion(ctx context.Context, q querier, repo uuid.UUID) (RepositoryVersion, error) {
	return scanVersion(q.QueryRow(ctx, `SELECT `+versionColumns+` FROM repository_versions
		WHERE repository_id = $1 AND complete ORDER BY number DESC LIMIT 1`, repo))
}

// NewVersion starts an incomplete version of repo, built by task, holding the
// content of base (or of the latest version when base is nil). Any leftover
// incomplete version of the repository is discarded first. The caller must
// hold the repository's exclusive task lock.
func (d *DB) NewVersion(ctx context.Context, repo uuid.UUID, task *uuid.UUID, base *int) (RepositoryVersion, error) {
	var v RepositoryVersion
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var next int
		if err := tx.QueryRow(ctx, "SELECT next_version FROM repositories WHERE id = $1 FOR UPDATE", repo).Scan(&next); err != nil {
			return translate(err)
		}
		if err := discardRepoIncomplete(ctx, tx, repo); err != nil {
			return err
		}
		latest, err := latestVersion(ctx, tx, repo)
		if err != nil {
			return fmt.Errorf("latest version: %w", err)
		}
		baseID := &latest.ID
		if base != nil && *base != latest.Number {
			bv, err := scanVersion(tx.QueryRow(ctx, `SELECT `+versionColumns+` FROM repository_versions
				WHERE repository_id = $1 AND number = $2 AND complete`, repo, *base))
			if err != nil {
				return fmt.Errorf("base version %d: %w", *base, err)
			}
			baseID = &bv.ID
			// Make the new version hold exactly the base's content.
			if _, err := tx.Exec(ctx, `UPDATE repository_content rc SET version_removed = $2
				WHERE rc.repository_id = $1 AND rc.version_removed IS NULL
				  AND NOT EXISTS (SELECT 1 FROM repository_content b WHERE b.repository_id = $1
					AND b.content_id = rc.content_id AND b.version_added <= $3
					AND (b.version_removed IS NULL OR b.version_removed > $3))`, repo, next, bv.Number); err != nil {
				return translate(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO repository_content (repository_id, content_id, version_added)
				SELECT $1, rc.content_id, $2 FROM repository_content rc
				WHERE rc.repository_id = $1 AND `+member("$3")+`
				  AND NOT EXISTS (SELECT 1 FROM repository_content l WHERE l.repository_id = $1
					AND l.content_id = rc.content_id AND (l.version_removed IS NULL OR l.version_removed = $2))`,
				repo, next, bv.Number); err != nil {
				return translate(err)
			}
		}
		v, err = scanVersion(tx.QueryRow(ctx, `INSERT INTO repository_versions (id, repository_id, number, complete, base_version_id, task_id)
			VALUES ($1, $2, $3, false, $4, $5) RETURNING `+versionColumns, NewID(), repo, next, baseID, task))
		return err
	})
	return v, err
}

// AddContent puts content into the incomplete version number n of repo.
// Content already present is left alone; content removed earlier in the same
// version comes back.
func (d *DB) AddContent(ctx context.Context, repo uuid.UUID, n int, ids []uuid.UUID) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE repository_content SET version_removed = NULL
			WHERE repository_id = $1 AND version_removed = $2 AND content_id = ANY($3)`, repo, n, ids); err != nil {
			return translate(err)
		}
		// LATERAL ... LIMIT 1 keeps the presence check an index probe per id:
		// as NOT EXISTS the planner may hash-anti-join the repository's whole
		// membership for every batch, which made a sync quadratic.
		_, err := tx.Exec(ctx, `INSERT INTO repository_content (repository_id, content_id, version_added)
			SELECT $1, i.id, $2 FROM (SELECT DISTINCT unnest($3::uuid[]) AS id) i
			LEFT JOIN LATERAL (SELECT 1 AS hit FROM repository_content rc
				WHERE rc.repository_id = $1 AND rc.content_id = i.id AND rc.version_removed IS NULL LIMIT 1) p ON true
			WHERE p.hit IS NULL
			ON CONFLICT DO NOTHING`, repo, n, ids)
		return translate(err)
	})
}

// RemoveContent takes content out of the incomplete version n of repo; an add
// and a remove in the same version cancel out.
func (d *DB) RemoveContent(ctx context.Context, repo uuid.UUID, n int, ids []uuid.UUID) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM repository_content
			WHERE repository_id = $1 AND version_added = $2 AND content_id = ANY($3)`, repo, n, ids); err != nil {
			return translate(err)
		}
		_, err := tx.Exec(ctx, `UPDATE repository_content SET version_removed = $2
			WHERE repository_id = $1 AND version_removed IS NULL AND content_id = ANY($3)`, repo, n, ids)
		return translate(err)
	})
}

// RemoveAllContent empties the incomplete version n of repo.
func (d *DB) RemoveAllContent(ctx context.Context, repo uuid.UUID, n int) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM repository_content WHERE repository_id = $1 AND version_added = $2`, repo, n); err != nil {
			return translate(err)
		}
		_, err := tx.Exec(ctx, `UPDATE repository_content SET version_removed = $2
			WHERE repository_id = $1 AND version_removed IS NULL`, repo, n)
		return translate(err)
	})
}

// VersionContentTypes lists the distinct pulp_types in the incomplete version n.
func (d *DB) VersionContentTypes(ctx context.Context, repo uuid.UUID, n int) ([]string, error) {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT c.pulp_type FROM repository_content rc
		JOIN contents c ON c.id = rc.content_id WHERE rc.repository_id = $1 AND rc.version_added = $2`, repo, n)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// FinalizeVersion completes version n: it computes the content summary, marks
// it complete and advances the repository's next number, then applies
// retain_repo_versions. A version that changes nothing is deleted instead and
// (nil, nil) is returned: Pulp creates no empty versions.
func (d *DB) FinalizeVersion(ctx context.Context, repo uuid.UUID, n int) (*RepositoryVersion, error) {
	var out *RepositoryVersion
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var complete bool
		if err := tx.QueryRow(ctx, `SELECT complete FROM repository_versions WHERE repository_id = $1 AND number = $2 FOR UPDATE`,
			repo, n).Scan(&complete); err != nil {
			return fmt.Errorf("finalize version %d: %w", n, translate(err))
		}
		if complete {
			return fmt.Errorf("finalize version %d: already complete: %w", n, ErrConflict)
		}
		s, err := computeSummary(ctx, tx, repo, n)
		if err != nil {
			return err
		}
		if len(s.Added) == 0 && len(s.Removed) == 0 {
			return discardVersion(ctx, tx, repo, n)
		}
		sj, _ := json.Marshal(s)
		v, err := scanVersion(tx.QueryRow(ctx, `UPDATE repository_versions SET complete = true, content_summary = $3,
			updated_at = now() WHERE repository_id = $1 AND number = $2 AND NOT complete RETURNING `+versionColumns, repo, n, sj))
		if err != nil {
			return fmt.Errorf("finalize version %d: %w", n, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE repositories SET next_version = $2 + 1, updated_at = now() WHERE id = $1`, repo, n); err != nil {
			return translate(err)
		}
		if err := applyRetention(ctx, tx, repo); err != nil {
			return err
		}
		out = &v
		return nil
	})
	return out, err
}

// computeSummary counts version n's changes against the previous complete
// version and derives what is present from that version's counts.
func computeSummary(ctx context.Context, q querier, repo uuid.UUID, n int) (Summary, error) {
	s := Summary{Added: map[string]int64{}, Removed: map[string]int64{}, Present: map[string]int64{}}
	var prev []byte
	err := q.QueryRow(ctx, `SELECT content_summary FROM repository_versions WHERE repository_id = $1 AND complete
		AND number < $2 ORDER BY number DESC LIMIT 1`, repo, n).Scan(&prev)
	if err != nil && translate(err) != ErrNotFound {
		return s, translate(err)
	}
	if prev != nil {
		var p Summary
		if err := json.Unmarshal(prev, &p); err != nil {
			return s, err
		}
		for k, c := range p.Present {
			s.Present[k] = c
		}
	}
	rows, err := q.Query(ctx, `
		SELECT c.pulp_type, rc.version_added = $2, count(*) FROM repository_content rc
		JOIN contents c ON c.id = rc.content_id
		WHERE rc.repository_id = $1 AND (rc.version_added = $2 OR rc.version_removed = $2)
		GROUP BY 1, 2`, repo, n)
	if err != nil {
		return s, translate(err)
	}
	defer rows.Close()
	for rows.Next() {
		var typ string
		var added bool
		var c int64
		if err := rows.Scan(&typ, &added, &c); err != nil {
			return s, err
		}
		if added {
			s.Added[typ] += c
			s.Present[typ] += c
		} else {
			s.Removed[typ] += c
			s.Present[typ] -= c
		}
	}
	for k, c := range s.Present {
		if c <= 0 {
			delete(s.Present, k)
		}
	}
	return s, translate(rows.Err())
}

// DiscardTaskVersions deletes the incomplete versions the given tasks were
// building, undoing their membership changes, and their incomplete publications.
func (d *DB) DiscardTaskVersions(ctx context.Context, tasks []uuid.UUID) error {
	return d.inTx(ctx, func(tx pgx.Tx) error { return discardTaskVersions(ctx, tx, tasks) })
}

func discardTaskVersions(ctx context.Context, tx pgx.Tx, tasks []uuid.UUID) error {
	if _, err := tx.Exec(ctx, `DELETE FROM publications WHERE task_id = ANY($1) AND NOT complete`, tasks); err != nil {
		return translate(err)
	}
	rows, err := tx.Query(ctx, `SELECT repository_id, number FROM repository_versions
		WHERE task_id = ANY($1) AND NOT complete`, tasks)
	if err != nil {
		return translate(err)
	}
	type rn struct {
		repo uuid.UUID
		n    int
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rn, error) {
		var x rn
		return x, r.Scan(&x.repo, &x.n)
	})
	if err != nil {
		return translate(err)
	}
	for _, x := range list {
		if err := discardVersion(ctx, tx, x.repo, x.n); err != nil {
			return err
		}
	}
	return nil
}

func discardRepoIncomplete(ctx context.Context, tx pgx.Tx, repo uuid.UUID) error {
	rows, err := tx.Query(ctx, `SELECT number FROM repository_versions WHERE repository_id = $1 AND NOT complete`, repo)
	if err != nil {
		return translate(err)
	}
	nums, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return translate(err)
	}
	for _, n := range nums {
		if err := discardVersion(ctx, tx, repo, n); err != nil {
			return err
		}
	}
	return nil
}

// discardVersion undoes version n's membership changes and deletes its row.
func discardVersion(ctx context.Context, tx pgx.Tx, repo uuid.UUID, n int) error {
	for _, q := range []string{
		`DELETE FROM repository_content WHERE repository_id = $1 AND version_added = $2`,
		`UPDATE repository_content SET version_removed = NULL WHERE repository_id = $1 AND version_removed = $2`,
		`DELETE FROM repository_versions WHERE repository_id = $1 AND number = $2`,
	} {
		if _, err := tx.Exec(ctx, q, repo, n); err != nil {
			return fmt.Errorf("discard version %d: %w", n, translate(err))
		}
	}
	return nil
}

// ErrLastVersion refuses deleting a repository's only complete version.
var ErrLastVersion = fmt.Errorf("cannot delete the only complete version: %w", ErrConflict)

// DeleteVersion deletes complete version n, squashing its changes into the
// next complete version so every other version keeps its content. Deleting
// the latest version simply undoes its changes.
func (d *DB) DeleteVersion(ctx context.Context, repo uuid.UUID, n int) error {
	return d.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT 1 FROM repositories WHERE id = $1 FOR UPDATE", repo); err != nil {
			return translate(err)
		}
		return deleteVersion(ctx, tx, repo, n)
	})
}

func deleteVersion(ctx context.Context, tx pgx.Tx, repo uuid.UUID, n int) error {
	var count int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM repository_versions WHERE repository_id = $1 AND complete`, repo).Scan(&count); err != nil {
		return translate(err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM repository_versions WHERE repository_id = $1 AND number = $2 AND complete)`,
		repo, n).Scan(&exists); err != nil {
		return translate(err)
	}
	if !exists {
		return ErrNotFound
	}
	if count <= 1 {
		return ErrLastVersion
	}
	// The next version may be one still being built: it was based on n and
	// must receive n's changes too.
	var next int
	var nextComplete bool
	err := tx.QueryRow(ctx, `SELECT number, complete FROM repository_versions WHERE repository_id = $1 AND number > $2
		ORDER BY number LIMIT 1`, repo, n).Scan(&next, &nextComplete)
	if translate(err) == ErrNotFound {
		return discardVersion(ctx, tx, repo, n)
	}
	if err != nil {
		return translate(err)
	}
	steps := []struct {
		sql  string
		args []any
	}{
		// Removed in n and re-added in next: one continuous membership.
		{`UPDATE repository_content r SET version_removed = a.version_removed
			FROM repository_content a
			WHERE r.repository_id = $1 AND r.version_removed = $2
			  AND a.repository_id = $1 AND a.content_id = r.content_id AND a.version_added = $3`, []any{repo, n, next}},
		{`DELETE FROM repository_content a USING repository_content r
			WHERE a.repository_id = $1 AND a.version_added = $3
			  AND r.repository_id = $1 AND r.content_id = a.content_id AND r.version_added < $2
			  AND (r.version_removed IS NULL OR r.version_removed > $3 OR r.version_removed = a.version_removed)`, []any{repo, n, next}},
		{`UPDATE repository_content SET version_removed = $3 WHERE repository_id = $1 AND version_removed = $2`, []any{repo, n, next}},
		// Added in n and removed in next: never visible any more.
		{`DELETE FROM repository_content WHERE repository_id = $1 AND version_added = $2 AND version_removed = $3`, []any{repo, n, next}},
		{`UPDATE repository_content SET version_added = $3 WHERE repository_id = $1 AND version_added = $2`, []any{repo, n, next}},
		{`DELETE FROM repository_versions WHERE repository_id = $1 AND number = $2`, []any{repo, n}},
	}
	for _, st := range steps {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("squash version %d into %d: %w", n, next, translate(err))
		}
	}
	if !nextComplete {
		return nil // its summary is computed when it is finalized
	}
	s, err := computeSummary(ctx, tx, repo, next)
	if err != nil {
		return err
	}
	sj, _ := json.Marshal(s)
	_, err = tx.Exec(ctx, `UPDATE repository_versions SET content_summary = $3, updated_at = now()
		WHERE repository_id = $1 AND number = $2`, repo, next, sj)
	return translate(err)
}

// applyRetention deletes the oldest complete versions beyond the repository's
// retain_repo_versions.
func applyRetention(ctx context.Context, tx pgx.Tx, repo uuid.UUID) error {
	rows, err := tx.Query(ctx, `SELECT v.number FROM repository_versions v JOIN repositories r ON r.id = v.repository_id
		WHERE v.repository_id = $1 AND v.complete AND r.retain_repo_versions IS NOT NULL
		ORDER BY v.number DESC OFFSET (SELECT retain_repo_versions FROM repositories WHERE id = $1)`, repo)
	if err != nil {
		return translate(err)
	}
	old, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return translate(err)
	}
	// Oldest first, so each squash folds into a version that stays.
	for i := len(old) - 1; i >= 0; i-- {
		if err := deleteVersion(ctx, tx, repo, old[i]); err != nil {
			return fmt.Errorf("retain versions: %w", err)
		}
	}
	return nil
}

var versionList = listSpec{
	from: "repository_versions v",
	columns: map[string]string{
		"pulp_id": "v.id", "pulp_created": "v.created_at", "pulp_last_updated": "v.updated_at",
		"number": "v.number", "repository": "v.repository_id", "complete": "v.complete",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"content": func(f Filter, arg func(any) string) (string, error) {
			op := "="
			if f.Op == "in" {
				op = "= ANY"
			}
			return "EXISTS (SELECT 1 FROM repository_content rc WHERE rc.repository_id = v.repository_id AND rc.content_id " +
				op + "(" + arg(f.Value) + "::uuid" + map[bool]string{true: "[]", false: ""}[f.Op == "in"] + ") AND " + member("v.number") + ")", nil
		},
	},
	idExpr: "v.number",
}

// ListVersions lists the complete versions of a repository, newest first.
func (d *DB) ListVersions(ctx context.Context, repo uuid.UUID, p ListParams) (Page[RepositoryVersion], error) {
	p.Filters = append([]Filter{{Field: "repository", Value: repo}, {Field: "complete", Value: true}}, p.Filters...)
	return listRows(ctx, d.pool, versionList, prefixed("v.", versionColumns), p, scanVersion)
}

// DuplicateError reports added content units sharing a repository key.
type DuplicateError struct {
	PulpType string
	Keys     []string
	Values   string
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("more than one %s content unit with the same values for %v: %s", e.PulpType, e.Keys, e.Values)
}

// ReplaceDuplicates enforces a content type's repository keys in the
// incomplete version n: content added in n replaces present content of the
// same type with equal key values; two added units with equal keys are a
// *DuplicateError.
func (d *DB) ReplaceDuplicates(ctx context.Context, repo uuid.UUID, n int, pulpType string, keys []string) error {
	keyExpr := func(alias string) string {
		return "(SELECT jsonb_agg(" + alias + ".fields->k ORDER BY o) FROM unnest($4::text[]) WITH ORDINALITY AS x(k, o))"
	}
	var dup string
	err := d.pool.QueryRow(ctx, `SELECT `+keyExpr("c")+`::text FROM repository_content rc JOIN contents c ON c.id = rc.content_id
		WHERE rc.repository_id = $1 AND rc.version_added = $2 AND c.pulp_type = $3
		GROUP BY 1 HAVING count(*) > 1 LIMIT 1`, repo, n, pulpType, keys).Scan(&dup)
	if err == nil {
		return &DuplicateError{PulpType: pulpType, Keys: keys, Values: dup}
	}
	if translate(err) != ErrNotFound {
		return translate(err)
	}
	_, err = d.pool.Exec(ctx, `UPDATE repository_content old SET version_removed = $2
		FROM contents oc, repository_content new, contents nc
		WHERE old.repository_id = $1 AND old.version_removed IS NULL AND old.version_added < $2
		  AND oc.id = old.content_id AND oc.pulp_type = $3
		  AND new.repository_id = $1 AND new.version_added = $2 AND nc.id = new.content_id AND nc.pulp_type = $3
		  AND nc.id <> oc.id AND `+keyExpr("oc")+` = `+keyExpr("nc"), repo, n, pulpType, keys)
	return translate(err)
}

// CountRemoved counts the content the incomplete version n removes.
func (d *DB) CountRemoved(ctx context.Context, repo uuid.UUID, n int) (int64, error) {
	var c int64
	err := d.pool.QueryRow(ctx, `SELECT count(*) FROM repository_content WHERE repository_id = $1 AND version_removed = $2`, repo, n).Scan(&c)
	return c, translate(err)
}
