package harness

import "syscall"

// sysProcAttr makes the kernel kill a pulpo process when the test binary
// dies, so a crashed or timed-out test leaves no server behind.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
