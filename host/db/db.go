// Package db is the only package that speaks to PostgreSQL: the connection
// pool, migrations, every SQL statement, and the translation of Postgres
// errors into this package's sentinel errors.
package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	// ErrNotFound means the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errors.New("conflict")
	// ErrInUse means a foreign key still references the row.
	ErrInUse = errors.New("in use")
)

// ConstraintError carries the Postgres constraint behind ErrConflict or ErrInUse.
type ConstraintError struct {
	Kind       error
	Constraint string
	Detail     string
}

func (e *ConstraintError) Error() string {
	return fmt.Sprintf("%v: %s (%s)", e.Kind, e.Constraint, e.Detail)
}

func (e *ConstraintError) Unwrap() error { return e.Kind }

// DB is the handle every component shares. It is safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
}

// Open connects to url (a libpq URL or key/value string; PG* env vars apply)
// and checks the connection.
func Open(ctx context.Context, url string, maxConns int32, logger *slog.Logger) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("database url: %w", err)
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect database: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect database: %w", err)
	}
	return New(pool, logger), nil
}

// New wraps an existing pool.
func New(pool *pgxpool.Pool, logger *slog.Logger) *DB {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &DB{pool: pool, logger: logger}
}

// Pool exposes the pool for migrations and tests.
func (d *DB) Pool() *pgxpool.Pool { return d.pool }

// Close closes the pool.
func (d *DB) Close() { d.pool.Close() }

// Ping checks the database answers.
func (d *DB) Ping(ctx context.Context) error { return d.pool.Ping(ctx) }

// querier is what both the pool and a transaction offer.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a transaction, committing when it returns nil.
func (d *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return translate(err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	return translate(tx.Commit(ctx))
}

// NewID returns a time-ordered UUIDv7, the primary key of every table.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// translate maps pgx and Postgres errors onto this package's sentinels.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch pg.Code {
		case "23505":
			return &ConstraintError{Kind: ErrConflict, Constraint: pg.ConstraintName, Detail: pg.Detail}
		case "23503":
			return &ConstraintError{Kind: ErrInUse, Constraint: pg.ConstraintName, Detail: pg.Detail}
		}
	}
	return err
}

func isUndefinedTable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "42P01"
}

// Notification is a Postgres NOTIFY message.
type Notification struct {
	Channel string
	Payload string
}

// Listen holds one connection LISTENing on channels and calls fn for each
// notification until ctx ends. It reconnects after connection errors. Each
// time LISTEN is in place, the first time included, it calls fn with an empty
// Notification so callers can re-check what was sent before they listened.
func (d *DB) Listen(ctx context.Context, channels []string, fn func(Notification)) error {
	for {
		err := d.listenOnce(ctx, channels, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d.logger.WarnContext(ctx, "listen connection lost, reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (d *DB) listenOnce(ctx context.Context, channels []string, fn func(Notification)) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The connection carries LISTEN state: never hand it back to the pool.
	pc := conn.Hijack()
	defer pc.Close(context.WithoutCancel(ctx)) //nolint:errcheck
	for _, ch := range channels {
		if _, err := pc.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	fn(Notification{})
	for {
		n, err := pc.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		fn(Notification{Channel: n.Channel, Payload: n.Payload})
	}
}

// Notify sends a NOTIFY outside any transaction.
func (d *DB) Notify(ctx context.Context, channel, payload string) error {
	_, err := d.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload)
	return translate(err)
}
