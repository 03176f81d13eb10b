#!/usr/bin/env bash
# Starts the balancer test rig on this machine: N `wsload serve` backends (b1, b2, … on
# 127.0.0.1:9001, 9002, …, each with --backend-id and --hello) behind HAProxy or nginx on
# 127.0.0.1:8080 (ws) and optionally 127.0.0.1:8443 (wss, self-signed). Everything binds to
# 127.0.0.1 only.
#
#   scripts/rig/start.sh                                   # 3 backends, HAProxy, roundrobin
#   scripts/rig/start.sh --balance leastconn --backends 4 --tls
#   scripts/rig/start.sh --lb nginx --balance leastconn
#   wsload run ws://127.0.0.1:8080/ -c 3000 -r 1 -d 30s -o rr.json
#   scripts/rig/restart-backend.sh b2                      # mid-run: b2's clients get 1001
#   scripts/rig/stop.sh
#
# The balancer configuration is rendered from scripts/rig/haproxy.cfg.tmpl or
# nginx.conf.tmpl by internal/rig/rigconf, the same code the Go tests (internal/rig) use.
# Pid files, logs, the rendered configuration and the built wsload binary go to --dir.
set -euo pipefail

usage() {
	cat <<'EOF'
Usage: scripts/rig/start.sh [flags]

Flags:
  --lb haproxy|nginx          the balancer (default haproxy)
  --balance roundrobin|leastconn
                              balancing algorithm (default roundrobin)
  --backends N                number of wsload serve backends (default 3)
  --maxconn N                 client connections the balancer holds open (default 100000;
                              lowered to what the open-file limit allows, with a warning)
  --tls                       also listen for wss on --tls-port with a self-signed certificate
  --port P                    ws port (default 8080)
  --tls-port P                wss port (default 8443)
  --backend-port P            first backend's port; the others follow (default 9001)
  --stats-port P              HAProxy stats page port (default 8404; 0 = none)
  --dir DIR                   run directory: pids, logs, configs (default /tmp/wsload-rig)
  --wsload PATH               use this wsload binary instead of building ./cmd/wsload
  -h, --help                  this text

Examples:
  scripts/rig/start.sh --balance leastconn --tls
  scripts/rig/start.sh --lb nginx --backends 2 --dir /tmp/rig-nginx
EOF
}

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
die() { rig_die "$@"; }

lb=haproxy balance=roundrobin backends=3 maxconn=100000 tls=0
port=8080 tls_port=8443 backend_port=9001 stats_port=8404 dir=$rig_default_dir wsload=""
while [ $# -gt 0 ]; do
	case $1 in
	--lb) lb=${2:?--lb needs a value}; shift 2 ;;
	--balance) balance=${2:?--balance needs a value}; shift 2 ;;
	--backends) backends=${2:?--backends needs a value}; shift 2 ;;
	--maxconn) maxconn=${2:?--maxconn needs a value}; shift 2 ;;
	--tls) tls=1; shift ;;
	--port) port=${2:?--port needs a value}; shift 2 ;;
	--tls-port) tls_port=${2:?--tls-port needs a value}; shift 2 ;;
	--backend-port) backend_port=${2:?--backend-port needs a value}; shift 2 ;;
	--stats-port) stats_port=${2:?--stats-port needs a value}; shift 2 ;;
	--dir) dir=${2:?--dir needs a value}; shift 2 ;;
	--wsload) wsload=${2:?--wsload needs a path}; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) printf 'start.sh: unknown argument %q\n\n' "$1" >&2; usage >&2; exit 2 ;;
	esac
done

is_uint() { case $1 in '' | *[!0-9]*) return 1 ;; esac; }
case $lb in haproxy | nginx) ;; *) die "--lb $lb: want haproxy or nginx" ;; esac
case $balance in roundrobin | leastconn) ;; *) die "--balance $balance: want roundrobin or leastconn" ;; esac
for v in backends maxconn port tls_port backend_port stats_port; do
	is_uint "${!v}" || die "--${v//_/-} ${!v}: want a whole number"
done
[ "$backends" -ge 1 ] || die "--backends $backends: want at least 1"
[ $((backend_port + backends - 1)) -le 65535 ] || die "--backend-port $backend_port: $backends backends do not fit below 65536"

cd "$(dirname "$0")/../.."
repo=$PWD
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "'go' is not on PATH: it builds wsload and the config renderer"
export PATH="$PATH:/usr/sbin:/sbin" # Debian puts haproxy and nginx there
command -v "$lb" >/dev/null 2>&1 || die "$lb is not installed: sudo apt-get install -y $lb (./scripts/test.sh installs it too)"
if [ "$tls" = 1 ]; then
	command -v openssl >/dev/null 2>&1 || die "--tls needs openssl for the self-signed certificate: sudo apt-get install -y openssl"
fi

mkdir -p "$dir/pid"
dir=$(cd "$dir" && pwd)

# One rig per directory: a second start would fight the first over ports and pid files.
for f in "$dir"/pid/*.pid; do
	[ -e "$f" ] || continue
	pid=$(cat "$f")
	if rig_owned "$dir" "$pid"; then
		die "a rig is already running in $dir ($(basename "$f" .pid), pid $pid): run scripts/rig/stop.sh --dir $dir first"
	fi
	rm -f "$f"
done
rm -f "$dir/rig.env"

# Open files: two per proxied connection in the balancer, one per connection in a backend.
# Raise the soft limit to the hard one, and keep --maxconn within it: HAProxy refuses to start
# when it cannot raise its own limit to match maxconn.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)
if [ "$nofile" != unlimited ]; then
	fit=$(((nofile - 1024) / 2 - 100))
	if [ "$fit" -lt 1 ]; then
		die "the open-file limit is $nofile: too low for a balancer rig; raise it (scripts/host/tune-linux.sh)"
	fi
	if [ "$maxconn" -gt "$fit" ]; then
		echo "start.sh: --maxconn $maxconn needs $((2 * maxconn + 1224)) open files, the limit is $nofile: using --maxconn $fit (scripts/host/tune-linux.sh raises the limit)" >&2
		maxconn=$fit
	fi
fi

# The backends run as DIR/wsload (a link with --wsload), so their command lines name DIR and
# stop.sh can tell them from unrelated processes.
if [ -n "$wsload" ]; then
	[ -f "$wsload" ] && [ -x "$wsload" ] || die "--wsload $wsload: not an executable file"
	echo "==> building the config renderer into $dir (wsload: $wsload)"
	ln -sfn "$(cd "$(dirname "$wsload")" && pwd)/$(basename "$wsload")" "$dir/wsload"
else
	echo "==> building wsload and the config renderer into $dir"
	rm -f "$dir/wsload"
	go build -o "$dir/wsload" ./cmd/wsload || die "go build ./cmd/wsload failed"
fi
go build -o "$dir/rigconf" ./internal/rig/rigconf || die "go build ./internal/rig/rigconf failed"

stop_all() {
	"$repo/scripts/rig/stop.sh" --dir "$dir" >/dev/null 2>&1 || true
}

# Every port must be free: HAProxy binds with SO_REUSEPORT, so a second listener on the ws
# port (another rig, a test server) would silently take a share of the connections, and a
# busy backend port would pass the "is it listening" check below for the wrong process.
ports=("$port" $(seq "$backend_port" $((backend_port + backends - 1))))
[ "$tls" = 0 ] || ports+=("$tls_port")
[ "$lb" != haproxy ] || [ "$stats_port" = 0 ] || ports+=("$stats_port")
for p in "${ports[@]}"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		die "127.0.0.1:$p is already in use (by: $(ss -ltnpH "sport = :$p" 2>/dev/null | grep -o 'users:.*' | head -1)); pick other ports (--port, --backend-port, --tls-port, --stats-port)"
	fi
done

echo "==> starting $backends backends"
backend_list=""
for i in $(seq 1 "$backends"); do
	id=b$i addr=127.0.0.1:$((backend_port + i - 1))
	# setsid: the rig outlives this script and a Ctrl-C in the terminal that started it.
	setsid "$dir/wsload" serve --addr "$addr" --backend-id "$id" --hello >"$dir/$id.log" 2>&1 </dev/null &
	echo $! >"$dir/pid/$id.pid"
	if ! rig_wait_listen "$addr" "$!"; then
		cat "$dir/$id.log" >&2
		stop_all
		die "backend $id did not start on $addr (log above, $dir/$id.log)"
	fi
	echo "    $id  ws://$addr/  (pid $(cat "$dir/pid/$id.pid"), log $dir/$id.log)"
	backend_list+="${backend_list:+,}$id=$addr"
done

tls_args=()
if [ "$tls" = 1 ]; then
	# A fresh self-signed certificate per rig, in a private temp dir inside the run dir.
	certdir=$(mktemp -d "$dir/tls.XXXXXX")
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
		-subj /CN=127.0.0.1 -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' \
		-keyout "$certdir/key.pem" -out "$certdir/cert.pem" 2>"$certdir/openssl.log" ||
		{ cat "$certdir/openssl.log" >&2; stop_all; die "openssl could not make a certificate"; }
	cat "$certdir/cert.pem" "$certdir/key.pem" >"$certdir/rig.pem"
	chmod 600 "$certdir/key.pem" "$certdir/rig.pem"
	tls_args=(--tls-listen "127.0.0.1:$tls_port" --tls-pem "$certdir/rig.pem")
fi
stats_args=()
if [ "$lb" = haproxy ] && [ "$stats_port" != 0 ]; then
	stats_args=(--stats-listen "127.0.0.1:$stats_port")
fi

case $lb in
haproxy) cfg=$dir/haproxy.cfg ;;
nginx) cfg=$dir/nginx.conf ;;
esac
"$dir/rigconf" --lb "$lb" --templates "$repo/scripts/rig" --balance "$balance" \
	--listen "127.0.0.1:$port" --backends "$backend_list" --maxconn "$maxconn" --dir "$dir" \
	"${tls_args[@]}" "${stats_args[@]}" -o "$cfg" || { stop_all; die "could not render $cfg"; }

echo "==> starting $lb ($balance, maxconn $maxconn)"
case $lb in
haproxy)
	haproxy -c -q -f "$cfg" || { stop_all; die "haproxy rejects $cfg (above)"; }
	setsid haproxy -f "$cfg" -db >"$dir/balancer.log" 2>&1 </dev/null &
	;;
nginx)
	nginx -t -q -p "$dir/" -e stderr -c "$cfg" || { stop_all; die "nginx rejects $cfg (above)"; }
	setsid nginx -p "$dir/" -e stderr -c "$cfg" -g 'daemon off;' >"$dir/balancer.log" 2>&1 </dev/null &
	;;
esac
echo $! >"$dir/pid/balancer.pid"
for addr in "127.0.0.1:$port" ${tls_args:+"127.0.0.1:$tls_port"}; do
	if ! rig_wait_listen "$addr" "$(cat "$dir/pid/balancer.pid")"; then
		cat "$dir/balancer.log" >&2
		stop_all
		die "$lb did not start on $addr (log above, $dir/balancer.log; config $cfg)"
	fi
done

# What restart-backend.sh and compare.sh need to know about this rig (sourced by them).
{
	printf 'LB=%q\nBALANCE=%q\nBACKENDS=%q\nBACKEND_PORT=%q\nMAXCONN=%q\n' "$lb" "$balance" "$backends" "$backend_port" "$maxconn"
	printf 'URL=%q\nTLS_URL=%q\nWSLOAD=%q\n' "ws://127.0.0.1:$port/" "$([ "$tls" = 1 ] && echo "wss://127.0.0.1:$tls_port/")" "$dir/wsload"
} >"$dir/rig.env"

echo
echo "rig up: $lb ($balance) in front of $backends backends, run dir $dir"
echo "  ws:    ws://127.0.0.1:$port/"
[ "$tls" = 1 ] && echo "  wss:   wss://127.0.0.1:$tls_port/   (self-signed: wsload run --insecure)"
[ ${#stats_args[@]} -gt 0 ] && echo "  stats: http://127.0.0.1:$stats_port/"
echo "  load:  $dir/wsload run ws://127.0.0.1:$port/ -c 3000 -r 1 -d 30s -o result.json"
echo "  stop:  scripts/rig/stop.sh${dir:+ --dir $dir}"
