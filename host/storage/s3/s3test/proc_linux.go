package s3test

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill the server when this test binary dies without
// running Main's stop (a panic, a timeout, SIGKILL), so no server outlives its tests.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
