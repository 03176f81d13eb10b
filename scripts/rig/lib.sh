# Shared by the rig scripts (start.sh, stop.sh, restart-backend.sh, compare.sh); sourced, not
# run. A rig's state lives in its run directory:
#   DIR/pid/NAME.pid   one per process the rig started (b1 … bN, balancer)
#   DIR/NAME.log       their output
#   DIR/rig.env        how it was started (LB, BALANCE, BACKENDS, BACKEND_PORT, URL, …)
# Processes are only ever stopped by those recorded pids, and only when the process's command
# line names DIR, so a pid reused by an unrelated process is left alone.

rig_default_dir=/tmp/wsload-rig

rig_die() {
	printf '%s: %s\n' "$(basename "$0")" "$*" >&2
	exit 1
}

# rig_owned DIR PID: PID is alive and was started for the rig in DIR.
rig_owned() {
	kill -0 "$2" 2>/dev/null && tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null | grep -qF -- "$1"
}

# rig_wait_listen HOST:PORT PID: wait (up to 10 s) until HOST:PORT accepts a TCP connection;
# fail early if PID dies.
rig_wait_listen() {
	local host=${1%:*} port=${1##*:} pid=$2 i
	for i in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# rig_stop DIR NAME: stop the process recorded in DIR/pid/NAME.pid with SIGTERM (SIGKILL after
# 10 s) and remove the pid file. wsload serve answers SIGTERM by closing its clients with 1001.
rig_stop() {
	local dir=$1 name=$2 f pid i
	f=$dir/pid/$name.pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if rig_owned "$dir" "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			echo "$(basename "$0"): $name (pid $pid) ignored SIGTERM for 10 s: killing it" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
		echo "stopped $name (pid $pid)"
	fi
	rm -f "$f"
}

# rig_load_env DIR: read DIR/rig.env (written by start.sh) into the shell.
rig_load_env() {
	[ -f "$1/rig.env" ] || rig_die "no rig in $1 (no rig.env): start one with scripts/rig/start.sh${2:+ $2}"
	# shellcheck disable=SC1091
	. "$1/rig.env"
}
