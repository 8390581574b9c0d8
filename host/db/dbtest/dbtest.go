// Package dbtest gives tests a real PostgreSQL: a fresh database per test,
// copied from a template database that holds the migrated schema.
//
// The server is PULPO_TEST_DATABASE_URL when set (its role needs CREATEDB),
// else a private cluster (host/pgcluster) that this test binary starts on
// first use, in a temporary directory, and stops in Main. Without either,
// tests that need a database skip, except when the CI environment variable is
// set: then they fail, so CI cannot pass by skipping.
//
// The template, pulpo_tmpl_<first 12 hex digits of db.MigrationsHash()>, is
// built once per migration set and server, under an advisory lock, so test
// binaries running in parallel against one server do not race. It accepts no
// connections once built, which CREATE DATABASE ... TEMPLATE requires.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		t.Parallel()
//		pool := dbtest.NewPool(t)
//		...
//	}
//
// Tests of package db itself must live in package db_test: dbtest imports db.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pulpo/pulpo/host/db"
	"github.com/pulpo/pulpo/host/pgcluster"
)

// EnvURL names the variable holding a server URL for tests.
const EnvURL = "PULPO_TEST_DATABASE_URL"

// templateLockKey serialises template builds across test binaries. It is
// taken in the database named by the server URL (advisory locks are per
// database), which every binary shares.
const templateLockKey = 0x70756c706f_7464 // "pulpo" "td"

var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	cluster    *pgcluster.Cluster // started by this binary, stopped by Main

	adminOnce sync.Once
	adminPool *pgxpool.Pool
	adminErr  error

	templateOnce sync.Once
	templateName string
	templateErr  error
)

// Main runs the tests, stops the private cluster if this binary started one,
// and exits with the tests' code. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	if adminPool != nil {
		adminPool.Close()
	}
	if cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := cluster.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest:", err)
		}
		cancel()
	}
	os.Exit(code)
}

// ServerURL returns the URL of the test server's maintenance database: the
// value of PULPO_TEST_DATABASE_URL, or a private cluster started once per
// test binary. Without either it skips t, or fails it when CI is set.
func ServerURL(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			serverURL = u
			return
		}
		serverURL, serverErr = startCluster()
	})
	if serverErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("dbtest: no PostgreSQL for tests and CI is set: %v", serverErr)
		}
		t.Skipf("dbtest: no PostgreSQL for tests (set %s, or apt-get install -y postgresql): %v", EnvURL, serverErr)
	}
	return serverURL
}

// startCluster starts a disposable cluster: Temporary, so its directory and
// server go away even if the binary dies before Main's Stop.
func startCluster() (string, error) {
	dir, err := os.MkdirTemp("", "pulpo-dbtest-")
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Dir: dir, Fast: true, Temporary: true, Database: "postgres"})
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	cluster = c
	return c.URL(), nil
}

// NewDB creates an empty, migrated database pulpo_test_<random> from the
// template, drops it (WITH (FORCE)) when t ends, and returns its URL.
func NewDB(t testing.TB) string {
	t.Helper()
	server := ServerURL(t)
	admin := admin(t, server)
	tmpl := template(t, admin, server)

	name := "pulpo_test_" + randomHex(8)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()); err != nil {
		t.Fatalf("dbtest: create database %s from %s: %v", name, tmpl, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("dbtest: drop database %s: %v", name, err)
		}
	})
	return withDatabase(server, name)
}

// NewPool returns a pool on a NewDB database, closed when t ends.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	url := NewDB(t)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// admin returns the binary's pool on the server's maintenance database.
func admin(t testing.TB, server string) *pgxpool.Pool {
	t.Helper()
	adminOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(server)
		if err != nil {
			adminErr = err
			return
		}
		cfg.MaxConns = 4
		adminPool, adminErr = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	if adminErr != nil {
		t.Fatalf("dbtest: connect %s: %v", redact(server), adminErr)
	}
	return adminPool
}

// template returns the migrated template's name, building it on first use.
func template(t testing.TB, admin *pgxpool.Pool, server string) string {
	t.Helper()
	templateOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		templateName, templateErr = buildTemplate(ctx, admin, server)
	})
	if templateErr != nil {
		t.Fatalf("dbtest: template database: %v", templateErr)
	}
	return templateName
}

// buildTemplate creates and migrates the template for the current migration
// set unless a complete one exists. datistemplate marks completeness: it is
// set last, so a template left half-built by a killed run is rebuilt.
func buildTemplate(ctx context.Context, admin *pgxpool.Pool, server string) (string, error) {
	hash := db.MigrationsHash()
	name := "pulpo_tmpl_" + hash[:min(12, len(hash))]
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return "", fmt.Errorf("lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", templateLockKey) //nolint:errcheck // released with the session anyway

	var done *bool
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&done)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", err
	}
	if done != nil && *done {
		return name, nil
	}
	ident := pgx.Identifier{name}.Sanitize()
	if done != nil {
		if _, err := conn.Exec(ctx, "DROP DATABASE "+ident+" WITH (FORCE)"); err != nil {
			return "", fmt.Errorf("drop unfinished %s: %w", name, err)
		}
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident+" TEMPLATE template0"); err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, withDatabase(server, name))
	if err != nil {
		return "", err
	}
	err = db.Migrate(ctx, pool)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate %s: %w", name, err)
	}
	// No connections from now on: CREATE DATABASE ... TEMPLATE fails while
	// anyone is connected to the template.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident+" WITH ALLOW_CONNECTIONS false IS_TEMPLATE true"); err != nil {
		return "", err
	}
	return name, nil
}

// withDatabase points a connection string, URL or keyword/value, at db.
func withDatabase(connString, db string) string {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		base, query, hasQuery := strings.Cut(connString, "?")
		scheme, rest, _ := strings.Cut(base, "://")
		authority, _, _ := strings.Cut(rest, "/")
		out := scheme + "://" + authority + "/" + db
		if hasQuery {
			out += "?" + query
		}
		return out
	}
	return connString + " dbname=" + db // later keywords win
}

// redact hides a password in a connection string for error messages.
func redact(connString string) string {
	cfg, err := pgconn.ParseConfig(connString)
	if err != nil || cfg.Password == "" {
		return connString
	}
	return strings.ReplaceAll(connString, cfg.Password, "xxxxx")
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
