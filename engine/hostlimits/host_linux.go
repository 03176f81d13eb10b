package hostlimits

import (
	"fmt"
	"os"
	"syscall"
)

// RaiseFileLimit raises RLIMIT_NOFILE soft to hard; returns the resulting limits.
//
// Go already does this at start on Linux (and restores the old soft limit for child
// processes), so this mostly confirms it; it matters when something lowered the soft limit
// since. Raising the hard limit needs root and is left to the operator (scripts/host/tune-linux.sh).
func RaiseFileLimit() (soft, hard uint64, err error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, 0, fmt.Errorf("hostlimits: getrlimit(RLIMIT_NOFILE): %w", err)
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return rl.Cur, rl.Max, fmt.Errorf("hostlimits: raise RLIMIT_NOFILE soft limit %d to hard limit %d: %w", rl.Cur, rl.Max, err)
		}
		rl = want
	}
	return rl.Cur, rl.Max, nil
}

// Read returns this process's limits: RLIMIT_NOFILE, the ephemeral port range and the fds open now.
func Read() (Host, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return Host{}, fmt.Errorf("hostlimits: getrlimit(RLIMIT_NOFILE): %w", err)
	}
	h := Host{FileSoft: rl.Cur, FileHard: rl.Max}
	const rangeFile = "/proc/sys/net/ipv4/ip_local_port_range"
	b, err := os.ReadFile(rangeFile)
	if err != nil {
		return Host{}, fmt.Errorf("hostlimits: %w", err)
	}
	if h.PortLow, h.PortHigh, err = parsePortRange(string(b)); err != nil {
		return Host{}, fmt.Errorf("hostlimits: %s: %w", rangeFile, err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return Host{}, fmt.Errorf("hostlimits: count open files: %w", err)
	}
	// The listing includes the fd ReadDir opened to read it, closed again by now.
	h.OpenFiles = len(fds) - 1
	return h, nil
}
