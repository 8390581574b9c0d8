// Package pgcluster runs a private PostgreSQL cluster under a directory, using
// the system's PostgreSQL server binaries. `pulpo serve` uses it when no
// PULPO_DATABASE_URL is set, and host/db/dbtest uses it for tests.
//
// Layout of Options.Dir:
//
//	Dir/
//	  .lock          flock held while a process initialises, starts or stops the cluster
//	  pgdata/        the data directory (initdb output); pgdata/pulpo.conf is rewritten at every start
//	  run/           the unix socket directory (a short directory under /tmp when Dir is too long)
//	  postgres.log   the server log (rotated once to postgres.log.1 past 16 MiB)
//
// The server listens on no TCP address, only on a unix socket in a 0700
// directory, and pg_hba.conf trusts every local connection: only the cluster's
// OS user (and root) can reach it. The database superuser is "postgres",
// whatever the OS user is, so URLs are the same in every setup.
//
// When the process runs as root, initdb refuses to run, so the cluster belongs
// to the "postgres" system user (created by `apt-get install postgresql`):
// Start chowns Dir to it, runs initdb and pg_ctl as that user, and first checks
// that the user can traverse every parent of Dir (/root is usually 0700).
//
// Several processes may Start the same Dir: a lock file serialises them, and
// whoever finds the server already running connects to it without owning it.
// Only the Cluster that started the server stops it; Stop on any other is a
// no-op.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Superuser is the database role initdb creates; URLs connect as it.
const Superuser = "postgres"

// port only names the socket file (.s.PGSQL.5432): the server opens no TCP port.
const port = 5432

// Options configures Start. Only Dir is required.
type Options struct {
	// Dir holds the whole cluster (see the package doc). It is created if
	// missing. When the process is root, Dir is chowned to the postgres user.
	Dir string
	// BinDir holds initdb, pg_ctl and postgres. Default: the directory
	// matching an existing cluster's PG_VERSION, else FindBinDir().
	BinDir string
	// Logger receives lifecycle messages (init, start, stop). Default: none.
	Logger *slog.Logger
	// Database is created after start if missing. Default "pulpo".
	Database string
	// Fast trades durability for speed (fsync, synchronous_commit and
	// full_page_writes off; initdb --no-sync). For tests and throw-away data
	// only: a machine crash can corrupt the cluster.
	Fast bool
	// Temporary makes the cluster disposable: Stop deletes Dir, and if the
	// process exits without calling Stop (a crash, a test timeout, SIGKILL),
	// a small watchdog process stops the server and deletes Dir. Use it with
	// a fresh directory such as os.MkdirTemp's.
	Temporary bool
}

// Cluster is a running server started (or found running) by Start.
type Cluster struct {
	dir      string // absolute Options.Dir
	pgdata   string
	sockDir  string
	logFile  string
	binDir   string
	database string
	acct     account
	log      *slog.Logger
	owned    bool // this Cluster started the server, so Stop stops it
	pid      int  // the postmaster it started
	temp     bool

	mu       sync.Mutex
	stopped  bool
	watchdog *watchdog
}

// Start initialises the cluster in o.Dir if needed, starts the server unless
// it already runs, and creates o.Database if missing. Initialisation happens
// once: an existing pgdata is reused. A postmaster.pid left by a killed server
// does not block the start.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Dir == "" {
		return nil, errors.New("pgcluster: Options.Dir is empty")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: %w", err)
	}
	c := &Cluster{
		dir:      dir,
		pgdata:   filepath.Join(dir, "pgdata"),
		logFile:  filepath.Join(dir, "postgres.log"),
		database: o.Database,
		log:      o.Logger,
		temp:     o.Temporary,
	}
	if c.database == "" {
		c.database = "pulpo"
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With("component", "pgcluster")
	if c.acct, err = currentAccount(); err != nil {
		return nil, err
	}
	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	c.sockDir = socketDir(dir, c.acct.uid)

	unlock, err := lockFile(ctx, filepath.Join(dir, ".lock"))
	if err != nil {
		return nil, fmt.Errorf("pgcluster: lock %s: %w", dir, err)
	}
	defer unlock()
	c.acct.chown(filepath.Join(dir, ".lock")) //nolint:errcheck // lets a later non-root run as that user take the lock

	if c.binDir, err = chooseBinDir(o.BinDir, c.pgdata); err != nil {
		return nil, err
	}
	if err := c.checkVersion(ctx); err != nil {
		return nil, err
	}
	if err := c.acct.mkdirPrivate(c.sockDir); err != nil {
		return nil, fmt.Errorf("pgcluster: socket directory: %w", err)
	}
	if err := c.initdb(ctx, o.Fast); err != nil {
		return nil, err
	}

	running, err := c.findRunning(ctx)
	if err != nil {
		return nil, err
	}
	if running {
		c.log.InfoContext(ctx, "using running server", "dir", dir, "socket_dir", c.sockDir)
	} else {
		if c.temp {
			if c.watchdog, err = startWatchdog(c.pgdata, c.dir, c.sockDir); err != nil {
				return nil, fmt.Errorf("pgcluster: %w", err)
			}
		}
		if err := c.start(ctx, o.Fast); err != nil {
			c.stopWatchdog()
			return nil, err
		}
		c.owned = true
		c.pid, _ = readPID(filepath.Join(c.pgdata, "postmaster.pid"))
	}
	if err := c.ensureDatabase(ctx); err != nil {
		if c.owned {
			c.stopLocked(context.WithoutCancel(ctx))
		}
		return nil, err
	}
	return c, nil
}

// URL is a pgx connection string for Options.Database over the unix socket.
func (c *Cluster) URL() string { return c.AdminURL(c.database) }

// AdminURL is a pgx connection string for database db as the superuser.
func (c *Cluster) AdminURL(db string) string {
	q := url.Values{}
	q.Set("host", c.sockDir)
	q.Set("port", strconv.Itoa(port)) // a PGPORT in the environment must not change the socket name
	q.Set("user", Superuser)
	q.Set("sslmode", "disable")
	return "postgres:///" + url.PathEscape(db) + "?" + q.Encode()
}

// Stop stops the server with pg_ctl stop -m fast if this Cluster started it;
// on a Cluster that found the server running it only marks it stopped. It is
// safe to call more than once. A Temporary cluster's Dir is deleted.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	if !c.owned {
		return nil
	}
	unlock, err := lockFile(ctx, filepath.Join(c.dir, ".lock"))
	if err != nil {
		return fmt.Errorf("pgcluster: lock %s: %w", c.dir, err)
	}
	err = c.stopServer(ctx)
	unlock()
	if c.temp {
		if rerr := os.RemoveAll(c.dir); rerr != nil && err == nil {
			err = fmt.Errorf("pgcluster: remove %s: %w", c.dir, rerr)
		}
		if c.sockDir != filepath.Join(c.dir, "run") {
			os.RemoveAll(c.sockDir) //nolint:errcheck // a leftover empty dir under /tmp is harmless
		}
	}
	c.stopWatchdog()
	return err
}

// stopLocked stops a server this Start just started, the lock being held.
func (c *Cluster) stopLocked(ctx context.Context) {
	c.stopped = true
	if err := c.stopServer(ctx); err != nil {
		c.log.WarnContext(ctx, "stop after failed start", "err", err)
	}
	if c.temp {
		os.RemoveAll(c.dir) //nolint:errcheck // best effort after a failure
	}
	c.stopWatchdog()
}

func (c *Cluster) stopWatchdog() {
	if c.watchdog != nil {
		c.watchdog.release()
		c.watchdog = nil
	}
}

func (c *Cluster) stopServer(ctx context.Context) error {
	pid, ok := readPID(filepath.Join(c.pgdata, "postmaster.pid"))
	if !ok || pid != c.pid || !postmasterOf(pid, c.pgdata) {
		return nil // already stopped, killed, or replaced by another start
	}
	start := time.Now()
	if out, err := c.acct.run(ctx, c.dir, c.bin("pg_ctl"), "stop", "-D", c.pgdata, "-m", "fast", "-w", "-t", "60", "-s"); err != nil {
		if pid, ok := readPID(filepath.Join(c.pgdata, "postmaster.pid")); !ok || !postmasterOf(pid, c.pgdata) {
			return nil // stopped meanwhile, or by someone else
		}
		return fmt.Errorf("pgcluster: pg_ctl stop: %w%s", err, detail(out))
	}
	c.log.InfoContext(ctx, "stopped server", "dir", c.dir, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

func (c *Cluster) bin(name string) string { return filepath.Join(c.binDir, name) }

// prepareDir creates Dir and, as root, hands it to the postgres user after
// checking the user can reach it.
func (c *Cluster) prepareDir() error {
	if err := os.MkdirAll(filepath.Dir(c.dir), 0o755); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := c.acct.checkTraversable(c.dir); err != nil {
		return err
	}
	if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := c.acct.chown(c.dir); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	fi, err := os.Stat(c.pgdata)
	if err == nil {
		if uid, ok := ownerOf(fi); ok && uid != c.acct.uid {
			return fmt.Errorf("pgcluster: %s belongs to uid %d, but the server would run as %s (uid %d); use another directory or run as that user",
				c.pgdata, uid, c.acct.name, c.acct.uid)
		}
	}
	return nil
}

// checkVersion refuses to run binaries of another major version than the one
// that initialised pgdata.
func (c *Cluster) checkVersion(ctx context.Context) error {
	data, err := os.ReadFile(filepath.Join(c.pgdata, "PG_VERSION"))
	if err != nil {
		return nil // no cluster yet
	}
	want := strings.TrimSpace(string(data))
	have, err := serverMajor(ctx, c.binDir)
	if err != nil {
		return err
	}
	if have != want {
		return fmt.Errorf("pgcluster: %s was initialised by PostgreSQL %s, but %s holds PostgreSQL %s; install postgresql-%s (apt-get install -y postgresql-%s) or set the binary directory",
			c.pgdata, want, c.binDir, have, want, want)
	}
	return nil
}

// initdb creates pgdata unless it already holds a cluster. initdb writes into
// pgdata.init, renamed into place when complete, so a killed initdb leaves
// nothing that looks like a cluster.
func (c *Cluster) initdb(ctx context.Context, fast bool) error {
	if _, err := os.Stat(filepath.Join(c.pgdata, "PG_VERSION")); err == nil {
		return nil
	}
	if entries, err := os.ReadDir(c.pgdata); err == nil {
		if len(entries) > 0 {
			return fmt.Errorf("pgcluster: %s exists but holds no PostgreSQL cluster (no PG_VERSION); move it away", c.pgdata)
		}
		if err := os.Remove(c.pgdata); err != nil {
			return fmt.Errorf("pgcluster: %w", err)
		}
	}
	tmp := c.pgdata + ".init"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	start := time.Now()
	args := []string{"-D", tmp, "-U", Superuser, "--auth=trust", "--encoding=UTF8", "--no-locale"}
	if fast {
		args = append(args, "--no-sync")
	}
	if out, err := c.acct.run(ctx, c.dir, c.bin("initdb"), args...); err != nil {
		return fmt.Errorf("pgcluster: initdb: %w%s", err, detail(out))
	}
	const hba = `# Written by pulpo. The server listens on no TCP address, only on a unix
# socket in a 0700 directory, so "trust" admits the cluster's OS user and root.
local all all trust
`
	if err := c.acct.writeFile(filepath.Join(tmp, "pg_hba.conf"), []byte(hba)); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	conf, err := os.OpenFile(filepath.Join(tmp, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	_, err = conf.WriteString("\n# Settings pulpo rewrites at every start; ALTER SYSTEM overrides them.\ninclude_if_exists = 'pulpo.conf'\n")
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Rename(tmp, c.pgdata); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	c.log.InfoContext(ctx, "initialised cluster", "dir", c.dir, "bin_dir", c.binDir, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// findRunning reports whether a server for this pgdata already accepts
// connections. A server that is starting or shutting down is waited for; a
// postmaster.pid whose process is gone (or is no postmaster of pgdata, its
// PID reused) is removed.
func (c *Cluster) findRunning(ctx context.Context) (bool, error) {
	if c.ping(ctx) {
		return true, nil
	}
	pidFile := filepath.Join(c.pgdata, "postmaster.pid")
	pid, ok := readPID(pidFile)
	if !ok {
		return false, nil
	}
	if postmasterOf(pid, c.pgdata) {
		deadline := time.Now().Add(30 * time.Second)
		for postmasterOf(pid, c.pgdata) {
			if c.ping(ctx) {
				return true, nil
			}
			if time.Now().After(deadline) {
				return false, fmt.Errorf("pgcluster: server (pid %d) of %s runs but accepts no connections on %s%s", pid, c.dir, c.sockDir, detail(tail(c.logFile)))
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		return false, nil
	}
	c.log.InfoContext(ctx, "removing stale postmaster.pid", "pid", pid, "dir", c.dir)
	for _, f := range []string{pidFile, filepath.Join(c.sockDir, fmt.Sprintf(".s.PGSQL.%d.lock", port))} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("pgcluster: %w", err)
		}
	}
	return false, nil
}

// ping reports whether the server accepts connections on the socket.
func (c *Cluster) ping(ctx context.Context) bool {
	if _, err := os.Stat(filepath.Join(c.sockDir, fmt.Sprintf(".s.PGSQL.%d", port))); err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.AdminURL("postgres"))
	if err != nil {
		return false
	}
	conn.Close(ctx) //nolint:errcheck // only probing
	return true
}

// settings returns pgdata/pulpo.conf, rewritten at every start.
func (c *Cluster) settings(fast bool) string {
	var b strings.Builder
	b.WriteString("# Written by pulpo at every start; edits are lost. Use ALTER SYSTEM to override.\n")
	set := func(k, v string) { fmt.Fprintf(&b, "%s = %s\n", k, v) }
	set("listen_addresses", "''")
	set("unix_socket_directories", quoteConf(c.sockDir))
	set("unix_socket_permissions", "0700")
	set("port", strconv.Itoa(port))
	set("max_connections", "200")
	set("shared_buffers", "'128MB'")
	if fast {
		set("fsync", "off")
		set("synchronous_commit", "off")
		set("full_page_writes", "off")
	}
	return b.String()
}

func quoteConf(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

const maxLog = 16 << 20

func (c *Cluster) start(ctx context.Context, fast bool) error {
	if err := c.acct.writeFile(filepath.Join(c.pgdata, "pulpo.conf"), []byte(c.settings(fast))); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if fi, err := os.Stat(c.logFile); err == nil && fi.Size() > maxLog {
		os.Rename(c.logFile, c.logFile+".1") //nolint:errcheck // rotation is best effort
	}
	if err := c.acct.touch(c.logFile); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	start := time.Now()
	var err error
	var out []byte
	// A SIGKILLed postmaster's children exit on their own within moments;
	// until they do, the new server refuses their shared memory. Retry briefly.
	for attempt := 0; ; attempt++ {
		out, err = c.acct.run(ctx, c.dir, c.bin("pg_ctl"), "start", "-D", c.pgdata, "-l", c.logFile, "-w", "-t", "60", "-s")
		if err == nil || attempt == 20 || !bytes.Contains(tail(c.logFile), []byte("is still in use")) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start: %w%s%s", err, detail(out), detail(tail(c.logFile)))
	}
	c.log.InfoContext(ctx, "started server", "dir", c.dir, "socket_dir", c.sockDir, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

func (c *Cluster) ensureDatabase(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.AdminURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w%s", err, detail(tail(c.logFile)))
	}
	defer conn.Close(context.WithoutCancel(ctx)) //nolint:errcheck // nothing to do about it
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", c.database).Scan(&exists); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{c.database}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database: created meanwhile
		err = nil
	}
	if err != nil {
		return fmt.Errorf("pgcluster: create database %s: %w", c.database, err)
	}
	c.log.InfoContext(ctx, "created database", "database", c.database)
	return nil
}

// detail formats command output or a log tail for an error message.
func detail(out []byte) string {
	s := strings.TrimSpace(string(out))
	if s == "" {
		return ""
	}
	return ":\n" + s
}

// tail returns the last lines of the server log.
func tail(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const n = 2048
	fi, err := f.Stat()
	if err != nil {
		return nil
	}
	off := max(fi.Size()-n, 0)
	buf := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil
	}
	if off > 0 {
		if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
			buf = buf[i+1:]
		}
	}
	return buf
}
