package fleet

import (
	"os"
	"syscall"
)

// procAttr makes the kernel kill a worker when the parent dies, so a killed
// parent never leaves orphans holding tens of thousands of connections.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// usage reads a finished worker's CPU time and peak RSS from its rusage
// (Linux reports ru_maxrss in KiB).
func usage(ps *os.ProcessState) (userS, sysS float64, maxRSSBytes int64) {
	ru, ok := ps.SysUsage().(*syscall.Rusage)
	if !ok || ru == nil {
		return ps.UserTime().Seconds(), ps.SystemTime().Seconds(), 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime), tv(ru.Stime), ru.Maxrss * 1024
}
