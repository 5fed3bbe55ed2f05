#!/bin/bash
# Build tally's tiny test guest from Debian packages: the installed Debian
# kernel that scripts/kernel.sh picks plus a busybox initramfs that
#   - prints "tally-guest: init reached" on the serial console (ttyS0),
#   - burns tally.burn=N percent of one vCPU (kernel command line), so the
#     meter has real CPU time to measure,
#   - powers off on the ACPI power button, so a graceful shutdown works,
#   - keeps a root shell on the serial console.
#
# Usage: scripts/build-guest-image.sh [OUTDIR]      (default build/guest)
# Writes OUTDIR/vmlinuz and OUTDIR/initrd.img. Does nothing when both are
# newer than this script, the kernel and busybox.
set -euo pipefail

out=${1:-build/guest}
here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"

# The kernel every guest and the module build share (scripts/kernel.sh).
kver=$("$here/kernel.sh") || exit 1
kernel=/boot/vmlinuz-$kver
busybox=/bin/busybox
ldd_says=$(ldd "$busybox" 2>&1 || true)
if ! grep -q 'not a dynamic' <<<"$ldd_says"; then
	echo "build-guest-image: $busybox is not static; install busybox-static" >&2
	exit 1
fi
for tool in cpio gzip cc; do
	command -v "$tool" >/dev/null || { echo "build-guest-image: $tool is missing" >&2; exit 1; }
done

mkdir -p "$out"
if [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] &&
   [ "$out/initrd.img" -nt "$self" ] && [ "$out/initrd.img" -nt "$busybox" ] &&
   [ "$out/vmlinuz" -nt "$kernel" ] && [ "$(cat "$out/kernel-version" 2>/dev/null)" = "$kver" ]; then
	exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,sbin,dev,proc,sys,tmp,var,etc/acpi/PWRF,lib/modules}

cp "$busybox" "$root/bin/busybox"

# The burner: a duty cycle over 100 ms periods, busy for N% of each.
cat >"$work/burn.c" <<'CEOF'
#include <stdlib.h>
#include <time.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	const long long period = 100000000LL;	/* 100 ms */
	long pct = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
	long long busy;

	if (pct <= 0)
		return 0;
	if (pct > 100)
		pct = 100;
	busy = period * pct / 100;
	for (;;) {
		long long start = now_ns();
		struct timespec rest;

		while (now_ns() - start < busy)
			;
		if (busy < period) {
			rest.tv_sec = 0;
			rest.tv_nsec = period - (now_ns() - start);
			if (rest.tv_nsec > 0)
				nanosleep(&rest, NULL);
		}
	}
}
CEOF
cc -static -O2 -o "$root/bin/tally-burn" "$work/burn.c"

# ACPI power button -> poweroff (graceful stop from the host).
for m in drivers/acpi/button.ko drivers/input/evdev.ko; do
	src=/lib/modules/$kver/kernel/$m
	if [ -f "$src" ]; then
		cp "$src" "$root/lib/modules/"
	fi
done
cat >"$root/etc/acpi/PWRF/00000080" <<'SEOF'
#!/bin/sh
echo "tally-guest: power button, powering off" >/dev/console
sync
poweroff -f
SEOF
chmod 0755 "$root/etc/acpi/PWRF/00000080"

cat >"$root/init" <<'SEOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
arg() { sed -n "s/.*\<$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
name=$(arg tally.hostname)
[ -n "$name" ] && hostname "$name"
for m in /lib/modules/*.ko; do
	[ -f "$m" ] && insmod "$m" 2>/dev/null
done
mkdir -p /var/run /var/log
acpid -c /etc/acpi -l /dev/null -p /tmp/acpid.pid 2>/dev/null
burn=$(arg tally.burn)
burn=${burn:-0}
echo "tally-guest: init reached (burn=${burn}%)"
if [ "$burn" -gt 0 ] 2>/dev/null; then
	/bin/tally-burn "$burn" &
	echo "tally-guest: burning ${burn}% of one vCPU (pid $!)"
fi
while :; do
	setsid cttyhack sh -l
	sleep 1
done
SEOF
chmod 0755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -6 >"$work/initrd.img"
cp "$kernel" "$work/vmlinuz"
# Readable by the unprivileged QEMU user that libvirt runs guests as.
chmod 0644 "$work/vmlinuz" "$work/initrd.img"
mv "$work/initrd.img" "$out/initrd.img"
mv "$work/vmlinuz" "$out/vmlinuz"
echo "$kver" >"$out/kernel-version"
echo "build-guest-image: $out/vmlinuz + $out/initrd.img (kernel $kver)"
