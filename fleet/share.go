package fleet

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/wsload/wsload/engine/hostlimits"
)

// MaxProcs bounds the worker processes of one run: past a few per core they
// only add scheduling noise, and AutoProcs searches no further.
const MaxProcs = 256

// Sources returns the local addresses worker i of n dials from. With at
// least n addresses every worker gets a disjoint subset (addresses i, i+n,
// i+2n, … counting from 1), so no two workers compete for the ephemeral
// ports of one (source, target) pair; with fewer, every worker uses all of
// them, and the kernel shares each pair's ports out (the engine binds with
// IP_BIND_ADDRESS_NO_PORT). No addresses means the kernel's choice.
func Sources(ips []netip.Addr, i, n int) []netip.Addr {
	if len(ips) < n || n <= 1 {
		return ips
	}
	var out []netip.Addr
	for j := i - 1; j < len(ips); j += n {
		out = append(out, ips[j])
	}
	return out
}

// Target returns the target worker i of n dials when a run has several
// targets: worker i takes targets[(i-1) % len(targets)], so with n a
// multiple of len(targets) every target gets the same number of workers.
func Target(targets []string, i, n int) string {
	if len(targets) == 0 {
		return ""
	}
	return targets[(i-1)%len(targets)]
}

// AutoProcs returns the fewest worker processes, at least n.Procs and at
// least 1, over which n.Connections fit the open-file limit of h (each
// process holds its share, its extra fds and hostlimits' margin). It looks
// at open files only: ports are shared by the host, so more processes do not
// help there, and the pre-flight check reports them. An error means even
// MaxProcs processes do not fit.
func AutoProcs(h hostlimits.Host, n hostlimits.Need) (int, error) {
	for p := max(n.Procs, 1); p <= MaxProcs; p++ {
		n.Procs = p
		err := hostlimits.Check(h, n)
		if err == nil {
			return p, nil
		}
		var le *hostlimits.LimitError
		if !errors.As(err, &le) {
			return 0, fmt.Errorf("fleet: sizing --procs auto: %w", err)
		}
		if !le.Has(hostlimits.OpenFiles) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("fleet: %d connections do not fit the open-file limit (%d per process) even over %d processes: raise `ulimit -n` or split the run over machines with --segment",
		n.Connections, h.FileSoft, MaxProcs)
}
