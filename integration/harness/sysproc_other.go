//go:build !linux

package harness

import "syscall"

// sysProcAttr: outside Linux there is no parent-death signal; processes are
// stopped by the tests' cleanups only.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
