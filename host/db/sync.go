package db

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ArtifactsBySHA256 returns the recorded artifacts among the digests, by
// digest, and touches them so orphan cleanup spares what a sync just matched.
func (d *DB) ArtifactsBySHA256(ctx context.Context, digests []string) (map[string]Artifact, error) {
	rows, err := d.pool.Query(ctx, `UPDATE artifacts a SET timestamp_of_interest = now()
		WHERE a.sha256 = ANY($1) RETURNING `+artifactColumns, digests)
	if err != nil {
		return nil, translate(err)
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) { return scanArtifact(r) })
	if err != nil {
		return nil, translate(err)
	}
	out := make(map[string]Artifact, len(list))
	for _, a := range list {
		out[a.SHA256] = a
	}
	return out, nil
}

// RemoteArtifact records where a content artifact can be downloaded from.
type RemoteArtifact struct {
	ContentArtifactID uuid.UUID
	RemoteID          uuid.UUID
	URL               string
	Size              *int64
	Digests           map[string]string
	// Headers are extra request headers for downloading it (the plugin's).
	Headers map[string]string
}

// UpsertRemoteArtifacts records remote artifacts, updating url, size and
// digests of existing ones; rows are written in a stable order.
func (d *DB) UpsertRemoteArtifacts(ctx context.Context, ras []RemoteArtifact) error {
	if len(ras) == 0 {
		return nil
	}
	sorted := slices.Clone(ras)
	slices.SortFunc(sorted, func(a, b RemoteArtifact) int {
		return strings.Compare(a.ContentArtifactID.String(), b.ContentArtifactID.String())
	})
	n := len(sorted)
	ids, cas, remotes, urls := make([]uuid.UUID, n), make([]uuid.UUID, n), make([]uuid.UUID, n), make([]string, n)
	sizes := make([]*int64, n)
	headers := make([]map[string]string, n)
	dg := map[string][]*string{"md5": make([]*string, n), "sha1": make([]*string, n), "sha224": make([]*string, n),
		"sha256": make([]*string, n), "sha384": make([]*string, n), "sha512": make([]*string, n)}
	for i, ra := range sorted {
		ids[i], cas[i], remotes[i], urls[i], sizes[i] = NewID(), ra.ContentArtifactID, ra.RemoteID, ra.URL, ra.Size
		if len(ra.Headers) > 0 {
			headers[i] = ra.Headers
		}
		for name, v := range ra.Digests {
			if col, ok := dg[name]; ok {
				v := v
				col[i] = &v
			}
		}
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO remote_artifacts (id, content_artifact_id, remote_id, url, size, md5, sha1, sha224, sha256, sha384, sha512, headers)
		SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::jsonb[])
		ON CONFLICT (content_artifact_id, remote_id) DO UPDATE SET url = excluded.url, size = excluded.size,
			md5 = excluded.md5, sha1 = excluded.sha1, sha224 = excluded.sha224, sha256 = excluded.sha256,
			sha384 = excluded.sha384, sha512 = excluded.sha512, headers = excluded.headers, failed_at = NULL, updated_at = now()
		WHERE (remote_artifacts.url, remote_artifacts.size, remote_artifacts.sha256, remote_artifacts.headers)
			IS DISTINCT FROM (excluded.url, excluded.size, excluded.sha256, excluded.headers)`,
		ids, cas, remotes, urls, sizes, dg["md5"], dg["sha1"], dg["sha224"], dg["sha256"], dg["sha384"], dg["sha512"], headers)
	return translate(err)
}

// RemoteArtifactsOf lists the remote artifacts of content artifacts.
func (d *DB) RemoteArtifactsOf(ctx context.Context, contentArtifacts []uuid.UUID) ([]RemoteArtifact, error) {
	rows, err := d.pool.Query(ctx, `SELECT content_artifact_id, remote_id, url, size, sha256 FROM remote_artifacts
		WHERE content_artifact_id = ANY($1) ORDER BY content_artifact_id, remote_id`, contentArtifacts)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RemoteArtifact, error) {
		var ra RemoteArtifact
		var sha *string
		err := r.Scan(&ra.ContentArtifactID, &ra.RemoteID, &ra.URL, &ra.Size, &sha)
		if sha != nil {
			ra.Digests = map[string]string{"sha256": *sha}
		}
		return ra, err
	})
}

// ContentByKeys finds content of a type by natural key (the stored hex
// digests). With scope set, only content in that complete version counts.
func (d *DB) ContentByKeys(ctx context.Context, pulpType string, keys []string, scope *VersionRef) ([]Content, error) {
	sql := "SELECT " + contentColumns + " FROM contents c WHERE c.pulp_type = $1 AND c.natural_key = ANY($2)"
	args := []any{pulpType, keys}
	if scope != nil {
		sql += ` AND EXISTS (SELECT 1 FROM repository_content rc WHERE rc.repository_id = $3 AND rc.content_id = c.id AND ` + member("$4") + `)`
		args = append(args, scope.Repository, scope.Number)
	}
	return queryItems(ctx, d.pool, sql+" ORDER BY c.natural_key", args, scanContent)
}

// Relation is a typed link between two content units.
type Relation struct {
	From   uuid.UUID
	Name   string
	To     uuid.UUID
	Fields json.RawMessage
}

// AddRelations records links, keeping existing ones.
func (d *DB) AddRelations(ctx context.Context, rels []Relation) error {
	if len(rels) == 0 {
		return nil
	}
	from, names, to, fields := make([]uuid.UUID, len(rels)), make([]string, len(rels)), make([]uuid.UUID, len(rels)), make([]string, len(rels))
	for i, r := range rels {
		from[i], names[i], to[i], fields[i] = r.From, r.Name, r.To, string(r.Fields)
		if len(r.Fields) == 0 {
			fields[i] = "{}"
		}
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO content_relations (from_id, name, to_id, fields)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[]) ORDER BY 1, 2, 3
		ON CONFLICT DO NOTHING`, from, names, to, fields)
	return translate(err)
}

// RelationsFrom lists the links of units, for tests and the registry.
func (d *DB) RelationsFrom(ctx context.Context, from []uuid.UUID) ([]Relation, error) {
	rows, err := d.pool.Query(ctx, `SELECT from_id, name, to_id, fields FROM content_relations WHERE from_id = ANY($1)
		ORDER BY from_id, name, to_id`, from)
	if err != nil {
		return nil, translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Relation, error) {
		var rel Relation
		return rel, r.Scan(&rel.From, &rel.Name, &rel.To, &rel.Fields)
	})
}

// StoredArtifactsByKeys maps natural key -> relative path -> artifact id for
// stored content of a type whose artifacts were downloaded.
func (d *DB) StoredArtifactsByKeys(ctx context.Context, pulpType string, keys []string) (map[string]map[string]uuid.UUID, error) {
	rows, err := d.pool.Query(ctx, `SELECT c.natural_key, ca.relative_path, ca.artifact_id FROM contents c
		JOIN content_artifacts ca ON ca.content_id = c.id
		WHERE c.pulp_type = $1 AND c.natural_key = ANY($2) AND ca.artifact_id IS NOT NULL`, pulpType, keys)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[string]map[string]uuid.UUID{}
	for rows.Next() {
		var key, path string
		var id uuid.UUID
		if err := rows.Scan(&key, &path, &id); err != nil {
			return nil, err
		}
		if out[key] == nil {
			out[key] = map[string]uuid.UUID{}
		}
		out[key][path] = id
	}
	return out, translate(rows.Err())
}
