#!/usr/bin/env bash
# Runs the same load through the rig twice, once with roundrobin and once with leastconn,
# into OUT/rr.json and OUT/lc.json, then compares the two with `wsload compare`. The rig is
# started fresh for each mode (start.sh) and stopped at the end (stop.sh).
#
#   scripts/rig/compare.sh                                  # HAProxy, 3 backends, default load
#   scripts/rig/compare.sh --lb nginx --out results/ -- -c 5000 -r 1 -d 60s
#   scripts/rig/compare.sh --backends 4 -- -c 2000 -r 2 -d 30s --connect-rate 500
#
# Flags before "--" go to start.sh (--lb, --backends, --maxconn, --port, --backend-port,
# --stats-port, --dir, --wsload); --out DIR is where the results go (default: here). Flags
# after "--" go to `wsload run` (default: -c 1000 -r 1 -d 20s). When wsload run knows
# --backend-from, the results also carry the per-backend breakdown (X-Backend header).
set -euo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

start_args=() run_args=() out=. dir=$rig_default_dir
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; run_args=("$@"); break ;;
	--out) out=${2:?--out needs a directory}; shift 2 ;;
	--dir) dir=${2:?--dir needs a value}; start_args+=(--dir "$dir"); shift 2 ;;
	--tls) rig_die "--tls: compare runs over ws; start the rig by hand for wss runs" ;;
	--balance) rig_die "--balance: compare.sh runs both roundrobin and leastconn" ;;
	--lb | --backends | --maxconn | --port | --backend-port | --stats-port | --wsload)
		start_args+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
	-h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) printf 'compare.sh: unknown argument %q (wsload run flags go after --)\n' "$1" >&2; exit 2 ;;
	esac
done
[ ${#run_args[@]} -gt 0 ] || run_args=(-c 1000 -r 1 -d 20s)
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)

trap '"$here/stop.sh" --dir "$dir" >/dev/null 2>&1 || true' EXIT

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
	echo
	echo "==> $mode: wsload run $URL ${run_args[*]} ${extra[*]} -o $file"
	if ! "$WSLOAD" run "$URL" "${run_args[@]}" "${extra[@]}" -o "$file"; then
		echo "compare.sh: the $mode run failed (above); its result, if written, is $file" >&2
		failed=1
	fi
	"$here/stop.sh" --dir "$dir" >/dev/null
done

echo
if [ -f "$out/rr.json" ] && [ -f "$out/lc.json" ]; then
	if "$WSLOAD" --help 2>&1 | grep -qE '^[[:space:]]+compare[[:space:]]'; then
		echo "==> wsload compare $out/rr.json $out/lc.json"
		"$WSLOAD" compare "$out/rr.json" "$out/lc.json" --label A=roundrobin --label B=leastconn || failed=1
	else
		echo "Results: $out/rr.json (roundrobin), $out/lc.json (leastconn)."
		echo "Next step: wsload compare $out/rr.json $out/lc.json (this wsload has no compare command yet)."
	fi
fi
exit $failed
