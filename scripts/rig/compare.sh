#!/usr/bin/env bash
# Runs the same load through the rig twice, once with roundrobin and once with leastconn,
# into OUT/rr.json and OUT/lc.json, compares the two with `wsload compare` and writes
# both on one HTML page, OUT/compare.html (`wsload report --html`). The rig is started
# fresh for each mode (start.sh) and stopped at the end (stop.sh).
#
#   scripts/rig/compare.sh                                  # HAProxy, 3 backends, default load
#   scripts/rig/compare.sh --reconnect -- -c 300 -d 20s     # long-lived: b2 restarts at 8s
#   scripts/rig/compare.sh --lb nginx --out results/ -- -c 5000 -r 1 -d 60s
#   scripts/rig/compare.sh --scenario my.yaml --restart b1 --restart-at 30s -- -c 2000 -d 2m
#
# Flags before "--" go to start.sh (--lb, --backends, --maxconn, --port, --backend-port,
# --stats-port, --dir, --wsload), except: --out DIR, where the results go (default: here);
# --scenario FILE, run this scenario against the rig instead of the echo load;
# --restart bN and --restart-at DELAY (sleep(1) syntax, default 8s), restart that backend
# that long into each run; --reconnect, the long-lived-connection case: the scenario
# scripts/scenarios/rig-reconnect.yaml (clients reconnect with backoff) with b2 restarted
# at 8s. Flags after "--" go to `wsload run` (default: -c 1000 -r 1 -d 20s; -c 300 -d 20s
# with a scenario). Results carry the per-backend breakdown (--backend-from header:X-Backend).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

start_args=() run_args=() out=. dir=$rig_default_dir scenario="" restart="" restart_at=8s
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; run_args=("$@"); break ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--scenario) scenario=${2:?--scenario needs a file}; shift 2 ;;
	--restart) restart=${2:?--restart needs a backend like b2}; shift 2 ;;
	--restart-at) restart_at=${2:?--restart-at needs a delay like 8s}; shift 2 ;;
	--reconnect) scenario=${scenario:-$(dirname "$0")/../scenarios/rig-reconnect.yaml} restart=${restart:-b2}; shift ;;
	--dir) dir=${2:?--dir needs a value}; start_args+=(--dir "$dir"); shift 2 ;;
	--tls) rig_die "--tls: compare runs over ws; start the rig by hand for wss runs" ;;
	--balance) rig_die "--balance: compare.sh runs both roundrobin and leastconn" ;;
	--lb | --backends | --maxconn | --port | --backend-port | --stats-port | --wsload)
		start_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
	-h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) printf 'compare.sh: unknown argument %q (wsload run flags go after --)\n' "$1" >&2; exit 2 ;;
	esac
done
if [ ${#run_args[@]} -eq 0 ]; then
	if [ -n "$scenario" ]; then run_args=(-c 300 -d 20s); else run_args=(-c 1000 -r 1 -d 20s); fi
fi
if [ -n "$scenario" ]; then
	[ -f "$scenario" ] || rig_die "--scenario $scenario: no such file"
	scenario=$(cd "$(dirname "$scenario")" && pwd)/$(basename "$scenario")
fi
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)

restarter=""
cleanup() {
	[ -z "$restarter" ] || kill "$restarter" 2>/dev/null || true
	"$here/stop.sh" --dir "$dir" >/dev/null 2>&1 || true
}
trap cleanup EXIT

failed=0
for mode in roundrobin leastconn; do
	case $mode in roundrobin) file=$out/rr.json ;; leastconn) file=$out/lc.json ;; esac
	"$here/stop.sh" --dir "$dir" >/dev/null
	"$here/start.sh" "${start_args[@]}" --balance "$mode"
	rig_load_env "$(cd "$dir" && pwd)"
	extra=()
	if "$WSLOAD" run --help 2>&1 | grep -q -- '--backend-from'; then
		extra=(--backend-from header:X-Backend)
	fi
	what=("$URL")
	[ -z "$scenario" ] || what=("$scenario" --target "$URL")
	echo
	echo "==> $mode: wsload run ${what[*]} ${run_args[*]} ${extra[*]} -o $file"
	if [ -n "$restart" ]; then
		echo "    ($restart restarts ${restart_at} into the run)"
		(sleep "$restart_at" && "$here/restart-backend.sh" "$restart" --dir "$dir" | sed 's/^/    /') &
		restarter=$!
	fi
	if ! "$WSLOAD" run "${what[@]}" "${run_args[@]}" "${extra[@]}" -o "$file"; then
		echo "compare.sh: the $mode run failed (above); its result, if written, is $file" >&2
		failed=1
	fi
	if [ -n "$restarter" ]; then
		wait "$restarter" || { echo "compare.sh: restarting $restart failed (above)" >&2; failed=1; }
		restarter=""
	fi
	"$here/stop.sh" --dir "$dir" >/dev/null
done

echo
if [ -f "$out/rr.json" ] && [ -f "$out/lc.json" ]; then
	if "$WSLOAD" --help 2>&1 | grep -qE '^[[:space:]]+compare[[:space:]]'; then
		echo "==> wsload compare $out/rr.json $out/lc.json"
		"$WSLOAD" compare "$out/rr.json" "$out/lc.json" --label A=roundrobin --label B=leastconn || failed=1
		echo
		echo "==> wsload report $out/rr.json $out/lc.json --html $out/compare.html"
		"$WSLOAD" report "$out/rr.json" "$out/lc.json" --label A=roundrobin --label B=leastconn \
			--title "roundrobin vs leastconn" --html "$out/compare.html" || failed=1
		echo "Open $out/compare.html in a browser."
	else
		echo "Results: $out/rr.json (roundrobin), $out/lc.json (leastconn)."
		echo "Next step: wsload compare $out/rr.json $out/lc.json (this wsload has no compare command yet)."
	fi
fi
exit $failed
