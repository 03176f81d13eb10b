#!/usr/bin/env bash
# Runs the whole test suite (./scripts/test.sh) while busy processes oversubscribe the CPUs: three
# busy loops per core by default, the load a shared CI runner really has. A test that passes here
# does not depend on how fast the machine is.
#
#   ./scripts/test-under-load.sh                 # once, 3 busy loops per core
#   ./scripts/test-under-load.sh --runs 3        # three times in a row; stops at the first failure
#   ./scripts/test-under-load.sh --per-core 4 -- -run TestFanOut ./engine/   # args after -- go to test.sh
#
# The busy loops are started and stopped by this script, by PID, also on Ctrl-C or failure.
set -euo pipefail

cd "$(dirname "$0")/.."

runs=1
per_core=3
while [ $# -gt 0 ]; do
	case $1 in
	--runs)
		runs=${2:?--runs needs a count}
		shift 2
		;;
	--per-core)
		per_core=${2:?--per-core needs a count}
		shift 2
		;;
	--)
		shift
		break
		;;
	-h | --help)
		sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "test-under-load.sh: unknown argument $1 (see --help)" >&2
		exit 2
		;;
	esac
done
case $runs$per_core in *[!0-9]*)
	echo "test-under-load.sh: --runs and --per-core take whole numbers" >&2
	exit 2
	;;
esac

cores=$(nproc)
busy=$((cores * per_core))
pids=()
stop_busy() {
	if [ ${#pids[@]} -gt 0 ]; then
		kill "${pids[@]}" 2>/dev/null || true
		wait "${pids[@]}" 2>/dev/null || true
		pids=()
	fi
}
trap stop_busy EXIT
trap 'stop_busy; exit 130' INT TERM

for _ in $(seq "$busy"); do
	# A subshell spinning in bash: pure CPU, no memory, no I/O.
	bash -c 'while :; do :; done' &
	pids+=($!)
done
echo "test-under-load.sh: $busy busy loops on $cores cores (PIDs ${pids[*]})"

times=()
for i in $(seq "$runs"); do
	echo
	echo "=== run $i of $runs under load ($(uptime | sed 's/.*load average/load average/'))"
	t0=$(date +%s)
	if ! ./scripts/test.sh "$@"; then
		t=$(($(date +%s) - t0))
		echo "test-under-load.sh: run $i of $runs FAILED after ${t}s (earlier runs: ${times[*]:-none})" >&2
		exit 1
	fi
	t=$(($(date +%s) - t0))
	times+=("${t}s")
done
stop_busy
echo
echo "test-under-load.sh: $runs of $runs runs passed under $busy busy loops on $cores cores; each took ${times[*]}"
