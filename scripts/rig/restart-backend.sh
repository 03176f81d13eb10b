#!/usr/bin/env bash
# Restarts one backend of the rig started by scripts/rig/start.sh, on the same port with the
# same id: its clients are closed with 1001 Going Away (wsload serve's answer to SIGTERM),
# and the balancer routes new connections to it again once its health check passes (HAProxy)
# or its fail_timeout is over (nginx). For long-lived-connection tests: run a load, restart a
# backend in the middle, and read the 1001/1006 closes in the result.
#
#   scripts/rig/restart-backend.sh b2
#   scripts/rig/restart-backend.sh b1 --dir /tmp/rig-nginx --down 5s   # stay down 5 s first
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dir=$rig_default_dir id="" down=0
while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=${2:?--dir needs a value}; shift 2 ;;
	--down) down=${2:?--down needs a value like 5s}; shift 2 ;;
	-h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) printf 'restart-backend.sh: unknown flag %q\n' "$1" >&2; exit 2 ;;
	*) [ -z "$id" ] || { echo "restart-backend.sh: one backend at a time (got $id and $1)" >&2; exit 2; }; id=$1; shift ;;
	esac
done
[ -n "$id" ] || { echo "usage: restart-backend.sh bN [--dir DIR] [--down DURATION]" >&2; exit 2; }
[ -d "$dir" ] || rig_die "no rig in $dir: start one with scripts/rig/start.sh"
dir=$(cd "$dir" && pwd)
rig_load_env "$dir"

n=${id#b}
case $n in '' | *[!0-9]*) rig_die "backend '$id': want b1 … b$BACKENDS" ;; esac
[ "$n" -ge 1 ] && [ "$n" -le "$BACKENDS" ] || rig_die "backend '$id': this rig has b1 … b$BACKENDS"
addr=127.0.0.1:$((BACKEND_PORT + n - 1))

rig_stop "$dir" "$id"
if [ "$down" != 0 ]; then
	echo "$id down for $down"
	sleep "$down" || rig_die "--down $down: want a duration sleep(1) reads, e.g. 5s or 1.5"
fi
echo "--- restarted $(date +%T) ---" >>"$dir/$id.log"
setsid "$WSLOAD" serve --addr "$addr" --backend-id "$id" --hello >>"$dir/$id.log" 2>&1 </dev/null &
echo $! >"$dir/pid/$id.pid"
rig_wait_listen "$addr" "$!" || { tail -n 20 "$dir/$id.log" >&2; rig_die "$id did not come back on $addr (log above)"; }
echo "$id back on ws://$addr/ (pid $(cat "$dir/pid/$id.pid"))"
