//go:build !linux

package fleet

import (
	"os"
	"syscall"
)

// procAttr: only Linux can tie a child's life to its parent's.
func procAttr() *syscall.SysProcAttr { return nil }

// usage reads a finished worker's CPU time; peak RSS is not portable.
func usage(ps *os.ProcessState) (userS, sysS float64, maxRSSBytes int64) {
	return ps.UserTime().Seconds(), ps.SystemTime().Seconds(), 0
}
