// Package harness drives the real pulpo binary for end-to-end tests: it
// builds the binary and the bundled plugins once per test binary, starts
// `pulpo serve` (and extra `pulpo worker` processes) against a fresh
// PostgreSQL database per test, and talks to them over HTTP.
//
//	func TestMain(m *testing.M) { harness.Main(m) }
//
//	func TestStatus(t *testing.T) {
//		t.Parallel()
//		srv := harness.Start(t, harness.Options{Env: []string{"PULPO_WORKER_TTL=2s"}})
//		status := srv.JSON(t, "GET", "status/", nil, http.StatusOK)
//		...
//		task := srv.RunTask(t, "POST", "repositories/file/file/"+id+"/sync/", map[string]any{"remote": remote})
//	}
//
// Each server gets a database from [dbtest.NewDB] (PULPO_TEST_DATABASE_URL,
// or a private cluster per test binary), a free port on 127.0.0.1 and a
// temporary data directory. Its output goes to a log file, whose tail is
// printed when the test fails; [Process.Log] returns all of it. At the end
// of the test it is stopped with SIGTERM, then SIGKILL after 10 s, and a
// process that did not exit cleanly, or exited by itself, fails the test.
//
// Processes inherit the test's environment without its PULPO_* variables,
// plus PULPO_LOG_LEVEL=debug, plus Options.Env. With -short, Main builds
// nothing and Start skips the test.
package harness

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/pulpo/pulpo/host/db/dbtest"
)

// Built once by Main, read-only afterwards.
var (
	repoRoot  string // directory of go.mod
	binPath   string // the pulpo binary
	pluginDir string // <name>.wasm of every bundled plugin
	wasmCache string // compilation cache shared by servers on fresh data directories
	buildErr  error  // why the above are missing

	cleanupPipe io.Closer // stdin of the process that removes the build directory
)

// Main builds pulpo and the bundled plugins, runs the tests, stops the
// database server dbtest may have started, and exits. Call it from TestMain.
//
// The binary is built from ./host/cmd/pulpo of the module containing the
// working directory. Plugins are built from every plugins/<name> whose
// package is main, exactly as `make plugins` does, but into a temporary
// directory, so tests never run stale plugins/build output. Build failures
// do not stop Main: each test calling Start fails with the compiler output.
func Main(m *testing.M) {
	flag.Parse() // for testing.Short
	if !testing.Short() {
		buildErr = build()
	}
	dbtest.Main(m) // exits
}

// Binary returns the path of the pulpo binary Main built, failing t when
// there is none.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("harness: integration test skipped in -short mode")
	}
	if buildErr != nil {
		t.Fatalf("harness: %v", buildErr)
	}
	if binPath == "" {
		t.Fatal("harness: the pulpo binary is not built; call harness.Main(m) from TestMain")
	}
	return binPath
}

// PluginDir returns the directory holding the bundled plugins Main built.
func PluginDir(t testing.TB) string {
	t.Helper()
	Binary(t)
	return pluginDir
}

// RepoRoot returns the repository root, where go.mod is (for fixtures).
func RepoRoot(t testing.TB) string {
	t.Helper()
	Binary(t)
	return repoRoot
}

func build() error {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return fmt.Errorf("find the module root with go env GOMOD: %q, %v", gomod, err)
	}
	repoRoot = filepath.Dir(gomod)

	dir, err := os.MkdirTemp("", "pulpo-harness-")
	if err != nil {
		return err
	}
	if err := removeAtExit(dir); err != nil {
		os.RemoveAll(dir)
		return err
	}
	pluginDir = filepath.Join(dir, "plugins")
	if err := os.Mkdir(pluginDir, 0o755); err != nil {
		return err
	}
	wasmCache = filepath.Join(dir, "warm", "cache")
	if err := os.MkdirAll(wasmCache, 0o755); err != nil {
		return err
	}

	var wg sync.WaitGroup
	var binErr, plugErr error
	wg.Go(func() {
		bin := filepath.Join(dir, "pulpo")
		if binErr = goBuild(nil, "-o", bin, "./host/cmd/pulpo"); binErr == nil {
			binPath = bin
		}
	})
	wg.Go(func() { plugErr = buildPlugins(pluginDir) })
	wg.Wait()
	if binErr != nil {
		return binErr
	}
	if plugErr != nil {
		return plugErr
	}
	warmCache(dir)
	return nil
}

// warmCache compiles the plugins into wasmCache once, with `pulpo plugins`,
// before servers started in parallel would each compile them. A failure is
// left to the servers to report: they load the same plugins.
func warmCache(dir string) {
	cmd := exec.Command(binPath, "plugins", "--data-dir", filepath.Join(dir, "warm"), "--plugin-dir", pluginDir)
	cmd.Env = environment(nil)
	cmd.Run() //nolint:errcheck // see above
}

// wasm is the environment of plugin builds.
var wasm = []string{"GOOS=wasip1", "GOARCH=wasm"}

// buildPlugins builds plugins/<name> to out/<name>.wasm for every direct
// subdirectory of plugins/ whose package is main.
func buildPlugins(out string) error {
	cmd := exec.Command("go", "list", "-e", "-f", "{{.Name}} {{.Dir}}", "./plugins/...")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), wasm...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	list, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("go list ./plugins/...: %v\n%s", err, stderr.Bytes())
	}
	plugins := filepath.Join(repoRoot, "plugins")
	for line := range strings.Lines(string(list)) {
		name, dir, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || name != "main" || filepath.Dir(dir) != plugins {
			continue
		}
		base := filepath.Base(dir)
		if base == "build" || base == "testdata" {
			continue
		}
		if err := goBuild(wasm, "-buildmode=c-shared", "-o", filepath.Join(out, base+".wasm"), "./plugins/"+base); err != nil {
			return err
		}
	}
	return nil
}

func goBuild(env []string, args ...string) error {
	cmd := exec.Command("go", append([]string{"build"}, args...)...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", strings.TrimSpace(strings.Join(env, " ")+" go build "+strings.Join(args, " ")), err, out)
	}
	return nil
}

// removeAtExit removes dir when this process exits, however it exits:
// dbtest.Main ends with os.Exit, so no deferred call would run. A shell in
// its own session waits for the end of its stdin, which the kernel closes
// when this process dies.
func removeAtExit(dir string) error {
	cmd := exec.Command("/bin/sh", "-c", `read -r _ || :; rm -rf "$1"`, "pulpo-harness-cleanup", dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	w, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start cleanup process: %w", err)
	}
	cleanupPipe = w // never written; closed by the kernel at exit
	go cmd.Wait()   //nolint:errcheck // reaps the shell if it ends early
	return nil
}
