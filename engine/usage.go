package engine

import "syscall"

// usage is this process's resource use so far: on shared machines wall time
// says little about the generator's own cost.
type usage struct {
	userS, sysS float64
	maxRSS      int64 // peak resident set, bytes
}

func selfUsage() usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return usage{}
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return usage{userS: tv(ru.Utime), sysS: tv(ru.Stime), maxRSS: ru.Maxrss * 1024}
}
