#!/usr/bin/env bash
# Host settings for holding 100k+ WebSocket connections on Linux, on the load generator and on
# the machines under test.
#
#   scripts/host/tune-linux.sh            # print the settings, with this host's current values
#   sudo scripts/host/tune-linux.sh --apply
#
# --apply sets each sysctl now (through /proc/sys), makes them persistent in /etc/sysctl.d/99-wsload.conf,
# and writes the nofile limits to /etc/security/limits.d/99-wsload.conf (new login sessions) and
# a systemd drop-in (new services). Inside a container many of these are read-only or belong to
# the host: a setting that cannot be applied is reported and the script exits non-zero.
set -euo pipefail

usage() {
	echo "usage: $0 [--apply]" >&2
	exit 2
}

apply=false
case "${1:-}" in
"") ;;
--apply) apply=true ;;
-h | --help) usage ;;
*) usage ;;
esac
[ $# -le 1 ] || usage

# One open-files figure for every layer, so none of them caps the others:
# fs.nr_open (per-process ceiling) >= nofile hard limit >= nofile soft limit.
nofile=1048576

# name|value|how|why, in the order they must be applied (fs.nr_open before limits that use it).
# how is "min" for sizes (a host already above the value keeps its own: never lower a limit) or
# "set" for values that are modes or ranges.
settings=(
	"fs.file-max|2097152|min|system-wide open files: every connection is a file, on both ends of loopback tests"
	"fs.nr_open|$nofile|min|per-process ceiling for RLIMIT_NOFILE: the nofile hard limit cannot exceed it"
	"net.ipv4.ip_local_port_range|1024 65535|set|ephemeral ports per (source IP, target): 64512 instead of the default 28232 (reserve listen ports inside it with net.ipv4.ip_local_reserved_ports)"
	"net.ipv4.tcp_tw_reuse|1|set|reuse TIME_WAIT ports for new outgoing connections, so reconnect storms do not run out of ports"
	"net.core.somaxconn|65535|min|accept queue per listening socket: a fast ramp overflows the default 4096 and SYNs are dropped"
	"net.ipv4.tcp_max_syn_backlog|65535|min|half-open connections queued per listener during a ramp before SYN cookies kick in"
	"net.core.netdev_max_backlog|65536|min|packets queued per CPU when the NIC delivers faster than the kernel processes them"
)
# Connection tracking only exists when nf_conntrack is loaded (a firewall or NAT is in use);
# then every connection holds an entry, and a full table silently drops new connections.
if [ -e /proc/sys/net/netfilter/nf_conntrack_max ]; then
	settings+=("net.netfilter.nf_conntrack_max|2097152|min|conntrack entries: a full table drops new connections (\"nf_conntrack: table full\" in dmesg)")
fi

current() {
	local f=/proc/sys/${1//.//}
	if [ -r "$f" ]; then tr -s '\t ' ' ' <"$f"; else echo "(absent)"; fi
}

# target NAME VALUE HOW prints the value to set: VALUE, or the current one when HOW is min and
# the host already has more.
target() {
	local now
	now=$(current "$1")
	if [ "$3" = min ] && [[ $now =~ ^[0-9]+$ ]] && [ "$now" -gt "$2" ]; then
		echo "$now"
	else
		echo "$2"
	fi
}

limits_conf="# Open files for wsload and the servers it tests (one per connection).
# Written by scripts/host/tune-linux.sh; '*' does not cover root, hence the root lines.
*    soft nofile $nofile
*    hard nofile $nofile
root soft nofile $nofile
root hard nofile $nofile"

systemd_conf="# Open files for services (one per connection). Written by scripts/host/tune-linux.sh.
[Manager]
DefaultLimitNOFILE=$nofile"

if ! $apply; then
	echo "# Host settings for 100k+ connections. Apply them with: sudo $0 --apply"
	echo "# /etc/sysctl.d/99-wsload.conf"
	for s in "${settings[@]}"; do
		IFS='|' read -r name value how why <<<"$s"
		echo "# $why (now: $(current "$name"))"
		echo "$name = $(target "$name" "$value" "$how")"
	done
	echo
	echo "# /etc/security/limits.d/99-wsload.conf (new login sessions; now: soft $(ulimit -Sn), hard $(ulimit -Hn))"
	echo "$limits_conf"
	echo
	echo "# /etc/systemd/system.conf.d/99-wsload.conf (services; or LimitNOFILE=$nofile in one unit)"
	echo "$systemd_conf"
	echo
	echo "# In the current shell, once fs.nr_open allows it: ulimit -n $nofile"
	exit 0
fi

[ "$(id -u)" = 0 ] || {
	echo "tune-linux.sh: --apply needs root" >&2
	exit 1
}

failed=0
conf=/etc/sysctl.d/99-wsload.conf
mkdir -p /etc/sysctl.d /etc/security/limits.d /etc/systemd/system.conf.d
{
	echo "# Host settings for 100k+ connections. Written by scripts/host/tune-linux.sh."
	for s in "${settings[@]}"; do
		IFS='|' read -r name value how why <<<"$s"
		echo "# $why"
		echo "$name = $(target "$name" "$value" "$how")"
	done
} >"$conf"
echo "wrote $conf"
for s in "${settings[@]}"; do
	IFS='|' read -r name value how _ <<<"$s"
	# Written through /proc/sys rather than sysctl(8), which minimal images lack (procps).
	v=$(target "$name" "$value" "$how")
	if printf '%s\n' "$v" 2>/dev/null >"/proc/sys/${name//.//}"; then
		echo "set $name = $v"
	else
		echo "tune-linux.sh: could not set $name (read-only here, e.g. in a container?)" >&2
		failed=1
	fi
done

echo "$limits_conf" >/etc/security/limits.d/99-wsload.conf
echo "wrote /etc/security/limits.d/99-wsload.conf (takes effect at the next login)"
echo "$systemd_conf" >/etc/systemd/system.conf.d/99-wsload.conf
echo "wrote /etc/systemd/system.conf.d/99-wsload.conf (takes effect after: systemctl daemon-reexec)"
echo "for the current shell: ulimit -n $nofile"
exit $failed
