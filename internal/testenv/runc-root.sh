#!/bin/sh
# runc wrapper put first on the PATH of a test containerd (by .ci/run and by
# internal/testenv). containerd 1.6's runc shim keeps runc state under the
# fixed root /run/containerd/runc/<namespace> unless the client passes
# runtime options, so two daemons on one host would share (and fight over)
# it. This moves that root under the daemon's own state directory.
#   MCP_RUNC_ROOT    the directory that replaces /run/containerd/runc
#   MCP_RUNC_BINARY  the real runc (never this script)
: "${MCP_RUNC_ROOT:?MCP_RUNC_ROOT is not set}"
: "${MCP_RUNC_BINARY:?MCP_RUNC_BINARY is not set}"
for arg do
	shift
	case $arg in
	/run/containerd/runc) arg=$MCP_RUNC_ROOT ;;
	/run/containerd/runc/*) arg=$MCP_RUNC_ROOT/${arg#/run/containerd/runc/} ;;
	esac
	set -- "$@" "$arg"
done
exec "$MCP_RUNC_BINARY" "$@"
