package rig

import "syscall"

// sysProcAttr puts the balancer in its own process group (stop signals the group, nginx's
// workers included) and has the kernel kill it if the test binary dies without cleaning up,
// so a crashed test leaves no balancer holding ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
