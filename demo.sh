#!/usr/bin/env bash
# mcp's quick start, as root on a fresh Debian 12 machine:
#
#   sudo ./demo.sh          # deploy the demo: prints the service's answer,
#                           # `mcp status`, and how to push a new version
#   sudo ./demo.sh status   # where things are, again
#   sudo ./demo.sh down     # stop everything and remove the demo's state
#
# `up` (the default) installs the Debian packages that are missing, builds
# mcp (bin/mcp), starts a private containerd and a private docker-registry
# under the state directory, and runs the demo driver (internal/demo), which
# pushes two versions of a tiny HTTP server, creates a desired-state Git repo
# plus a working clone, starts a private haproxy and `mcp agent`, and waits
# until the service answers through haproxy over TLS; it prints the URL.
# Nothing outside the state directory is touched but /srv/hello (the
# service's data dir, removed by `down` when the demo created it), a
# listener on 127.0.0.1 (8443, or the next free port) and the packages.
# docs/demo.md explains it all.
#
# MCP_DEMO_STATE (default /var/lib/mcp-demo) moves the state directory.
set -euo pipefail

PACKAGES=(containerd runc docker-registry git ca-certificates curl make haproxy)
STATE=${MCP_DEMO_STATE:-/var/lib/mcp-demo}
# The registry's ports: next to, not on, the usual 5000 a system registry
# or .ci/run may hold.
REG_FIRST=5080
REG_LAST=5099

t0=$SECONDS
log() { printf '[demo.sh %4ds] %s\n' "$((SECONDS - t0))" "$*"; }
die() {
	log "ERROR: $*" >&2
	exit 1
}

cd "$(dirname "${BASH_SOURCE[0]}")"
REPO=$PWD
# shellcheck source=scripts/lib/services.sh
. "$REPO/scripts/lib/services.sh"

cmd=${1:-up}
case $cmd in
up | down | status) ;;
-h | --help | help)
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
	exit 0
	;;
*) die "unknown command '$cmd': use up, status or down" ;;
esac

[ "$(id -u)" -eq 0 ] || die "must run as root: it installs packages and starts containerd (try: sudo $0 $cmd)"
case $STATE in /*) ;; *) die "MCP_DEMO_STATE must be an absolute path" ;; esac
# containerd refuses socket paths over 104 bytes; its longest is
# STATE/containerd.sock.ttrpc.
[ ${#STATE} -le 80 ] || die "MCP_DEMO_STATE is too long for containerd's socket paths (at most 80 bytes)"

export HOME=${HOME:-/root}
if [ -x /usr/local/go/bin/go ]; then
	export PATH=/usr/local/go/bin:$PATH
fi

DRIVER=$REPO/bin/mcp-demo

# down: the driver stops the agent, removes the containers properly and
# stops haproxy; then the daemons are stopped by PID and whatever is left (shims, runc
# state, mounts) goes with the state directory. Without the driver (a
# failed build, say) the shell teardown alone still cleans everything.
down() {
	local srv_created=
	[ ! -f "$STATE/srv-created" ] || srv_created=1
	if [ -f "$STATE/demo.json" ] && [ -x "$DRIVER" ] && services_pid_alive "$STATE" containerd; then
		"$DRIVER" down --state "$STATE" --keep-state || log "the demo driver's down failed; removing what is left by PID"
	fi
	if [ -d "$STATE" ]; then
		log "stopping what is left (containerd, docker-registry), removing $STATE"
		services_teardown "$STATE"
	fi
	# The service's data dir, if the demo created it and it is empty (the
	# driver does this too; here for a driver that could not run).
	[ -z "$srv_created" ] || rmdir /srv/hello 2>/dev/null || true
}

# failed: keep the logs of a failed start for the user, then clean up.
failed() {
	local keep
	keep=$(mktemp -d "${TMPDIR:-/tmp}/mcp-demo-logs.XXXXXX")
	cp "$STATE"/*.log "$keep"/ 2>/dev/null || true
	cp -r "$STATE/agent/logs" "$keep/containers" 2>/dev/null || true
	log "failed; logs kept in $keep; stopping everything the demo started"
	down
}

case $cmd in
down)
	if [ ! -d "$STATE" ]; then
		log "no demo state at $STATE: nothing to stop"
		exit 0
	fi
	down
	log "done: the demo is stopped and $STATE is gone"
	exit 0
	;;
status)
	[ -f "$STATE/demo.json" ] || die "no demo at $STATE: start it with $0"
	exec "$DRIVER" status --state "$STATE"
	;;
esac

# --- up -----------------------------------------------------------------------
if [ -d "$STATE" ]; then
	if services_pid_alive "$STATE" containerd && services_pid_alive "$STATE" registry &&
		services_pid_alive "$STATE" haproxy && services_pid_alive "$STATE" agent && [ -x "$DRIVER" ]; then
		log "the demo is already running (state in $STATE)"
		exec "$DRIVER" status --state "$STATE"
	fi
	log "found an incomplete demo in $STATE: tearing it down first"
	down
fi

services_install "${PACKAGES[@]}"
if ! command -v go >/dev/null; then
	die "Go is not installed. Install Go $(sed -n 's/^go //p' go.mod) or newer from the official Go downloads (a tarball unpacked to /usr/local/go), then run $0 again"
fi
for b in containerd containerd-shim-runc-v2 runc docker-registry ctr curl git haproxy; do
	command -v "$b" >/dev/null || die "$b not found after installing packages"
done

log "building mcp ($(go version | awk '{ print $3 }'))"
make -s build
CGO_ENABLED=0 go build -trimpath -o "$DRIVER" ./internal/demo/cmd/demo

mkdir -p "$STATE"
chmod 0755 "$STATE"
# From here on a failure leaves nothing running.
trap 'rc=$?; if [ $rc -ne 0 ]; then failed; fi' EXIT

services_start_containerd "$STATE" "$REPO"
log "containerd $CTRD_VERSION (pid $CTRD_PID) at $SOCK"
services_start_registry "$STATE" "$REG_FIRST" "$REG_LAST"
log "docker-registry (pid $REG_PID) at $REG_ADDR"

owner=()
if [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ]; then
	# The user who ran sudo gets the repo and the clone, to edit and push
	# without sudo.
	owner=(--owner "$SUDO_UID:${SUDO_GID:-$SUDO_UID}")
fi
"$DRIVER" up --state "$STATE" --containerd "$SOCK" --registry "$REG_ADDR" \
	--mcp "$REPO/bin/mcp" "${owner[@]}"
trap - EXIT
