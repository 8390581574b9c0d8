package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The OCI registry's statements (host/registry): distributions by base path, units of a
// repository version (plus what was pushed to it and waits for a manifest) by natural key,
// tags by name, referrers by subject, push repositories and upload sessions.

// RegistryDistribution is a distribution as the registry resolves names against it.
type RegistryDistribution struct {
	ID       uuid.UUID
	BasePath string
	Private  bool
	// The repository served: its latest version (RepositoryID set), or a pinned version
	// (VersionID set, RepositoryID is then its repository and VersionNumber its number).
	RepositoryID   *uuid.UUID
	RepositoryType string
	VersionID      *uuid.UUID
	// Number is the served version's number: the pinned one, else the latest complete.
	Number int
	// RemoteID is the distribution's remote: with no repository, a pull-through
	// distribution; with one, the cache a pull through it made.
	RemoteID *uuid.UUID
}

// RegistryDistributions reads every distribution of one type, which the registry holds in
// memory so that resolving a name costs no query.
func (d *DB) RegistryDistributions(ctx context.Context, pulpType string) ([]RegistryDistribution, error) {
	rows, err := d.pool.Query(ctx, `SELECT d.id, d.base_path, coalesce((d.fields->>'private')::boolean, false),
		coalesce(d.repository_id, v.repository_id), coalesce(r.pulp_type, ''), d.repository_version_id,
		coalesce(v.number, (SELECT max(x.number) FROM repository_versions x WHERE x.repository_id = d.repository_id AND x.complete), 0),
		d.remote_id
		FROM distributions d
		LEFT JOIN repository_versions v ON v.id = d.repository_version_id
		LEFT JOIN repositories r ON r.id = coalesce(d.repository_id, v.repository_id)
		WHERE d.pulp_type = $1 ORDER BY d.base_path`, pulpType)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RegistryDistribution, error) {
		var x RegistryDistribution
		err := r.Scan(&x.ID, &x.BasePath, &x.Private, &x.RepositoryID, &x.RepositoryType, &x.VersionID, &x.Number, &x.RemoteID)
		return x, translate(err)
	})
}

// RegistryScope is what a registry name serves: a complete version of a repository and,
// with Pending, what was pushed to the repository and no version holds yet.
type RegistryScope struct {
	Repository uuid.UUID
	Number     int
	Pending    bool
}

// scopeSQL is true for content c in the scope ($1 repository, $2 number, $3 pending).
// With pending, the version is the latest complete one as this statement sees it, not
// $2: a concurrent push's new version takes its content out of the pending set right
// after it commits, so a number read before that commit, with the pending set read after
// it, would miss what is in both. One snapshot sees it in at least one of them.
const scopeSQL = `(EXISTS (SELECT 1 FROM repository_content rc,
		(SELECT CASE WHEN $3 THEN (SELECT max(v.number) FROM repository_versions v
			WHERE v.repository_id = $1 AND v.complete) ELSE $2 END AS number) s
		WHERE rc.repository_id = $1 AND rc.content_id = c.id
		AND rc.version_added <= s.number AND (rc.version_removed IS NULL OR rc.version_removed > s.number))
	OR $3 AND EXISTS (SELECT 1 FROM registry_pending p WHERE p.repository_id = $1 AND p.content_id = c.id))`

// RegistryUnit is a unit found by the registry with its one artifact: stored (ArtifactID
// set) or still at a remote (on_demand, streamed).
type RegistryUnit struct {
	ContentID uuid.UUID
	Fields    json.RawMessage
	File      ContentFile
}

const unitColumns = `c.id, c.fields, ca.id, a.id, coalesce(a.file, ''), coalesce(a.size, 0), coalesce(a.sha256, ''),
	(SELECT r.size FROM remote_artifacts r WHERE r.content_artifact_id = ca.id ORDER BY r.failed_at IS NOT NULL, r.created_at LIMIT 1),
	(SELECT r.sha256 FROM remote_artifacts r WHERE r.content_artifact_id = ca.id ORDER BY r.failed_at IS NOT NULL, r.created_at LIMIT 1)`

func scanUnit(row pgx.Row) (RegistryUnit, error) {
	var u RegistryUnit
	var ca *uuid.UUID
	err := row.Scan(&u.ContentID, &u.Fields, &ca, &u.File.ArtifactID, &u.File.File, &u.File.Size, &u.File.SHA256,
		&u.File.RemoteSize, &u.File.RemoteSHA256)
	u.File.ContentArtifactID = ca
	return u, translate(err)
}

// RegistryUnitByKey finds the unit of a type with a natural key (its stored digest) in
// scope; ErrNotFound when the scope does not hold it.
func (d *DB) RegistryUnitByKey(ctx context.Context, s RegistryScope, pulpType, naturalKey string) (RegistryUnit, error) {
	return scanUnit(d.pool.QueryRow(ctx, `SELECT `+unitColumns+` FROM contents c
		LEFT JOIN content_artifacts ca ON ca.content_id = c.id
		LEFT JOIN artifacts a ON a.id = ca.artifact_id
		WHERE c.pulp_type = $4 AND c.natural_key = $5 AND `+scopeSQL+` LIMIT 1`,
		s.Repository, s.Number, s.Pending, pulpType, naturalKey))
}

// RegistryUnitsByKeys maps the natural keys of a type found in scope to content ids.
func (d *DB) RegistryUnitsByKeys(ctx context.Context, s RegistryScope, pulpType string, keys []string) (map[string]uuid.UUID, error) {
	rows, err := d.pool.Query(ctx, `SELECT c.natural_key, c.id FROM contents c
		WHERE c.pulp_type = $4 AND c.natural_key = ANY($5) AND `+scopeSQL, s.Repository, s.Number, s.Pending, pulpType, keys)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[string]uuid.UUID{}
	for rows.Next() {
		var k string
		var id uuid.UUID
		if err := rows.Scan(&k, &id); err != nil {
			return nil, translate(err)
		}
		out[k] = id
	}
	return out, translate(rows.Err())
}

// RegistryTag finds the tag of a type named name in version scope (tags are never
// pending) and returns the unit it points
// at through relation rel, and the tag's content id.
func (d *DB) RegistryTag(ctx context.Context, s RegistryScope, tagType, rel, name string) (RegistryUnit, uuid.UUID, error) {
	var tag uuid.UUID
	row := d.pool.QueryRow(ctx, `SELECT t.id, `+unitColumns+` FROM contents t
		JOIN content_relations rel ON rel.from_id = t.id AND rel.name = $4
		JOIN contents c ON c.id = rel.to_id
		LEFT JOIN content_artifacts ca ON ca.content_id = c.id
		LEFT JOIN artifacts a ON a.id = ca.artifact_id
		WHERE t.pulp_type = $3 AND t.fields ? 'name' AND t.fields->>'name' = $5
		  AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.repository_id = $1 AND rc.content_id = t.id
			AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2))
		LIMIT 1`, s.Repository, s.Number, tagType, rel, name)
	var u RegistryUnit
	var ca *uuid.UUID
	err := row.Scan(&tag, &u.ContentID, &u.Fields, &ca, &u.File.ArtifactID, &u.File.File, &u.File.Size, &u.File.SHA256,
		&u.File.RemoteSize, &u.File.RemoteSHA256)
	u.File.ContentArtifactID = ca
	return u, tag, translate(err)
}

// RegistryTagNames lists the names of the tags of a type in version scope (pending
// content never holds tags), sorted, after last, at most n (n < 0: all).
func (d *DB) RegistryTagNames(ctx context.Context, s RegistryScope, tagType, last string, n int) ([]string, error) {
	limit := "ALL"
	if n >= 0 {
		limit = fmt.Sprint(n)
	}
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT c.fields->>'name' FROM contents c
		JOIN repository_content rc ON rc.content_id = c.id AND rc.repository_id = $1
			AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2)
		WHERE c.pulp_type = $3 AND c.fields ? 'name' AND c.fields->>'name' > $4
		ORDER BY 1 LIMIT `+limit, s.Repository, s.Number, tagType, last)
	if err != nil {
		return nil, translate(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return names, translate(err)
}

// RegistryTagsOf lists the content ids of the tags of a type in version scope pointing at
// target through relation rel.
func (d *DB) RegistryTagsOf(ctx context.Context, s RegistryScope, tagType, rel string, target uuid.UUID) ([]uuid.UUID, error) {
	rows, err := d.pool.Query(ctx, `SELECT c.id FROM contents c
		JOIN content_relations r ON r.from_id = c.id AND r.name = $4 AND r.to_id = $5
		JOIN repository_content rc ON rc.content_id = c.id AND rc.repository_id = $1
			AND rc.version_added <= $2 AND (rc.version_removed IS NULL OR rc.version_removed > $2)
		WHERE c.pulp_type = $3`, s.Repository, s.Number, tagType, rel, target)
	if err != nil {
		return nil, translate(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, translate(err)
}

// RegistryReferrers lists the units of a type in scope whose subject field is subject,
// with their artifacts' sizes, in creation order.
func (d *DB) RegistryReferrers(ctx context.Context, s RegistryScope, pulpType, subject string) ([]RegistryUnit, error) {
	return queryItems(ctx, d.pool, `SELECT `+unitColumns+` FROM contents c
		LEFT JOIN content_artifacts ca ON ca.content_id = c.id
		LEFT JOIN artifacts a ON a.id = ca.artifact_id
		WHERE c.pulp_type = $4 AND c.fields ? 'subject' AND c.fields->>'subject' = $5 AND `+scopeSQL+`
		ORDER BY c.id`, []any{s.Repository, s.Number, s.Pending, pulpType, subject}, scanUnit)
}

// ErrWrongType refuses a push to a name served by something other than a push repository.
var ErrWrongType = errors.New("not a push repository")

// EnsurePushRepository returns the repository a push to name fills: the one its
// distribution (base_path name, of distType) serves, or, on the first push, a new
// repository of repoType named name with that distribution, created together. A name
// served otherwise (a sync repository, a pinned version, a publication, another type) is
// ErrWrongType. Concurrent first pushes agree on one repository.
func (d *DB) EnsurePushRepository(ctx context.Context, name, repoType, distType string) (uuid.UUID, error) {
	var id uuid.UUID
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		// Serializes first pushes of one name across processes.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('registry:' || $1, 0))`, name); err != nil {
			return translate(err)
		}
		var dtype string
		var repo *uuid.UUID
		var rtype *string
		err := tx.QueryRow(ctx, `SELECT d.pulp_type, d.repository_id, r.pulp_type FROM distributions d
			LEFT JOIN repositories r ON r.id = d.repository_id WHERE d.base_path = $1`, name).Scan(&dtype, &repo, &rtype)
		switch {
		case err == nil:
			if dtype != distType || repo == nil || rtype == nil || *rtype != repoType {
				return fmt.Errorf("%s: %w", name, ErrWrongType)
			}
			id = *repo
			return nil
		case !errors.Is(translate(err), ErrNotFound):
			return translate(err)
		}
		err = tx.QueryRow(ctx, `SELECT id, pulp_type FROM repositories WHERE name = $1`, name).Scan(&id, &dtype)
		switch {
		case err == nil:
			if dtype != repoType {
				return fmt.Errorf("%s: repository of type %s: %w", name, dtype, ErrWrongType)
			}
		case errors.Is(translate(err), ErrNotFound):
			id = NewID()
			if _, err := tx.Exec(ctx, `INSERT INTO repositories (id, pulp_type, name, next_version) VALUES ($1, $2, $3, 1)`,
				id, repoType, name); err != nil {
				return translate(err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO repository_versions (id, repository_id, number, complete)
				VALUES ($1, $2, 0, true)`, NewID(), id); err != nil {
				return translate(err)
			}
		default:
			return translate(err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO distributions (id, pulp_type, name, base_path, repository_id)
			VALUES ($1, $2, $3, $3, $4)`, NewID(), distType, name, id)
		return translate(err)
	})
	return id, err
}

// PullThroughCache is the repository and remote a pull-through distribution
// caches one upstream name with.
type PullThroughCache struct {
	Repository uuid.UUID
	RepoType   string
	Remote     uuid.UUID
}

// EnsurePullThroughCache returns the cache of name under the pull-through
// distribution parent, making it on first use as pulp_container does: a remote
// copied from the parent's (policy on_demand, upstream_name upstream, no tag
// filters), a repository of a type syncing from it (repoTypes maps remote types
// to repository types) and a distribution at base_path name with both,
// private as the parent. First pulls of one name in several processes make
// one cache.
func (d *DB) EnsurePullThroughCache(ctx context.Context, parent uuid.UUID, name, upstream, distType string, repoTypes map[string]string) (PullThroughCache, error) {
	var c PullThroughCache
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('registry:' || $1, 0))`, name); err != nil {
			return translate(err)
		}
		var repo, remote *uuid.UUID
		err := tx.QueryRow(ctx, `SELECT d.repository_id, d.remote_id, coalesce(r.pulp_type, '') FROM distributions d
			LEFT JOIN repositories r ON r.id = d.repository_id WHERE d.base_path = $1`, name).Scan(&repo, &remote, &c.RepoType)
		switch {
		case err == nil:
			if repo == nil || remote == nil {
				return fmt.Errorf("%s: a distribution that is not a pull-through cache: %w", name, ErrWrongType)
			}
			c.Repository, c.Remote = *repo, *remote
			return nil
		case !errors.Is(translate(err), ErrNotFound):
			return translate(err)
		}
		var remoteType string
		var private bool
		if err := tx.QueryRow(ctx, `SELECT r.pulp_type, coalesce((d.fields->>'private')::boolean, false) FROM distributions d
			JOIN remotes r ON r.id = d.remote_id WHERE d.id = $1 AND d.repository_id IS NULL`, parent).Scan(&remoteType, &private); err != nil {
			return fmt.Errorf("pull-through distribution: %w", translate(err))
		}
		c.RepoType = repoTypes[remoteType]
		if c.RepoType == "" {
			return fmt.Errorf("%s: no repository type syncs from a %s remote: %w", name, remoteType, ErrWrongType)
		}
		c.Remote, c.Repository = NewID(), NewID()
		// Names are unique per table; the cache's carry the path they serve.
		if _, err := tx.Exec(ctx, `INSERT INTO remotes (id, pulp_type, name, url, ca_cert, client_cert, client_key,
				tls_validation, proxy_url, proxy_username, proxy_password, username, password, policy, download_concurrency,
				max_retries, total_timeout, connect_timeout, sock_connect_timeout, sock_read_timeout, headers, rate_limit, fields)
			SELECT $1, pulp_type, 'pull-through: ' || $2, url, ca_cert, client_cert, client_key,
				tls_validation, proxy_url, proxy_username, proxy_password, username, password, 'on_demand', download_concurrency,
				max_retries, total_timeout, connect_timeout, sock_connect_timeout, sock_read_timeout, headers, rate_limit,
				(fields - 'include_tags' - 'exclude_tags' - 'includes' - 'excludes') || jsonb_build_object('upstream_name', $3::text, 'includes', '[]'::jsonb)
			FROM remotes WHERE id = (SELECT remote_id FROM distributions WHERE id = $4)`, c.Remote, name, upstream, parent); err != nil {
			return translate(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO repositories (id, pulp_type, name, next_version, remote_id) VALUES ($1, $2, 'pull-through: ' || $3, 1, $4)`,
			c.Repository, c.RepoType, name, c.Remote); err != nil {
			return translate(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO repository_versions (id, repository_id, number, complete) VALUES ($1, $2, 0, true)`, NewID(), c.Repository); err != nil {
			return translate(err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO distributions (id, pulp_type, name, base_path, repository_id, remote_id, fields)
			VALUES ($1, $2, $3, $3, $4, $5, jsonb_build_object('private', $6::boolean))`, NewID(), distType, name, c.Repository, c.Remote, private)
		return translate(err)
	})
	return c, err
}

// IncludeInPullThrough adds ref (a tag or a digest) to what a pull-through
// cache's remote syncs, once: every later sync of the cache refreshes it too.
func (d *DB) IncludeInPullThrough(ctx context.Context, remote uuid.UUID, ref string) error {
	_, err := d.pool.Exec(ctx, `UPDATE remotes SET fields = jsonb_set(fields, '{includes}',
			coalesce(fields->'includes', '[]'::jsonb) || to_jsonb($2::text)), updated_at = now()
		WHERE id = $1 AND NOT coalesce(fields->'includes', '[]'::jsonb) ? $2`, remote, ref)
	return translate(err)
}

// AddPending records units pushed to a repository that no version holds yet.
func (d *DB) AddPending(ctx context.Context, repo uuid.UUID, ids []uuid.UUID) error {
	_, err := d.pool.Exec(ctx, `INSERT INTO registry_pending (repository_id, content_id)
		SELECT $1, id FROM unnest($2::uuid[]) AS id ORDER BY id ON CONFLICT DO NOTHING`, repo, ids)
	return translate(err)
}

// RemovePending forgets pending units (added to a version, or deleted).
func (d *DB) RemovePending(ctx context.Context, repo uuid.UUID, ids []uuid.UUID) error {
	_, err := d.pool.Exec(ctx, `DELETE FROM registry_pending WHERE repository_id = $1 AND content_id = ANY($2)`, repo, ids)
	return translate(err)
}

// RegistryUpload is a row of registry_uploads: a blob upload session.
type RegistryUpload struct {
	ID        uuid.UUID
	Name      string
	Size      int64
	HashState []byte
}

// CreateRegistryUpload starts a session on name with the empty hash's state.
func (d *DB) CreateRegistryUpload(ctx context.Context, name string, hashState []byte) (RegistryUpload, error) {
	u := RegistryUpload{ID: NewID(), Name: name, HashState: hashState}
	_, err := d.pool.Exec(ctx, `INSERT INTO registry_uploads (id, name, hash_state) VALUES ($1, $2, $3)`, u.ID, name, hashState)
	return u, translate(err)
}

// GetRegistryUpload reads a session.
func (d *DB) GetRegistryUpload(ctx context.Context, id uuid.UUID) (RegistryUpload, error) {
	var u RegistryUpload
	err := d.pool.QueryRow(ctx, `SELECT id, name, size, hash_state FROM registry_uploads WHERE id = $1`, id).
		Scan(&u.ID, &u.Name, &u.Size, &u.HashState)
	return u, translate(err)
}

// AdvanceRegistryUpload records a session's new size and hash state, if its size is still
// from; ErrConflict otherwise (another request moved it).
func (d *DB) AdvanceRegistryUpload(ctx context.Context, id uuid.UUID, from, size int64, hashState []byte) error {
	tag, err := d.pool.Exec(ctx, `UPDATE registry_uploads SET size = $3, hash_state = $4, updated_at = now()
		WHERE id = $1 AND size = $2`, id, from, size, hashState)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrConflict
	}
	return nil
}

// DeleteRegistryUpload ends a session; ErrNotFound when there is none.
func (d *DB) DeleteRegistryUpload(ctx context.Context, id uuid.UUID) error {
	return d.deleteByID(ctx, "registry_uploads", id)
}

// DeleteStaleRegistryUploads ends the sessions untouched since before, returning their
// ids so the caller can remove their files.
func (d *DB) DeleteStaleRegistryUploads(ctx context.Context, before time.Time) ([]uuid.UUID, error) {
	rows, err := d.pool.Query(ctx, `DELETE FROM registry_uploads WHERE updated_at < $1 RETURNING id`, before)
	if err != nil {
		return nil, translate(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	return ids, translate(err)
}
