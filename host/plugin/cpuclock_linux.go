package plugin

import (
	"syscall"
	"time"
	"unsafe"
)

// threadID is the calling OS thread's id; the caller has locked its goroutine to it.
func threadID() int { return syscall.Gettid() }

// threadCPU returns the CPU time thread tid of this process has used. Linux encodes a
// thread's CPU clock as ((^tid) << 3) | CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED, as glibc's
// pthread_getcpuclockid does, so any thread can read another's.
func threadCPU(tid int) (time.Duration, bool) {
	clock := uintptr((^tid)<<3 | 6)
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clock, uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
