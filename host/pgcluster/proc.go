package pgcluster

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// readPID returns the PID on the first line of a postmaster.pid file.
func readPID(path string) (int, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	return pid, err == nil && pid > 0
}

// postmasterOf reports whether pid is a live postgres process serving pgdata.
// A PID from a killed server may have been reused by an unrelated process
// (common in containers), which would make the new server refuse to start;
// on Linux /proc tells them apart. Where it cannot tell, it answers true.
func postmasterOf(pid int, pgdata string) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		_, noProc := os.Stat("/proc/self")
		return noProc != nil // no /proc: trust kill
	}
	// pid (comm) state ...
	s := string(stat)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+3 > len(s) {
		return true
	}
	comm, state := s[open+1:end], s[end+2]
	if state == 'Z' || state == 'X' {
		return false
	}
	if comm != "postgres" && comm != "postmaster" {
		return false
	}
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return true // not ours to inspect: assume it is the server
	}
	want, err := filepath.EvalSymlinks(pgdata)
	if err != nil {
		want = pgdata
	}
	return cwd == want
}
