#!/bin/sh
# Builds the tiny guest the eBPF meter tests boot: a busybox initramfs whose
# init burns CPU forever, so the VM's vCPU thread keeps a host CPU busy.
# Usage: mkguest.sh OUTDIR   (writes OUTDIR/initrd.gz)
set -eu
out=$1
busybox=$(command -v busybox)
# ldd fails on a static binary, which is what the initramfs needs.
! ldd "$busybox" >/dev/null 2>&1 || {
	echo "mkguest: $busybox is not static (install busybox-static)" >&2
	exit 1
}
root="$out/root"
mkdir -p "$root/bin" "$root/proc"
cp "$busybox" "$root/bin/busybox"
cat > "$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
echo tally-guest: burning
while :; do :; done
INIT
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$out/initrd.gz"
rm -rf "$root"
