#!/bin/bash
# Start or stop virtlogd and libvirtd on a host without systemd.
#
#   scripts/libvirt.sh up STATEFILE    start whichever is not running; record
#                                      in STATEFILE which ones this call started
#   scripts/libvirt.sh down STATEFILE  stop only those recorded in STATEFILE
#
# So `make check` and `make demo` leave the machine as they found it.
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
	echo "usage: $0 up|down STATEFILE" >&2
	exit 2
fi

wait_socket() {
	for _ in $(seq 1 100); do
		[ -S /run/libvirt/libvirt-sock ] && virsh -c qemu:///system version >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	echo "libvirt.sh: libvirtd did not come up (see /var/log/libvirt/)" >&2
	return 1
}

case "$cmd" in
up)
	: >"$state"
	if ! pidof virtlogd >/dev/null; then
		virtlogd -d
		echo virtlogd >>"$state"
	fi
	if ! pidof libvirtd >/dev/null; then
		libvirtd -d
		echo libvirtd >>"$state"
	fi
	wait_socket
	;;
down)
	[ -f "$state" ] || exit 0
	# libvirtd first: it holds virtlogd's connections.
	for d in libvirtd virtlogd; do
		if grep -qx "$d" "$state" && pidof "$d" >/dev/null; then
			kill $(pidof "$d") 2>/dev/null || true
			for _ in $(seq 1 50); do pidof "$d" >/dev/null || break; sleep 0.1; done
		fi
	done
	rm -f "$state"
	;;
*)
	echo "usage: $0 up|down STATEFILE" >&2
	exit 2
	;;
esac
