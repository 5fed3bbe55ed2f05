#!/bin/bash
# Install the Debian packages tally needs to build, test and demo, only when
# they are missing. Safe to run repeatedly; a no-op on a prepared machine.
set -euo pipefail

PKGS=(
	# build
	build-essential pkg-config git clang llvm libbpf-dev bpftool linux-libc-dev
	# libFuzzer and the sanitizer runtimes for clang (make fuzz, check-fuzz)
	libclang-rt-dev
	libssl-dev libsqlite3-dev sqlite3 check libjansson-dev libmicrohttpd-dev
	libcurl4-openssl-dev libinih-dev libvirt-dev uthash-dev libxml2-dev libevent-dev
	# runtime: libvirt + QEMU (TCG), NAT network, guest seed images
	libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils
	dnsmasq-base genisoimage
	# tiny guest and kernel-module tests
	linux-image-amd64 linux-headers-amd64 linux-source busybox-static cpio kmod
	# the Debian cloud guest (make guest-debian) and tenants' SSH (tally lease ssh)
	debootstrap e2fsprogs openssh-client
	# benchmarks and tools
	linux-perf openssl procps psmisc iproute2 util-linux jq curl
	# script(1): a pseudo-terminal for the CLI's progress line (tests/e2e/test_human.sh)
	bsdutils
	# a wall clock that jumps (tests/e2e/test_clock.sh)
	faketime
	# man pages (make check-docs) and Debian packages (make deb, check-deb)
	man-db bsdextrautils debhelper dh-dkms dpkg-dev fakeroot lintian
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed ||
		missing+=("$p")
done

# The guests and the module need one kernel release with both image and
# headers; Debian's two metapackages can briefly point at different ones.
kernel_pair() {
	[ "$(id -u)" -eq 0 ] && "$(dirname "$0")/kernel.sh" --install >/dev/null
	return 0
}

if [ ${#missing[@]} -eq 0 ]; then
	kernel_pair
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages (${missing[*]}); run as root" >&2
	exit 2
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
kernel_pair
