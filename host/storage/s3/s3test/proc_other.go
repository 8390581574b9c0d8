//go:build !linux

package s3test

import "os/exec"

// setParentDeathSignal does nothing where the kernel offers no parent-death signal: a
// test binary that dies without running Main leaves its server running.
func setParentDeathSignal(*exec.Cmd) {}
