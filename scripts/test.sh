#!/usr/bin/env bash
# Runs wsload's whole test suite on a fresh machine: installs what the tests need (Node and the
# npm ws package for end-to-end tests against a third-party server, a C compiler for -race),
# checks gofmt and go vet, then runs go test -race.
#
#   ./scripts/test.sh                          # everything
#   ./scripts/test.sh -run TestCheck ./engine/...   # arguments replace ./... in go test
#
# CI runs exactly this (.ci/run). Missing tools are installed with apt-get when running as root;
# otherwise the script stops and says what to install.
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf '\n==> %s\n' "$*"; }
die() {
	printf '\ntest.sh: FAILED after %s: %s\n' "$(elapsed)" "$*" >&2
	exit 1
}

started=$(date +%s)
pkgs_ok=()
pkgs_failed=()

# elapsed prints the time since the script started, as 6m28s.
elapsed() {
	local s=$(($(date +%s) - started))
	printf '%dm%02ds' $((s / 60)) $((s % 60))
}

# apt waits for the dpkg lock instead of failing at once when another apt or unattended-upgrades
# holds it (DPkg::Lock::Timeout covers the frontend lock and, on apt >= 2.x, the lists lock).
apt() {
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 "$@" </dev/null
}

apt_updated=
# need_apt PKG BIN installs the Debian package PKG when the command BIN is missing.
need_apt() {
	local pkg=$1 bin=$2
	if command -v "$bin" >/dev/null 2>&1; then
		pkgs_ok+=("$pkg")
		return 0
	fi
	if [ "$(id -u)" != 0 ]; then
		die "'$bin' is missing: install the Debian package '$pkg' (sudo apt-get install -y $pkg), then run $0 again"
	fi
	command -v apt-get >/dev/null 2>&1 || die "'$bin' is missing and there is no apt-get here: install '$pkg' by hand"
	if [ -z "$apt_updated" ]; then
		say "apt-get update"
		if ! apt update -q; then
			echo "apt-get update failed; retrying once in 15 s"
			sleep 15
			apt update -q || die "apt-get update failed twice (is a package mirror reachable?)"
		fi
		apt_updated=1
	fi
	say "apt-get install $pkg (for $bin)"
	if ! apt install -y -q "$pkg"; then
		pkgs_failed+=("$pkg")
		die "apt-get install $pkg failed"
	fi
	command -v "$bin" >/dev/null 2>&1 || die "installed '$pkg' but '$bin' is still not on PATH"
	pkgs_ok+=("$pkg")
}

# --- Go ----------------------------------------------------------------------------------------
say "go"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v go >/dev/null 2>&1 || die "'go' is not on PATH: install the Go toolchain named in go.mod"
go version

# --- system packages ---------------------------------------------------------------------------
say "system packages"
need_apt gcc gcc # go test -race needs cgo, so a C compiler
need_apt nodejs node
need_apt npm npm
need_apt chromium chromium # report/ renders the HTML report headless (its Recommends bring fonts-liberation, the charts' font)
need_apt haproxy haproxy # internal/rig runs a real HAProxy in front of wsload backends
need_apt nginx nginx     # and nginx (run with a private prefix, never the packaged service)
# More installs go here as tests need them.
echo "node $(node --version), npm $(npm --version)"

# --- npm packages for testdata/node (the ws servers) --------------------------------------------
# Reinstall when node_modules is missing or was installed from another package.json/lock.
say "npm packages in testdata/node"
nodedir=testdata/node
stamp=$nodedir/node_modules/.wsload-installed
want=$(cat "$nodedir/package.json" "$nodedir/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$nodedir/node_modules/ws/package.json" ]; then
	echo "up to date"
else
	(cd "$nodedir" && npm ci --no-audit --no-fund) || die "npm ci in $nodedir failed"
	echo "$want" >"$stamp"
fi

# --- formatting and vet ------------------------------------------------------------------------
say "gofmt -l"
gofiles=()
while IFS= read -r -d '' f; do gofiles+=("$f"); done < <(
	find . \( -name .git -o -name node_modules -o -name testdata \) -prune -o -name '*.go' -type f -print0
)
if [ ${#gofiles[@]} -gt 0 ]; then
	unformatted=$(gofmt -l "${gofiles[@]}")
	[ -z "$unformatted" ] || die "gofmt would change these files (run gofmt -w on them):
$unformatted"
fi
echo "ok (${#gofiles[@]} files)"

say "go vet ./..."
go vet ./... || die "go vet reported problems (above)"
echo "ok"

say "shell scripts parse (bash -n); tune-linux.sh prints"
while IFS= read -r -d '' f; do
	bash -n "$f" || die "$f does not parse"
done < <(find scripts .ci -type f \( -name '*.sh' -o -name run \) -print0)
# Print mode only reads /proc; --apply is never run here.
scripts/host/tune-linux.sh >/dev/null || die "scripts/host/tune-linux.sh (print mode) failed"
echo "ok"

# --- tests -------------------------------------------------------------------------------------
if [ $# -eq 0 ]; then
	set -- ./...
fi
say "go test -race -count=1 -timeout 60m $*"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
go test -race -count=1 -timeout 60m "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e

# One line to read first: how many packages passed and failed, which, and how long it all took.
passed=$(grep -cE '^ok[[:space:]]' "$log" || true)
failed_pkgs=$({ grep -E '^FAIL[[:space:]]+[^[:space:]]' "$log" || true; } | awk '{print $2}' | sort -u | tr '\n' ' ')
failed=$(printf '%s' "$failed_pkgs" | wc -w)
failed_tests=$({ grep -E '^[[:space:]]*--- FAIL: ' "$log" || true; } | sed -E 's/^[[:space:]]*--- FAIL: ([^ ]+).*/\1/' | sort -u | tr '\n' ' ')
echo
echo "test.sh: system packages ok: ${pkgs_ok[*]:-none}${pkgs_failed:+; failed: ${pkgs_failed[*]}}"
[ -z "$failed_tests" ] || echo "test.sh: failed tests: $failed_tests"
[ -z "$failed_pkgs" ] || echo "test.sh: failed packages: $failed_pkgs"
echo "test.sh: go test exit $rc after $(elapsed) in all"
echo "packages: $passed passed, $failed failed"
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
	echo "test.sh: FAILED: go test exited $rc without a failing package (build error or timeout above)" >&2
fi
exit "$rc"
