package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pulpo/pulpo/host/db/dbtest"
)

// ReadyTimeout is how long Start waits for the status endpoint to answer 200.
const ReadyTimeout = 30 * time.Second

// NoWorkers, as Options.Workers, starts serve with --workers 0.
const NoWorkers = -1

// Options adjusts the server Start runs. The zero value is a server with
// pulpo's defaults on a fresh database.
type Options struct {
	// Args are appended to `pulpo serve --listen ... --data-dir ...
	// --database-url ... --plugin-dir ...`; a flag repeated here wins over
	// the harness's (except --plugin-dir, which adds a directory).
	Args []string
	// Env are KEY=VALUE pairs for the processes, e.g. PULPO_WORKER_TTL=2s.
	// They apply to workers started with StartWorker too.
	Env []string
	// Workers sets --workers: 0 keeps pulpo's default, NoWorkers runs none.
	Workers int
	// DatabaseURL is the database to use; "" means a fresh one from
	// dbtest.NewDB, dropped when the test ends. Set it to share a database
	// between servers.
	DatabaseURL string
	// DataDir is the data directory; "" means a new temporary directory.
	DataDir string
	// PluginDirs replace the bundled plugins Main built; nil keeps them, an
	// empty non-nil slice loads no plugins.
	PluginDirs []string
}

// Server is a running `pulpo serve`. Its embedded Client talks to it:
// srv.JSON(t, "GET", "status/", nil, 200), srv.URL("status/").
type Server struct {
	*Client

	t       testing.TB
	opts    Options
	addr    string
	dataDir string
	dbURL   string
	logDir  string
	proc    *Process
	procs   []*Process // every serve process, for names
	workers int        // StartWorker calls, for names
}

// Start starts `pulpo serve` on a free port of 127.0.0.1 and waits until
// GET /pulp/api/v3/status/ answers 200, failing t with the log's tail if it
// does not within ReadyTimeout. The server is stopped when t ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	Binary(t) // skip or fail before creating a database
	s := &Server{t: t, opts: opts, dataDir: opts.DataDir, dbURL: opts.DatabaseURL, logDir: t.TempDir()}
	if s.dbURL == "" {
		s.dbURL = dbtest.NewDB(t)
	}
	if s.dataDir == "" {
		s.dataDir = t.TempDir()
		// Fresh data directories share one wazero compilation cache (its
		// files are written by rename, safe across processes): the plugins
		// are compiled once per test binary instead of once per server,
		// which takes tens of seconds on a busy 2-core machine.
		if err := os.Symlink(wasmCache, filepath.Join(s.dataDir, "cache")); err != nil {
			t.Fatalf("harness: %v", err)
		}
	}
	// A port found free may be taken before pulpo binds it: try a few.
	for attempt := 1; ; attempt++ {
		s.addr = freeAddr(t)
		s.Client = NewClient(t, "http://"+s.addr)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt < 3 && s.proc.Exited() && strings.Contains(s.proc.Log(), "address already in use") {
			s.proc.Kill() // expected: no complaint at cleanup
			continue
		}
		s.proc.asked.Store(true) // reported here, not again at cleanup
		t.Fatalf("harness: %v\n%s", err, s.proc.shownTail(60))
	}
}

// start runs one serve process on s.addr and waits until it is ready.
func (s *Server) start() error {
	s.t.Helper()
	args := append([]string{"serve", "--listen", s.addr}, s.common()...)
	switch {
	case s.opts.Workers == NoWorkers:
		args = append(args, "--workers", "0")
	case s.opts.Workers > 0:
		args = append(args, "--workers", strconv.Itoa(s.opts.Workers))
	}
	args = append(args, s.opts.Args...)
	name := "serve"
	if len(s.procs) > 0 {
		name = fmt.Sprintf("serve#%d", len(s.procs)+1)
	}
	s.proc = startProcess(s.t, name, s.dataDir, s.logDir, environment(s.opts.Env), args)
	s.procs = append(s.procs, s.proc)
	return s.waitReady()
}

// common returns the flags serve and worker share.
func (s *Server) common() []string {
	args := []string{"--data-dir", s.dataDir, "--database-url", s.dbURL}
	dirs := s.opts.PluginDirs
	if dirs == nil {
		dirs = []string{pluginDir}
	}
	if len(dirs) == 0 {
		return append(args, "--plugin-dir", "")
	}
	for _, d := range dirs {
		args = append(args, "--plugin-dir", d)
	}
	return args
}

// waitReady polls the status endpoint until it answers 200.
func (s *Server) waitReady() error {
	url := s.URL("status/")
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(ReadyTimeout)
	last := "no answer"
	for {
		if s.proc.Exited() {
			return fmt.Errorf("pulpo %s exited during start-up: %v", s.proc.name, s.proc.waitErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		cancel()
		if time.Now().After(deadline) {
			return fmt.Errorf("pulpo %s: GET %s not 200 after %v (last: %s)", s.proc.name, url, ReadyTimeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// freeAddr returns 127.0.0.1:PORT with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.addr }

// DataDir returns the server's data directory.
func (s *Server) DataDir() string { return s.dataDir }

// DatabaseURL returns the URL of the server's database.
func (s *Server) DatabaseURL() string { return s.dbURL }

// Process returns the current serve process (a new one after Restart).
func (s *Server) Process() *Process { return s.proc }

// Kill ends the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.t.Helper()
	s.proc.Kill()
}

// Stop stops the server with SIGTERM (SIGKILL after StopTimeout), failing
// the test if it does not exit cleanly.
func (s *Server) Stop() {
	s.t.Helper()
	s.proc.Stop()
}

// Restart stops the server (if it still runs) and starts it again with the
// same address, database, data directory and options, waiting until it is
// ready.
func (s *Server) Restart() {
	s.t.Helper()
	s.proc.Stop()
	if err := s.start(); err != nil {
		s.proc.asked.Store(true)
		s.t.Fatalf("harness: restart: %v\n%s", err, s.proc.shownTail(60))
	}
}

// StartWorker starts `pulpo worker` on the server's database, data directory
// and plugins, with the server's Options.Env, plus extra arguments such as
// "--workers", "1". It returns at once: the worker opens no port, so wait for
// it through the API if a test depends on it. It is stopped when t ends.
func (s *Server) StartWorker(t testing.TB, extra ...string) *Process {
	t.Helper()
	s.workers++
	args := append(append([]string{"worker"}, s.common()...), extra...)
	return startProcess(t, fmt.Sprintf("worker#%d", s.workers), s.dataDir, s.logDir, environment(s.opts.Env), args)
}
