#!/bin/bash
# Host side of the tallymeter.ko test: boots Debian's kernel KVER in QEMU
# (TCG, q35 with an emulated Intel IOMMU) with an initramfs holding the
# module, the vfio modules and the guest test program, then reads the TAP
# the guest wrote to its second serial port.
#
#   run.sh KVER MODULE.ko TEST-BINARY
#
# Fails on any "not ok", on a missing or short plan, and when the guest does
# not finish within TALLYMETER_TEST_TIMEOUT seconds (default 180). Prints the
# TAP lines and a Check-style summary line at the end; the guest console
# too when it fails or TALLYMETER_TEST_VERBOSE=1.
set -uo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 KVER MODULE.ko TEST-BINARY" >&2
	exit 2
fi
kver=$1 module=$2 testbin=$3
here=$(cd "$(dirname "$0")" && pwd)
timeout_s=${TALLYMETER_TEST_TIMEOUT:-180}
kernel=/boot/vmlinuz-$kver
qemu=$(command -v qemu-system-x86_64 || true)

skip() { echo "SKIP: $*"; exit 0; }
[ -r "$kernel" ] || skip "no $kernel: install linux-image-$kver"
[ -d "/lib/modules/$kver" ] || skip "no /lib/modules/$kver"
[ -n "$qemu" ] || skip "qemu-system-x86_64 not installed (qemu-system-x86)"

tmp=$(mktemp -d /tmp/tallymeter-kmod.XXXXXX)
qemu_pid=
cleanup() {
	if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
		kill "$qemu_pid" 2>/dev/null
		wait "$qemu_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$here/mkinitramfs.sh" "$kver" "$module" "$testbin" "$tmp/initramfs.gz" ||
	exit 1

# timeout(1) ends QEMU if the guest hangs; -no-reboot and panic=-1 turn a
# guest panic into a QEMU exit.
timeout --kill-after=10 "$timeout_s" "$qemu" \
	-machine q35,kernel-irqchip=split -accel tcg \
	-device intel-iommu,intremap=on \
	-m 512 -smp 1 -vga std -nic none \
	-kernel "$kernel" -initrd "$tmp/initramfs.gz" \
	-append "console=ttyS0 intel_iommu=on panic=-1 loglevel=4" \
	-nographic -monitor none \
	-serial "file:$tmp/console.log" -serial "file:$tmp/tap.log" \
	-no-reboot &
qemu_pid=$!
wait "$qemu_pid"
qemu_status=$?
qemu_pid=

tr -d '\r' <"$tmp/tap.log" >"$tmp/tap.txt" 2>/dev/null || : >"$tmp/tap.txt"
cat "$tmp/tap.txt"

planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$tmp/tap.txt" | tail -n1)
passed=$(grep -c '^ok ' "$tmp/tap.txt")
failed=$(grep -c '^not ok ' "$tmp/tap.txt")
seen=$((passed + failed))
errors=0
if [ -z "$planned" ]; then
	echo "run.sh: the guest printed no TAP plan" >&2
	planned=$((seen + 1))
	errors=1
elif [ "$seen" -ne "$planned" ]; then
	echo "run.sh: plan says $planned tests, the guest ran $seen" >&2
	[ "$seen" -gt "$planned" ] && planned=$seen
	errors=$((planned - seen))
	[ "$errors" -eq 0 ] && errors=1
fi
if grep -q '^Bail out!' "$tmp/tap.txt"; then
	errors=$((errors + 1))
	planned=$((planned + 1))
fi
if [ "$qemu_status" -eq 124 ] || [ "$qemu_status" -eq 137 ]; then
	echo "run.sh: the guest did not finish within ${timeout_s}s" >&2
	[ "$errors" -eq 0 ] && { errors=1; planned=$((planned + 1)); }
elif [ "$qemu_status" -ne 0 ]; then
	echo "run.sh: qemu exited with status $qemu_status" >&2
	[ "$errors" -eq 0 ] && { errors=1; planned=$((planned + 1)); }
fi
grep -q '^guest: tallymeter-test exited' "$tmp/console.log" 2>/dev/null || {
	echo "run.sh: the guest never finished its test program" >&2
	[ "$errors" -eq 0 ] && { errors=1; planned=$((planned + 1)); }
}

if [ "$failed" -ne 0 ] || [ "$errors" -ne 0 ] ||
   [ "${TALLYMETER_TEST_VERBOSE:-0}" = 1 ]; then
	echo "--- guest console (last 60 lines)" >&2
	tr -d '\r' <"$tmp/console.log" 2>/dev/null | tail -n 60 >&2
	echo >&2
fi
echo "$(((planned - failed - errors) * 100 / planned))%: Checks: $planned, Failures: $failed, Errors: $errors"
[ "$failed" -eq 0 ] && [ "$errors" -eq 0 ]
