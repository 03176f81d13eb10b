//go:build unix && !linux

package rig

import "syscall"

// sysProcAttr puts the balancer in its own process group, so stop signals nginx's workers too.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
