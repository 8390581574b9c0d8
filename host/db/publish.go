package db

import (
	"context"
	"encoding/json"
	"iter"

	"github.com/google/uuid"
)

// VersionUnit is a unit of a version with its artifacts, as a publish listing
// shows it. An artifact not yet downloaded has the digest and size its first
// remote artifact expects.
type VersionUnit struct {
	ID        uuid.UUID
	PulpType  string
	Fields    json.RawMessage
	Artifacts []UnitArtifact
}

// UnitArtifact is one content artifact of a VersionUnit.
type UnitArtifact struct {
	RelativePath string
	SHA256       string
	Size         int64
	Downloaded   bool
}

// VersionUnits yields every unit of a complete or incomplete version in
// content id order, reading batch units at a time, so memory stays flat in
// the version's size.
func (d *DB) VersionUnits(ctx context.Context, repo uuid.UUID, number, batch int) iter.Seq2[VersionUnit, error] {
	if batch <= 0 {
		batch = 1000
	}
	return func(yield func(VersionUnit, error) bool) {
		after := uuid.Nil
		for {
			units, err := d.versionUnitPage(ctx, repo, number, after, batch)
			if err != nil {
				yield(VersionUnit{}, err)
				return
			}
			for _, u := range units {
				if !yield(u, nil) {
					return
				}
			}
			if len(units) < batch {
				return
			}
			after = units[len(units)-1].ID
		}
	}
}

func (d *DB) versionUnitPage(ctx context.Context, repo uuid.UUID, number int, after uuid.UUID, batch int) ([]VersionUnit, error) {
	// The page of content ids walks the membership primary key; artifacts
	// are joined per page, so a unit's artifacts never straddle two pages.
	rows, err := d.pool.Query(ctx, `WITH page AS (
			SELECT rc.content_id FROM repository_content rc
			WHERE rc.repository_id = $1 AND `+member("$2")+` AND rc.content_id > $3
			ORDER BY rc.content_id LIMIT $4)
		SELECT c.id, c.pulp_type, c.fields, ca.relative_path,
			coalesce(a.sha256, ra.sha256, ''), coalesce(a.size, ra.size, 0), a.id IS NOT NULL
		FROM page JOIN contents c ON c.id = page.content_id
		LEFT JOIN content_artifacts ca ON ca.content_id = c.id
		LEFT JOIN artifacts a ON a.id = ca.artifact_id
		LEFT JOIN LATERAL (SELECT r.sha256, r.size FROM remote_artifacts r
			WHERE r.content_artifact_id = ca.id ORDER BY r.created_at LIMIT 1) ra ON ca.artifact_id IS NULL
		ORDER BY c.id, ca.relative_path`, repo, number, after, batch)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []VersionUnit
	for rows.Next() {
		var (
			id         uuid.UUID
			typ        string
			fields     json.RawMessage
			path       *string
			sha        string
			size       int64
			downloaded bool
		)
		if err := rows.Scan(&id, &typ, &fields, &path, &sha, &size, &downloaded); err != nil {
			return nil, translate(err)
		}
		if len(out) == 0 || out[len(out)-1].ID != id {
			out = append(out, VersionUnit{ID: id, PulpType: typ, Fields: fields})
		}
		if path != nil {
			u := &out[len(out)-1]
			u.Artifacts = append(u.Artifacts, UnitArtifact{RelativePath: *path, SHA256: sha, Size: size, Downloaded: downloaded})
		}
	}
	return out, translate(rows.Err())
}

// VersionContentArtifacts maps sha256 digests to content artifacts of a
// version: the unit artifacts a publication lays out at other paths. Digests
// the version does not hold are absent from the result.
func (d *DB) VersionContentArtifacts(ctx context.Context, repo uuid.UUID, number int, sha256s []string) (map[string]uuid.UUID, error) {
	// A unit's artifact is matched by its stored bytes or, not downloaded
	// yet, by what its remote artifacts expect.
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT ON (s.sha) s.sha, ca.id
		FROM unnest($3::text[]) s(sha)
		JOIN LATERAL (
			SELECT x.id FROM artifacts a JOIN content_artifacts x ON x.artifact_id = a.id WHERE a.sha256 = s.sha
			UNION ALL
			SELECT ra.content_artifact_id FROM remote_artifacts ra WHERE ra.sha256 = s.sha) m(id) ON true
		JOIN content_artifacts ca ON ca.id = m.id
		JOIN repository_content rc ON rc.content_id = ca.content_id AND rc.repository_id = $1 AND `+member("$2")+`
		ORDER BY s.sha, ca.id`, repo, number, sha256s)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := map[string]uuid.UUID{}
	for rows.Next() {
		var sha string
		var id uuid.UUID
		if err := rows.Scan(&sha, &id); err != nil {
			return nil, translate(err)
		}
		out[sha] = id
	}
	return out, translate(rows.Err())
}
