# shellcheck shell=bash
# Shared by .ci/run and demo.sh: install the Debian packages, start a
# private containerd and a private docker-registry under one state
# directory, and tear all of it down again. Source it; the caller defines
#
#   log MESSAGE...   progress on stdout
#   die MESSAGE...   report and exit non-zero
#
# Everything a start function creates lives under its state directory
# (config, sockets, root, state, runc root, logs, *.pid files), so nothing
# collides with a system daemon or with another user of these functions,
# and services_teardown can stop it all by PID.

# services_install PKG...: install the Debian packages that are missing.
services_install() {
	local p missing=()
	for p in "$@"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing+=("$p")
		fi
	done
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing: ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		# Wait for a dpkg lock held by someone else rather than failing at once.
		apt-get -o DPkg::Lock::Timeout=600 update -q
		apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
	else
		log "packages already installed: $*"
	fi
}

# services_teardown DIR: tear down everything started under state dir DIR,
# then remove DIR. Also for the leftovers of a run that was killed before
# it could clean up. Processes are found by PID (recorded in DIR/*.pid, or
# a containerd shim whose command line names DIR's own socket), never by
# name alone.
services_teardown() {
	local dir=$1 pid f ns id exe runc
	[ -d "$dir" ] || return 0
	runc=${RUNC_BINARY:-$(command -v runc || true)}
	# Containers left behind: runc keeps their state in this directory's
	# own runc root (see internal/testenv/runc-root.sh).
	if [ -n "$runc" ]; then
		for ns in "$dir"/containerd/runc/*/; do
			[ -d "$ns" ] || continue
			for id in $("$runc" --root "$ns" list -q 2>/dev/null); do
				"$runc" --root "$ns" delete --force "$id" >/dev/null 2>&1 || true
			done
		done
	fi
	# Shims of this daemon (they outlive it by design).
	for f in /proc/[0-9]*/cmdline; do
		pid=${f#/proc/}
		pid=${pid%/cmdline}
		exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || continue
		case ${exe##*/} in containerd-shim*) ;; *) continue ;; esac
		if tr '\0' ' ' 2>/dev/null <"$f" | grep -qF -- "$dir/containerd.sock"; then
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	for f in "$dir"/*.pid; do
		[ -f "$f" ] || continue
		pid=$(cat "$f")
		# Only if that PID is still the process we started (PIDs get reused).
		if tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$dir/"; then
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 1 50); do
				kill -0 "$pid" 2>/dev/null || break
				sleep 0.2
			done
			kill -KILL "$pid" 2>/dev/null || true
		fi
	done
	# Snapshot or rootfs mounts left under the state dir, deepest first.
	awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
	rm -rf "$dir"
}

# services_pid_alive DIR NAME: whether DIR/NAME.pid names a live process
# that is still the one started under DIR.
services_pid_alive() {
	local f=$1/$2.pid pid
	[ -f "$f" ] || return 1
	pid=$(cat "$f")
	tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$1/"
}

# services_start_containerd DIR REPO: start a containerd whose config,
# sockets, root, state and runc root are all under DIR, with the runc
# wrapper from REPO/internal/testenv/runc-root.sh first on its PATH, and
# wait until it answers. Sets CTRD_PID, SOCK and CTRD_VERSION.
services_start_containerd() {
	local dir=$1 repo=$2 ctrd ok runc
	ctrd=$dir/containerd
	SOCK=$dir/containerd.sock
	runc=${RUNC_BINARY:-$(command -v runc)}
	mkdir -p "$ctrd"/{root,state,opt,runc} "$dir/bin"
	install -m 0755 "$repo/internal/testenv/runc-root.sh" "$dir/bin/runc"
	cat >"$dir/containerd.toml" <<EOF_CONTAINERD
# Private containerd: own root, state, sockets and runc root.
version = 2
root = "$ctrd/root"
state = "$ctrd/state"
# No Kubernetes here; the other snapshotters only log noise on this host.
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

# "isolated": a namespace never reuses blobs another namespace pulled, so
# each test (and each benchmark) pulls from a cold cache.
[plugins."io.containerd.metadata.v1.bolt"]
  content_sharing_policy = "isolated"

[plugins."io.containerd.internal.v1.opt"]
  path = "$ctrd/opt"
EOF_CONTAINERD
	log "starting containerd on $SOCK"
	env PATH="$dir/bin:$PATH" MCP_RUNC_ROOT="$ctrd/runc" MCP_RUNC_BINARY="$runc" \
		containerd --config "$dir/containerd.toml" --log-level warn \
		</dev/null >"$dir/containerd.log" 2>&1 &
	CTRD_PID=$!
	echo "$CTRD_PID" >"$dir/containerd.pid"

	ok=
	for _ in $(seq 1 150); do
		if ! kill -0 "$CTRD_PID" 2>/dev/null; then
			tail -n 30 "$dir/containerd.log" >&2 || true
			die "containerd exited during start-up (log above)"
		fi
		if ctr --address "$SOCK" version >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.2
	done
	[ -n "$ok" ] || {
		tail -n 30 "$dir/containerd.log" >&2 || true
		die "containerd did not answer on $SOCK within 30s"
	}
	CTRD_VERSION=$(ctr --address "$SOCK" version | awk '/Server:/ { s = 1 } s && /Version:/ { print $2; exit }')
}

services_port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# services_start_registry DIR FIRST LAST: start a docker-registry (plain
# HTTP, no auth, storage under DIR) on the first free port of
# 127.0.0.1:FIRST-LAST and wait until it answers. Sets REG_PID, REG_ADDR.
services_start_registry() {
	local dir=$1 first=$2 last=$3 port
	REG_PID=
	REG_ADDR=
	for port in $(seq "$first" "$last"); do
		services_port_busy "$port" && continue
		mkdir -p "$dir/registry"
		cat >"$dir/registry.yml" <<EOF_REGISTRY
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
  secret: mcp-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
EOF_REGISTRY
		log "starting docker-registry on 127.0.0.1:$port"
		docker-registry serve "$dir/registry.yml" </dev/null >"$dir/registry.log" 2>&1 &
		REG_PID=$!
		echo "$REG_PID" >"$dir/registry.pid"
		for _ in $(seq 1 100); do
			kill -0 "$REG_PID" 2>/dev/null || break
			if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
				REG_ADDR=127.0.0.1:$port
				break
			fi
			sleep 0.2
		done
		[ -n "$REG_ADDR" ] && break
		# Lost a race for the port, or failed: say why and try the next one.
		tail -n 5 "$dir/registry.log" >&2 || true
		kill -KILL "$REG_PID" 2>/dev/null || true
		rm -f "$dir/registry.pid"
	done
	[ -n "$REG_ADDR" ] || die "docker-registry did not answer on any port in 127.0.0.1:$first-$last"
}
