package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
const StopTimeout = 10 * time.Second

// Process is one running pulpo process. Its methods must be called from the
// test's goroutine.
type Process struct {
	t       testing.TB
	name    string // serve, serve#2, worker#1...
	args    []string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	waitErr error         // set before done is closed
	asked   atomic.Bool   // Stop or Kill was called: an exit is expected
	shown   bool          // a failure message already showed the log's tail
}

// seq numbers processes in log names across the test binary.
var seq atomic.Int64

// startProcess starts the pulpo binary with args, output to a log file in
// logDir, and arranges for it to be stopped when t ends.
func startProcess(t testing.TB, name, dir, logDir string, env, args []string) *Process {
	t.Helper()
	p := &Process{
		t:       t,
		name:    name,
		args:    args,
		logPath: filepath.Join(logDir, fmt.Sprintf("%s-%d.log", strings.ReplaceAll(name, "#", "-"), seq.Add(1))),
		done:    make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer logFile.Close() // the child has its own copy
	p.cmd = exec.Command(Binary(t), args...)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout = logFile // an *os.File: no copying goroutine, Wait does not block on output
	p.cmd.Stderr = logFile
	p.cmd.SysProcAttr = sysProcAttr()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("harness: start pulpo %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(p.cleanup)
	return p
}

// cleanup stops the process at the end of the test and reports a process
// that exited without being asked to.
func (p *Process) cleanup() {
	if p.Exited() && !p.asked.Load() {
		p.t.Errorf("harness: pulpo %s exited by itself: %v\n%s", p.name, p.waitErr, p.shownTail(60))
	}
	p.Stop()
	if p.t.Failed() && !p.shown {
		p.t.Logf("harness: pulpo %s (%s), last lines of %s:\n%s", p.name, strings.Join(p.args, " "), p.logPath, p.Tail(100))
	}
}

// Name returns the process's name in messages, such as "serve" or "worker#1".
func (p *Process) Name() string { return p.name }

// PID returns the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the process to exit by itself and returns
// its exit error (nil for status 0); it fails t on timeout.
func (p *Process) Wait(timeout time.Duration) error {
	p.t.Helper()
	p.asked.Store(true)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		p.t.Fatalf("harness: pulpo %s still running after %v\n%s", p.name, timeout, p.shownTail(40))
		return nil
	}
}

// Kill sends SIGKILL and waits for the process to exit, as a crash or an
// out-of-memory kill would end it.
func (p *Process) Kill() {
	p.asked.Store(true)
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGKILL) //nolint:errcheck // exits anyway
	<-p.done
}

// Stop sends SIGTERM and waits for a clean exit, failing the test (but not
// stopping it) if the process exits with an error or needs SIGKILL after
// StopTimeout. Stopping a stopped process does nothing.
func (p *Process) Stop() {
	p.t.Helper()
	p.asked.Store(true)
	if p.Exited() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // checked by waiting
	select {
	case <-p.done:
		if p.waitErr != nil {
			p.t.Errorf("harness: pulpo %s did not exit cleanly on SIGTERM: %v\n%s", p.name, p.waitErr, p.shownTail(40))
		}
	case <-time.After(StopTimeout):
		p.t.Errorf("harness: pulpo %s still running %v after SIGTERM; killing it\n%s", p.name, StopTimeout, p.shownTail(40))
		p.Kill()
	}
}

// shownTail is Tail for failure messages: the cleanup then does not print
// the log again.
func (p *Process) shownTail(n int) string {
	p.shown = true
	return p.Tail(n)
}

// Log returns everything the process wrote to stdout and stderr so far.
func (p *Process) Log() string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	return string(data)
}

// Tail returns the last n lines of Log.
func (p *Process) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[... %d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// environment returns the environment of pulpo processes: the test's,
// without PULPO_* variables, then PULPO_LOG_LEVEL=debug, then extra (later
// entries win).
func environment(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PULPO_") {
			env = append(env, kv)
		}
	}
	env = append(env, "PULPO_LOG_LEVEL=debug", "PULPO_ADMIN_PASSWORD="+AdminPassword)
	return append(env, extra...)
}

// Exec runs pulpo with args to completion, as a one-shot command such as
// `pulpo version` or `pulpo migrate --database-url URL`, in the environment
// Start uses, and returns its combined output and exit error.
func Exec(t testing.TB, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(Binary(t), args...)
	cmd.Dir = t.TempDir()
	cmd.Env = environment(env)
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	return string(out), err
}
