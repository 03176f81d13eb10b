package hostlimits_test

import (
	"fmt"

	"github.com/wsload/wsload/engine/hostlimits"
)

// A host with the common 20000 open files and the default port range cannot hold 100000
// connections to one target from one process and one source address.
func ExampleCheck() {
	h := hostlimits.Host{FileSoft: 20000, FileHard: 20000, PortLow: 32768, PortHigh: 60999, OpenFiles: 10}
	err := hostlimits.Check(h, hostlimits.Need{Connections: 100000, Targets: 1})
	fmt.Println(err)
	// Output:
	// hostlimits: 100000 connections do not fit this host:
	//   open files: need 101074 per process, available 20000 (RLIMIT_NOFILE soft limit; hard limit 20000; 10 fds already open)
	//     - raise the limit to at least 101074: `ulimit -n 101074` in the shell that starts wsload (root may raise the hard limit, up to fs.nr_open)
	//     - for a service: LimitNOFILE= in its systemd unit; for login sessions: `* soft nofile` and `* hard nofile` in /etc/security/limits.conf (scripts/host/tune-linux.sh prints both)
	//     - split the connections over more processes: --procs 6
	//     - split the run over more machines with --segment
	//   ephemeral ports: need 100000 per (source IP, target) pair, available 28232 (net.ipv4.ip_local_port_range 32768-60999; source IPs: 1, targets: 1)
	//     - dial from at least 4 local addresses with --source-ips (any of 127.0.0.0/8 on loopback; elsewhere add them with `ip addr add`)
	//     - widen the range: sysctl -w net.ipv4.ip_local_port_range="1024 65535" (then 2 source addresses suffice)
	//     - spread the target over more addresses or ports (each distinct target address gives another full range)
	//     - split the run over more machines with --segment (more --procs does not help: ports are shared by the host)
}
