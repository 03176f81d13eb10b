#!/usr/bin/env bash
# Stops the rig started by scripts/rig/start.sh: the balancer first (so clients see the
# balancer go, not the backends one by one), then the backends. Only processes recorded in
# the run directory's pid files are signalled.
#
#   scripts/rig/stop.sh                       # the rig in /tmp/wsload-rig
#   scripts/rig/stop.sh --dir /tmp/rig-nginx
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

dir=$rig_default_dir
while [ $# -gt 0 ]; do
	case $1 in
	--dir) dir=${2:?--dir needs a value}; shift 2 ;;
	-h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) printf 'stop.sh: unknown argument %q (only --dir DIR)\n' "$1" >&2; exit 2 ;;
	esac
done
[ -d "$dir/pid" ] || { echo "no rig in $dir (nothing to stop)"; exit 0; }
dir=$(cd "$dir" && pwd)

rig_stop "$dir" balancer
for f in "$dir"/pid/*.pid; do
	[ -e "$f" ] || continue
	rig_stop "$dir" "$(basename "$f" .pid)"
done
rm -f "$dir/rig.env"
echo "rig in $dir stopped (logs kept there)"
