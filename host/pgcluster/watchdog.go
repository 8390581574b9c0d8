package pgcluster

import (
	"fmt"
	"io"
	"os/exec"
	"syscall"
)

// watchdogScript waits until its stdin reaches end of file, which happens
// when this process closes the pipe (Stop) or exits in any way, even by
// SIGKILL. It then fast-stops a server still running in pgdata ($1) and
// deletes the cluster directory ($2) and socket directory ($3). It checks
// /proc that the PID is still a postgres process before signalling it.
const watchdogScript = `read -r _ || :
pid=$(sed -n 1p "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ] && { [ ! -d /proc/self ] || grep -q '^postgres$' "/proc/$pid/comm" 2>/dev/null; }; then
	kill -INT "$pid" 2>/dev/null
	i=0
	while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i+1)); done
fi
rm -rf "$2" "$3"
`

// watchdog is the process that cleans up a Temporary cluster.
type watchdog struct {
	cmd  *exec.Cmd
	pipe io.WriteCloser
}

// startWatchdog starts the watchdog in its own session, so that a Ctrl-C
// aimed at this process's group does not kill it first. Its output goes to
// /dev/null: holding our stdout would keep `go test` waiting.
func startWatchdog(pgdata, dir, sockDir string) (*watchdog, error) {
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pulpo-pgcluster-watchdog", pgdata, dir, sockDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	pipe, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	return &watchdog{cmd: cmd, pipe: pipe}, nil
}

// release lets the watchdog run its cleanup now and waits for it.
func (w *watchdog) release() {
	w.pipe.Close()
	w.cmd.Wait() //nolint:errcheck // its work is best effort
}
