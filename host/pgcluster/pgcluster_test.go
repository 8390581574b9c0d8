package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// requireBinaries skips the test when PostgreSQL is not installed, except in
// CI, where a skip would hide that nothing was tested.
func requireBinaries(t *testing.T) {
	t.Helper()
	_, err := FindBinDir()
	if errors.Is(err, ErrNoBinaries) {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %v", err)
		}
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// clusterDir returns a fresh 0755 directory under /tmp. Not t.TempDir: as
// root, its 0700 parent would keep the postgres user out.
func clusterDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func queryInt(t *testing.T, url, sql string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func reachable(url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

func start(t *testing.T, o Options) *Cluster {
	t.Helper()
	began := time.Now()
	c, err := Start(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Start took %v (owned=%v)", time.Since(began).Round(time.Millisecond), c.owned)
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c
}

func TestFindBinDir(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	if !hasPrograms(dir) {
		t.Fatalf("FindBinDir() = %s, which lacks %v", dir, programs)
	}
	major, err := serverMajor(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("bin dir %s, PostgreSQL %s", dir, major)
}

func TestSocketDir(t *testing.T) {
	t.Parallel()
	if got := socketDir("/var/lib/pulpo/postgres", 0); got != "/var/lib/pulpo/postgres/run" {
		t.Errorf("short dir: got %s", got)
	}
	long := "/" + strings.Repeat("x", 100)
	got := socketDir(long, 101)
	if !strings.HasPrefix(got, "/tmp/pulpo-pg-101-") || len(got) > maxSocketDir {
		t.Errorf("long dir: got %s", got)
	}
	if again := socketDir(long, 101); again != got {
		t.Errorf("socketDir not deterministic: %s, %s", got, again)
	}
}

// TestCluster walks one cluster through its life: a concurrent first start,
// attach, stop, restart, and restart after the postmaster was SIGKILLed. Its
// Dir is too long for a socket path, so the socket lives under /tmp.
func TestCluster(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir := filepath.Join(clusterDir(t), strings.Repeat("long-directory-name/", 5))
	o := Options{Dir: dir, Logger: testLogger(t), Fast: true, Database: "app"}
	acct, err := currentAccount()
	if err != nil {
		t.Fatal(err)
	}
	sockDir := socketDir(dir, acct.uid)
	t.Cleanup(func() { os.RemoveAll(sockDir) })

	// Two concurrent starts on an empty Dir: one initialises and starts the
	// server, the other waits for the lock and then uses it.
	var (
		wg   sync.WaitGroup
		cs   [2]*Cluster
		errs [2]error
	)
	for i := range cs {
		wg.Go(func() { cs[i], errs[i] = Start(t.Context(), o) })
	}
	wg.Wait()
	for i, c := range cs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(func() { c.Stop(context.Background()) })
	}
	owner, other := cs[0], cs[1]
	if !owner.owned {
		owner, other = other, owner
	}
	if !owner.owned || other.owned {
		t.Fatalf("owned = %v, %v; want exactly one owner", cs[0].owned, cs[1].owned)
	}
	if owner.sockDir != sockDir || !strings.HasPrefix(sockDir, "/tmp/pulpo-pg-") {
		t.Errorf("socket dir %s: want the /tmp fallback for a long Dir", owner.sockDir)
	}
	if owner.URL() != other.URL() {
		t.Errorf("URLs differ: %s, %s", owner.URL(), other.URL())
	}
	if n := queryInt(t, owner.URL(), "SELECT 1"); n != 1 {
		t.Fatalf("SELECT 1 = %d", n)
	}
	exec1(t, owner.URL(), "CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)")

	// Only the starter stops the server.
	if err := other.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !reachable(owner.URL()) {
		t.Fatal("server down after Stop on a Cluster that did not start it")
	}
	if err := owner.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if reachable(owner.URL()) {
		t.Fatal("server still up after Stop")
	}
	if err := owner.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A restart reuses the data.
	c := start(t, o)
	if !c.owned {
		t.Fatal("restart did not start the server")
	}
	if n := queryInt(t, c.URL(), "SELECT n FROM kept"); n != 42 {
		t.Fatalf("kept = %d after restart", n)
	}

	// SIGKILL the postmaster: its postmaster.pid stays behind.
	pid, ok := readPID(filepath.Join(c.pgdata, "postmaster.pid"))
	if !ok {
		t.Fatal("no postmaster.pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); postmasterOf(pid, c.pgdata); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("postmaster survived SIGKILL")
		}
	}
	if _, err := os.Stat(filepath.Join(c.pgdata, "postmaster.pid")); err != nil {
		t.Fatalf("want a stale postmaster.pid: %v", err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatalf("Stop after the server was killed: %v", err)
	}
	c2 := start(t, o)
	if !c2.owned {
		t.Fatal("start after SIGKILL did not start the server")
	}
	if n := queryInt(t, c2.URL(), "SELECT n FROM kept"); n != 42 {
		t.Fatalf("kept = %d after crash restart", n)
	}
	if err := c2.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestTemporary(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir := clusterDir(t)
	c := start(t, Options{Dir: dir, Logger: testLogger(t), Fast: true, Temporary: true})
	if c.sockDir != filepath.Join(dir, "run") {
		t.Errorf("socket dir %s, want %s/run", c.sockDir, dir)
	}
	if n := queryInt(t, c.URL(), "SELECT count(*) FROM pg_database WHERE datname = 'pulpo'"); n != 1 {
		t.Fatalf("database pulpo missing")
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Stop left %s behind: %v", dir, err)
	}
	if reachable(c.URL()) {
		t.Fatal("server still up")
	}
}

// TestTemporaryWatchdog starts a Temporary cluster in a child process that
// exits without Stop; the watchdog must stop the server and delete Dir.
func TestTemporaryWatchdog(t *testing.T) {
	t.Parallel()
	requireBinaries(t)
	dir := clusterDir(t)
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestWatchdogHelper$")
	cmd.Env = append(os.Environ(), "PGCLUSTER_HELPER_DIR="+dir)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	_, after, ok := strings.Cut(string(out), "POSTMASTER_PID=")
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(after, "\n", 2)[0]))
	if !ok || err != nil {
		t.Fatalf("helper printed no pid:\n%s", out)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, statErr := os.Stat(dir)
		alive := processAlive(pid)
		if errors.Is(statErr, os.ErrNotExist) && !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: dir stat %v, postmaster %d alive %v", statErr, pid, alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// processAlive reports whether pid runs and is no zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil && os.IsNotExist(err) && !dirExists("/proc/self")
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || (stat[i+2] != 'Z' && stat[i+2] != 'X')
}

func dirExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestWatchdogHelper(t *testing.T) {
	dir := os.Getenv("PGCLUSTER_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process for TestTemporaryWatchdog")
	}
	c, err := Start(t.Context(), Options{Dir: dir, Fast: true, Temporary: true, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	pid, _ := readPID(filepath.Join(c.pgdata, "postmaster.pid"))
	fmt.Printf("POSTMASTER_PID=%d\n", pid)
	os.Exit(0) // no Stop: the watchdog cleans up
}

func TestUnreachableDirAsRoot(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("only root switches to the postgres user")
	}
	if _, err := currentAccount(); err != nil {
		t.Skip(err)
	}
	private := clusterDir(t)
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(t.Context(), Options{Dir: filepath.Join(private, "pg")})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), private) {
		t.Fatalf("want a clear error naming %s, got %v", private, err)
	}
	t.Log(err)
}

func TestBadBinDir(t *testing.T) {
	t.Parallel()
	_, err := Start(t.Context(), Options{Dir: clusterDir(t), BinDir: "/nonexistent/bin"})
	if !errors.Is(err, ErrNoBinaries) || !strings.Contains(err.Error(), "/nonexistent/bin") {
		t.Fatalf("want ErrNoBinaries naming the directory, got %v", err)
	}
}
