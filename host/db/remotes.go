package db

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Remote is a row of remotes; Fields holds plugin-declared fields. ClientKey,
// Username, Password, ProxyUsername and ProxyPassword are secrets: String,
// GoString and LogValue leave them out, so a Remote can be logged.
type Remote struct {
	ID                  uuid.UUID
	CreatedAt           time.Time
	UpdatedAt           time.Time
	PulpType            string
	Name                string
	PulpLabels          map[string]string
	URL                 string
	CACert              *string
	ClientCert          *string
	ClientKey           *string
	TLSValidation       bool
	ProxyURL            *string
	ProxyUsername       *string
	ProxyPassword       *string
	Username            *string
	Password            *string
	Policy              string
	DownloadConcurrency *int
	MaxRetries          *int
	TotalTimeout        *float64
	ConnectTimeout      *float64
	SockConnectTimeout  *float64
	SockReadTimeout     *float64
	Headers             []map[string]string
	RateLimit           *int
	Fields              json.RawMessage
}

// String describes the remote without its secrets.
func (r Remote) String() string {
	return fmt.Sprintf("remote %s (%s %q, url %q)", r.ID, r.PulpType, r.Name, r.URL)
}

// GoString keeps %#v from printing the secrets.
func (r Remote) GoString() string { return r.String() }

// LogValue keeps slog from printing the secrets.
func (r Remote) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", r.ID.String()), slog.String("pulp_type", r.PulpType),
		slog.String("name", r.Name))
}

const remoteColumns = `id, created_at, updated_at, pulp_type, name, pulp_labels, url, ca_cert, client_cert,
	client_key, tls_validation, proxy_url, proxy_username, proxy_password, username, password, policy,
	download_concurrency, max_retries, total_timeout, connect_timeout, sock_connect_timeout,
	sock_read_timeout, headers, rate_limit, fields`

func scanRemote(row pgx.Row) (Remote, error) {
	var r Remote
	err := row.Scan(&r.ID, &r.CreatedAt, &r.UpdatedAt, &r.PulpType, &r.Name, &r.PulpLabels, &r.URL, &r.CACert,
		&r.ClientCert, &r.ClientKey, &r.TLSValidation, &r.ProxyURL, &r.ProxyUsername, &r.ProxyPassword,
		&r.Username, &r.Password, &r.Policy, &r.DownloadConcurrency, &r.MaxRetries, &r.TotalTimeout,
		&r.ConnectTimeout, &r.SockConnectTimeout, &r.SockReadTimeout, &r.Headers, &r.RateLimit, &r.Fields)
	return r, translate(err)
}

// normalize fills the empty values the columns do not accept.
func (r *Remote) normalize() {
	if r.PulpLabels == nil {
		r.PulpLabels = map[string]string{}
	}
	if r.Headers == nil {
		r.Headers = []map[string]string{}
	}
	if len(r.Fields) == 0 {
		r.Fields = json.RawMessage("{}")
	}
	if r.Policy == "" {
		r.Policy = "immediate"
	}
}

// CreateRemote inserts a remote; a taken name is ErrConflict.
func (d *DB) CreateRemote(ctx context.Context, r Remote) (Remote, error) {
	r.normalize()
	return scanRemote(d.pool.QueryRow(ctx, `INSERT INTO remotes (id, pulp_type, name, pulp_labels, url, ca_cert,
		client_cert, client_key, tls_validation, proxy_url, proxy_username, proxy_password, username, password,
		policy, download_concurrency, max_retries, total_timeout, connect_timeout, sock_connect_timeout,
		sock_read_timeout, headers, rate_limit, fields)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)
		RETURNING `+remoteColumns,
		NewID(), r.PulpType, r.Name, r.PulpLabels, r.URL, r.CACert, r.ClientCert, r.ClientKey, r.TLSValidation,
		r.ProxyURL, r.ProxyUsername, r.ProxyPassword, r.Username, r.Password, r.Policy, r.DownloadConcurrency,
		r.MaxRetries, r.TotalTimeout, r.ConnectTimeout, r.SockConnectTimeout, r.SockReadTimeout, r.Headers,
		r.RateLimit, r.Fields))
}

// GetRemote reads one remote.
func (d *DB) GetRemote(ctx context.Context, id uuid.UUID) (Remote, error) {
	return scanRemote(d.pool.QueryRow(ctx, "SELECT "+remoteColumns+" FROM remotes WHERE id = $1", id))
}

// RemoteType returns the pulp_type of a remote, or ErrNotFound.
func (d *DB) RemoteType(ctx context.Context, id uuid.UUID) (string, error) {
	var t string
	err := d.pool.QueryRow(ctx, "SELECT pulp_type FROM remotes WHERE id = $1", id).Scan(&t)
	return t, translate(err)
}

// UpdateRemote writes every mutable field of r (pulp_type and the creation
// time stay); a taken name is ErrConflict, a missing remote ErrNotFound.
func (d *DB) UpdateRemote(ctx context.Context, r Remote) (Remote, error) {
	r.normalize()
	return scanRemote(d.pool.QueryRow(ctx, `UPDATE remotes SET name = $2, pulp_labels = $3, url = $4, ca_cert = $5,
		client_cert = $6, client_key = $7, tls_validation = $8, proxy_url = $9, proxy_username = $10,
		proxy_password = $11, username = $12, password = $13, policy = $14, download_concurrency = $15,
		max_retries = $16, total_timeout = $17, connect_timeout = $18, sock_connect_timeout = $19,
		sock_read_timeout = $20, headers = $21, rate_limit = $22, fields = $23, updated_at = now()
		WHERE id = $1 RETURNING `+remoteColumns,
		r.ID, r.Name, r.PulpLabels, r.URL, r.CACert, r.ClientCert, r.ClientKey, r.TLSValidation, r.ProxyURL,
		r.ProxyUsername, r.ProxyPassword, r.Username, r.Password, r.Policy, r.DownloadConcurrency, r.MaxRetries,
		r.TotalTimeout, r.ConnectTimeout, r.SockConnectTimeout, r.SockReadTimeout, r.Headers, r.RateLimit, r.Fields))
}

// DeleteRemote deletes a remote. Repositories that used it keep existing
// with no remote, and its remote artifacts go with it (both by foreign key).
func (d *DB) DeleteRemote(ctx context.Context, id uuid.UUID) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM remotes WHERE id = $1", id)
	if err != nil {
		return translate(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// remoteList maps the filters and orderings of remote lists. Secret columns
// are deliberately absent: filtering or ordering on them would leak them.
var remoteList = listSpec{
	from: "remotes",
	columns: map[string]string{
		"pulp_id": "id", "pulp_created": "created_at", "pulp_last_updated": "updated_at",
		"pulp_type": "pulp_type", "name": "name", "url": "url", "policy": "policy",
		"tls_validation": "tls_validation", "download_concurrency": "download_concurrency",
		"max_retries": "max_retries", "rate_limit": "rate_limit", "total_timeout": "total_timeout",
		"connect_timeout": "connect_timeout", "sock_connect_timeout": "sock_connect_timeout",
		"sock_read_timeout": "sock_read_timeout", "proxy_url": "proxy_url",
	},
	special: map[string]func(Filter, func(any) string) (string, error){
		"pulp_label_select": labelSelect("pulp_labels"),
	},
	idExpr: "id",
}

// ListRemotes lists remotes (all types, or filtered by pulp_type).
func (d *DB) ListRemotes(ctx context.Context, p ListParams) (Page[Remote], error) {
	return listRows(ctx, d.pool, remoteList, remoteColumns, p, scanRemote)
}
