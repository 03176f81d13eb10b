//go:build !linux

package hostlimits

import (
	"errors"
	"runtime"
)

// errUnsupported is returned where reading or raising limits is not implemented; Check still
// works on a Host filled in by hand.
var errUnsupported = errors.New("hostlimits: reading host limits is implemented for Linux only, not " + runtime.GOOS)

// RaiseFileLimit raises RLIMIT_NOFILE soft to hard; returns the resulting limits.
func RaiseFileLimit() (soft, hard uint64, err error) { return 0, 0, errUnsupported }

// Read returns this process's limits: RLIMIT_NOFILE, the ephemeral port range and the fds open now.
func Read() (Host, error) { return Host{}, errUnsupported }
