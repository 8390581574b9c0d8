package db

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// GetOrCreateArtifacts is GetOrCreateArtifact for many artifacts in one
// statement: it returns, in the order of arts, the row of each sha256,
// inserting those that have none and touching the others so orphan cleanup
// spares them. Duplicate sha256s in arts are allowed.
//
// Rows are inserted in sha256 order, so concurrent calls with overlapping
// artifacts wait for each other instead of deadlocking, and every unique
// digest arbitrates, as in GetOrCreateArtifact. An artifact whose sha256 is
// not stored but whose sha384 or sha512 is gives ErrConflict.
func (d *DB) GetOrCreateArtifacts(ctx context.Context, arts []Artifact) ([]Artifact, error) {
	if len(arts) == 0 {
		return nil, nil
	}
	sorted := slices.Clone(arts)
	slices.SortFunc(sorted, func(a, b Artifact) int { return strings.Compare(a.SHA256, b.SHA256) })
	sorted = slices.CompactFunc(sorted, func(a, b Artifact) bool { return a.SHA256 == b.SHA256 })
	n := len(sorted)
	// [16]byte encodes as a uuid directly; uuid.UUID would go through its
	// driver.Valuer, a string per row.
	ids, sizes := make([][16]byte, n), make([]int64, n)
	files, shas := make([]string, n), make([]string, n)
	md5s, sha1s, sha224s, sha384s, sha512s := make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
	for i, a := range sorted {
		ids[i], files[i], sizes[i], shas[i] = NewID(), a.File, a.Size, a.SHA256
		md5s[i], sha1s[i], sha224s[i], sha384s[i], sha512s[i] = a.MD5, a.SHA1, a.SHA224, a.SHA384, a.SHA512
	}
	rows, err := d.pool.Query(ctx, `INSERT INTO artifacts AS a (id, file, size, md5, sha1, sha224, sha256, sha384, sha512)
		SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[])
			AS u(id, file, size, md5, sha1, sha224, sha256, sha384, sha512)
		ORDER BY sha256
		ON CONFLICT DO NOTHING
		RETURNING `+artifactColumns, ids, files, sizes, md5s, sha1s, sha224s, shas, sha384s, sha512s)
	if err != nil {
		return nil, translate(err)
	}
	found := make(map[string]Artifact, n)
	if err := collectArtifacts(rows, found); err != nil {
		return nil, err
	}
	if len(found) < n {
		// Stored already, by an earlier or a concurrent insert that has
		// committed by now (ON CONFLICT waited for it): touch those rows,
		// locking them in sha256 order.
		var rest []string
		for _, a := range sorted {
			if _, ok := found[a.SHA256]; !ok {
				rest = append(rest, a.SHA256)
			}
		}
		rows, err := d.pool.Query(ctx, `UPDATE artifacts a SET timestamp_of_interest = now()
			FROM (SELECT x.id FROM artifacts x WHERE x.sha256 = ANY($1) ORDER BY x.sha256 FOR NO KEY UPDATE) l
			WHERE a.id = l.id RETURNING `+artifactColumns, rest)
		if err != nil {
			return nil, translate(err)
		}
		if err := collectArtifacts(rows, found); err != nil {
			return nil, err
		}
	}
	out := make([]Artifact, len(arts))
	for i, a := range arts {
		row, ok := found[a.SHA256]
		if !ok {
			return nil, fmt.Errorf("artifact %s conflicts with another artifact's digests: %w", a.SHA256, ErrConflict)
		}
		out[i] = row
	}
	return out, nil
}

func collectArtifacts(rows pgx.Rows, into map[string]Artifact) error {
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Artifact, error) { return scanArtifact(r) })
	if err != nil {
		return translate(err)
	}
	for _, a := range list {
		into[a.SHA256] = a
	}
	return nil
}
