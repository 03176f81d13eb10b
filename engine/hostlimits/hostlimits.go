// Package hostlimits checks, before dialing, whether this host can hold the connections a run
// asks for: open files per process and ephemeral ports per (source address, target) pair are
// the limits users hit first, and a run that hits them mid-ramp plateaus for reasons that are
// hard to see in its numbers.
//
//	if _, _, err := hostlimits.RaiseFileLimit(); err != nil {
//		return err
//	}
//	h, err := hostlimits.Read()
//	if err != nil {
//		return err
//	}
//	if err := hostlimits.Check(h, hostlimits.Need{Connections: 100000, Targets: 1, SourceIPs: 4, Procs: 2}); err != nil {
//		return err // a *LimitError: which limit, needed vs available, and what to change
//	}
//
// Check is pure, so the arithmetic is table-tested without touching the host.
package hostlimits

import (
	"fmt"
	"sort"
	"strings"
)

// The Linux default of net.ipv4.ip_local_port_range, used when a Host does not say.
const (
	DefaultPortLow  = 32768
	DefaultPortHigh = 60999
)

// FD margin per process on top of the connections and ExtraFDsPerProc: stdio, the event loop's
// epoll and wake-up fds, result files, a resolver socket — plus 1% for sockets in the middle of
// closing, whose fds are still held while their replacements are dialed.
const (
	fdMarginFixed   = 64
	fdMarginPercent = 1
)

// Host is what this machine allows one wsload process.
type Host struct {
	FileSoft, FileHard uint64 // RLIMIT_NOFILE
	PortLow, PortHigh  int    // net.ipv4.ip_local_port_range; zero means the Linux default
	OpenFiles          int    // fds open now, from /proc/self/fd
}

// Need is what a run asks of the host.
type Need struct {
	Connections int
	// Targets is the number of distinct target addresses (ip:port) the connections are spread
	// over evenly; 0 counts as 1.
	Targets int
	// SourceIPs is the number of local addresses dialed from; 0 or 1 means a single,
	// kernel-chosen source.
	SourceIPs int
	// Procs is the number of processes the connections are split over (at least 1).
	Procs int
	// ExtraFDsPerProc counts fds each process holds besides its client connections: listeners,
	// and, when the target runs in-process, one accepted fd per connection — which doubles the
	// need.
	ExtraFDsPerProc int
}

// Limit names a host limit.
type Limit string

const (
	OpenFiles      Limit = "open files"
	EphemeralPorts Limit = "ephemeral ports"
)

// Exceeded is one limit that a Need does not fit.
type Exceeded struct {
	Limit Limit
	// Need and Have count per Per: per process for open files, per (source IP, target) pair for
	// ephemeral ports.
	Need, Have uint64
	Per        string
	// Detail says where Have comes from, e.g. "RLIMIT_NOFILE soft limit; hard limit 1048576".
	Detail   string
	Remedies []string
}

// LimitError lists every limit a Need exceeds, with remedies, for a human to read.
type LimitError struct {
	Connections int
	Exceeded    []Exceeded
}

func (e *LimitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hostlimits: %d connections do not fit this host:", e.Connections)
	for _, x := range e.Exceeded {
		fmt.Fprintf(&b, "\n  %s: need %d per %s, available %d (%s)", x.Limit, x.Need, x.Per, x.Have, x.Detail)
		for _, r := range x.Remedies {
			fmt.Fprintf(&b, "\n    - %s", r)
		}
	}
	return b.String()
}

// Has reports whether limit is among those exceeded.
func (e *LimitError) Has(limit Limit) bool {
	for _, x := range e.Exceeded {
		if x.Limit == limit {
			return true
		}
	}
	return false
}

// Check returns nil when n fits h, and otherwise a *LimitError naming every limit hit.
//
// Open files are per process: each of n.Procs processes holds its share of the connections,
// n.ExtraFDsPerProc, the fds open now, and a margin, and that must fit h.FileSoft (call
// RaiseFileLimit before Read so that FileSoft is as high as it goes).
//
// Ephemeral ports are per host, shared by all processes: the kernel gives each (source address,
// target) pair at most PortHigh-PortLow+1 ports, so more processes do not help, but more source
// addresses or targets do.
func Check(h Host, n Need) error {
	if n.Connections < 0 || n.Targets < 0 || n.SourceIPs < 0 || n.Procs < 0 || n.ExtraFDsPerProc < 0 {
		return fmt.Errorf("hostlimits: negative need %+v", n)
	}
	if n.Connections == 0 {
		return nil
	}
	e := &LimitError{Connections: n.Connections}
	if x, ok := checkFiles(h, n); !ok {
		e.Exceeded = append(e.Exceeded, x)
	}
	if x, ok := checkPorts(h, n); !ok {
		e.Exceeded = append(e.Exceeded, x)
	}
	if len(e.Exceeded) > 0 {
		return e
	}
	return nil
}

// fdsPerProc is the number of fds one of procs processes needs besides openNow.
func fdsPerProc(conns, procs, extra int) uint64 {
	base := uint64(ceilDiv(conns, procs) + extra)
	return base + fdMarginFixed + ceilDiv64(base*fdMarginPercent, 100)
}

func checkFiles(h Host, n Need) (Exceeded, bool) {
	procs := max(n.Procs, 1)
	open := uint64(max(h.OpenFiles, 0))
	need := fdsPerProc(n.Connections, procs, n.ExtraFDsPerProc) + open
	if need <= h.FileSoft {
		return Exceeded{}, true
	}
	x := Exceeded{
		Limit:  OpenFiles,
		Need:   need,
		Have:   h.FileSoft,
		Per:    "process",
		Detail: fmt.Sprintf("RLIMIT_NOFILE soft limit; hard limit %d; %d fds already open", h.FileHard, h.OpenFiles),
	}
	if need <= h.FileHard {
		x.Remedies = append(x.Remedies, fmt.Sprintf(
			"the hard limit allows it: raise the soft limit to the hard one (`ulimit -n %d`; wsload does this itself at start unless something lowered it since)", h.FileHard))
	}
	x.Remedies = append(x.Remedies,
		fmt.Sprintf("raise the limit to at least %d: `ulimit -n %d` in the shell that starts wsload (root may raise the hard limit, up to fs.nr_open)", need, need),
		"for a service: LimitNOFILE= in its systemd unit; for login sessions: `* soft nofile` and `* hard nofile` in /etc/security/limits.conf (scripts/host/tune-linux.sh prints both)")
	if p := procsFor(h, n); p > procs {
		x.Remedies = append(x.Remedies, fmt.Sprintf("split the connections over more processes: --procs %d", p))
	}
	x.Remedies = append(x.Remedies, "split the run over more machines with --segment")
	return x, false
}

// procsFor returns the fewest processes (at least n.Procs) that fit the open files limit, or 0
// when even one connection per process does not fit beside the fixed part of each process's need.
func procsFor(h Host, n Need) int {
	fits := func(p int) bool {
		return fdsPerProc(n.Connections, p, n.ExtraFDsPerProc)+uint64(max(h.OpenFiles, 0)) <= h.FileSoft
	}
	lo := max(n.Procs, 1)
	if !fits(max(n.Connections, lo)) {
		return 0
	}
	// fdsPerProc falls as p grows, so the fitting p form a suffix: binary-search its start.
	return lo + sort.Search(max(n.Connections, lo)-lo, func(i int) bool { return fits(lo + i) })
}

func checkPorts(h Host, n Need) (Exceeded, bool) {
	low, high := h.PortLow, h.PortHigh
	if low == 0 && high == 0 {
		low, high = DefaultPortLow, DefaultPortHigh
	}
	perPair := uint64(max(high-low+1, 0))
	sources, targets := max(n.SourceIPs, 1), max(n.Targets, 1)
	// Connections are spread evenly, so the busiest pair holds the rounded-up share.
	need := uint64(ceilDiv(n.Connections, sources*targets))
	if need <= perPair {
		return Exceeded{}, true
	}
	x := Exceeded{
		Limit:  EphemeralPorts,
		Need:   need,
		Have:   perPair,
		Per:    "(source IP, target) pair",
		Detail: fmt.Sprintf("net.ipv4.ip_local_port_range %d-%d; source IPs: %d, targets: %d", low, high, sources, targets),
	}
	if perPair > 0 {
		x.Remedies = append(x.Remedies, fmt.Sprintf(
			"dial from at least %d local addresses with --source-ips (any of 127.0.0.0/8 on loopback; elsewhere add them with `ip addr add`)",
			ceilDiv(n.Connections, targets*int(perPair))))
	}
	const widest = 65535 - 1024 + 1
	if perPair < widest {
		r := `widen the range: sysctl -w net.ipv4.ip_local_port_range="1024 65535"`
		if need > widest {
			r += fmt.Sprintf(" (then %d source addresses suffice)", ceilDiv(n.Connections, targets*widest))
		}
		x.Remedies = append(x.Remedies, r)
	}
	x.Remedies = append(x.Remedies,
		"spread the target over more addresses or ports (each distinct target address gives another full range)",
		"split the run over more machines with --segment (more --procs does not help: ports are shared by the host)")
	return x, false
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func ceilDiv64(a, b uint64) uint64 { return (a + b - 1) / b }

// parsePortRange parses net.ipv4.ip_local_port_range: two numbers separated by white space.
func parsePortRange(s string) (low, high int, err error) {
	if _, err := fmt.Sscan(s, &low, &high); err != nil {
		return 0, 0, fmt.Errorf("port range %q: %w", s, err)
	}
	if low < 1 || high > 65535 || low > high {
		return 0, 0, fmt.Errorf("port range %q: want 1 <= low <= high <= 65535", s)
	}
	return low, high, nil
}
