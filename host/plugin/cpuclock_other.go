//go:build !linux

package plugin

import "time"

var clockStart = time.Now()

// threadID is 0 where threads' CPU clocks are not read.
func threadID() int { return 0 }

// threadCPU falls back to the monotonic wall clock: the guest's time is then its wall
// time between host calls.
func threadCPU(int) (time.Duration, bool) { return time.Since(clockStart), true }
