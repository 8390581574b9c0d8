package db

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Repository is a row of repositories; Fields holds plugin-declared fields.
type Repository struct {
	ID                 uuid.UUID
	CreatedAt          time.Time
	UpdatedAt          time.Time
	PulpType           string
	Name               string
	Description        *string
	PulpLabels         map[string]string
	NextVersion        int
	RetainRepoVersions *int
	RemoteID           *uuid.UUID
	Fields             json.RawMessage
	LatestVersion      int // highest complete version number
}

const repoColumns = `r.id, r.created_at, r.updated_at, r.pulp_type, r.name, r.description, r.pulp_labels,
	r.next_version, r.retain_repo_versions, r.remote_id, r.fields,
	(SELECT max(number) FROM repository_versions v WHERE v.repository_id = r.id AND v.complete)`

func scanRepo(row pgx.Row) (Repository, error) {
	var r Repository
	err := row.Scan(&r.ID, &r.CreatedAt, &r.UpdatedAt, &r.PulpType, &r.Name, &r.Description, &r.PulpLabels,
		&r.NextVersion, &r.RetainRepoVersions, &r.RemoteID, &r.Fields, &r.LatestVersion)
	return r, translate(err)
}

// CreateRepository inserts a repository and its empty, complete version 0.
func (d *DB) CreateRepository(ctx context.Context, r Repository) (Repository, error) {
	var out Repository
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		id := NewID()
		if r.PulpLabels == nil {
			r.PulpLabels = map[string]string{}
		}
		if r.Fields == nil {
			r.Fields = json.RawMessage("{}")
		}
		if _, err := tx.Exec(ctx, `INSERT INTO repositories (id, pulp_type, name, description, pulp_labels,
			next_version, retain_repo_versions, remote_id, fields) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8)`,
			id, r.PulpType, r.Name, r.Description, r.PulpLabels, r.RetainRepoVersions, r.RemoteID, r.Fields); err != nil {
			return translate(err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO repository_versions (id, repository_id, number, complete)
			VALUES ($1, $2, 0, true)`, NewID(), id); err != nil {
			return translate(err)
		}
		var err error
		out, err = scanRepo(tx.QueryRow(ctx, "SELECT "+repoColumns+" FROM repositories r WHERE r.id = $1", id))
		return err
	})
	return out, err
}

// GetRepository reads one repository.
func (d *DB) GetRepository(ctx context.Context, id uuid.UUID) (Repository, error) {
	return scanRepo(d.pool.QueryRow(ctx, "SELECT "+repoColumns+" FROM repositories r WHERE r.id = $1", id))
}

// UpdateRepository writes the mutable fields of r and applies retention when
// retain_repo_versions changed.
func (d *DB) UpdateRepository(ctx context.Context, r Repository) (Repository, error) {
	var out Repository
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE repositories SET name = $2, description = $3, pulp_labels = $4,
			retain_repo_versions = $5, remote_id = $6, fields = $7, updated_at = now() WHERE id = $1`,
			r.ID, r.Name, r.Description, r.PulpLabels, r.RetainRepoVersions, r.RemoteID, r.Fields)
		if err != nil {
			return translate(err)
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if err := applyRetention(ctx, tx, r.ID); err != nil {
			return err
		}
		out, err = scanRepo(tx.QueryRow(ctx, "SELECT "+repoColumns+" FROM repositories r WHERE r.id = $1", r.ID))
		return err
	})
	return out, err
}

// DeleteRepository deletes a repository, its versions and memberships. The
// membership rows go first in batches so no single statement holds a huge
// number of row locks.
func (d *DB) DeleteRepository(ctx context.Context, id uuid.UUID) error {
	for {
		tag, err := d.pool.Exec(ctx, `DELETE FROM repository_content WHERE ctid = ANY(ARRAY(
			SELECT ctid FROM repository_content WHERE repository_id = $1 LIMIT 10000))`, id)
		if err != nil {
			return translate(err)
		}
		if tag.RowsAffected() == 0 {
			break
		}
	}
	tag, err := d.pool.Exec(ctx, "DELETE FROM repositories WHERE id = $1", id)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

var repoList = listSpec{
	from: "repositories r",
	columns: map[string]string{
		"pulp_id": "r.id", "pulp_created": "r.created_at", "pulp_last_updated": "r.updated_at",
		"pulp_type": "r.pulp_type", "name": "r.name", "description": "r.description",
		"retain_repo_versions": "r.retain_repo_versions", "remote": "r.remote_id", "next_version": "r.next_version",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"pulp_label_select": labelSelect("r.pulp_labels"),
	},
	idExpr: "r.id",
}

// ListRepositories lists repositories (all types, or filtered by pulp_type).
func (d *DB) ListRepositories(ctx context.Context, p ListParams) (Page[Repository], error) {
	return listRows(ctx, d.pool, repoList, repoColumns, p, scanRepo)
}

// labelSelect filters on pulp_labels with Pulp's syntax: "k=v", "k!=v",
// "k~sub", "k" (key exists), "!k" (key absent), comma-separated and ANDed.
func labelSelect(col string) func(Filter, func(any) string) (string, error) {
	return func(f Filter, arg func(any) string) (string, error) {
		sel, _ := f.Value.(string)
		var conds []string
		for _, term := range strings.Split(sel, ",") {
			term = strings.TrimSpace(term)
			switch {
			case term == "":
				return "", fmt.Errorf("%w: empty label selector term", ErrBadFilter)
			case strings.Contains(term, "!="):
				k, v, _ := strings.Cut(term, "!=")
				conds = append(conds, "("+col+"->>"+arg(k)+") IS DISTINCT FROM "+arg(v))
			case strings.Contains(term, "="):
				k, v, _ := strings.Cut(term, "=")
				conds = append(conds, col+"->>"+arg(k)+" = "+arg(v))
			case strings.Contains(term, "~"):
				k, v, _ := strings.Cut(term, "~")
				conds = append(conds, col+"->>"+arg(k)+" ILIKE "+arg("%"+escapeLike(v)+"%"))
			case term[0] == '!':
				conds = append(conds, "NOT ("+col+" ? "+arg(term[1:])+")")
			default:
				conds = append(conds, col+" ? "+arg(term))
			}
		}
		if len(conds) == 0 {
			return "", fmt.Errorf("%w: empty label selector", ErrBadFilter)
		}
		return "(" + strings.Join(conds, " AND ") + ")", nil
	}
}
