#!/bin/bash
# Builds the initramfs for the tallymeter guest test:
#
#   mkinitramfs.sh KVER MODULE.ko TEST-BINARY OUT.cpio.gz
#
# It holds static busybox, the vfio modules of the kernel KVER (from
# /lib/modules/KVER, decompressed, in dependency order), tallymeter.ko, the
# static test program and an /init that loads vfio, runs the test with its
# TAP output on the second serial port (/dev/ttyS1) and powers off.
set -euo pipefail

if [ $# -ne 4 ]; then
	echo "usage: $0 KVER MODULE.ko TEST-BINARY OUT.cpio.gz" >&2
	exit 2
fi
kver=$1 module=$2 testbin=$3 out=$4
moddir=/lib/modules/$kver
busybox=$(command -v busybox || true)

die() { echo "mkinitramfs: $*" >&2; exit 1; }

[ -f "$moddir/modules.dep" ] || die "no $moddir/modules.dep (linux-image-$kver)"
[ -n "$busybox" ] || die "busybox not found (busybox-static)"
file -L "$busybox" | grep -q 'statically linked' ||
	die "$busybox is not static (install busybox-static)"
[ -f "$module" ] || die "no module $module"
[ -x "$testbin" ] || die "no test program $testbin"

root=$(mktemp -d /tmp/tallymeter-initramfs.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules}

# Dependencies first: modules.dep lists a module's dependencies so that
# loading them from last to first works; a module already queued is skipped.
declare -A queued=()
order=()
queue_module() {
	local rel=$1 line deps i
	[ -n "${queued[$rel]:-}" ] && return 0
	line=$(grep -m1 "^$rel:" "$moddir/modules.dep") ||
		die "$rel is not in $moddir/modules.dep"
	read -r -a deps <<<"${line#*:}"
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		queue_module "${deps[i]}"
	done
	queued[$rel]=1
	order+=("$rel")
}

# vfio-pci and the IOMMU backend; built-in ones (absent from modules.dep)
# need no file.
for name in vfio_iommu_type1 vfio-pci; do
	rel=$(grep -oE "^[^:]*/$name\.ko(\.(xz|zst|gz))?:" "$moddir/modules.dep" |
	      head -n1 | tr -d :) || true
	if [ -z "$rel" ]; then
		grep -qE "/$name\.ko" "$moddir/modules.builtin" 2>/dev/null ||
			die "$name is neither a module nor built in for $kver"
		continue
	fi
	queue_module "$rel"
done

: >"$root/lib/modules/load.list"
for rel in "${order[@]}"; do
	base=$(basename "$rel")
	case $rel in
	*.ko.xz) xz -dc "$moddir/$rel" >"$root/lib/modules/${base%.xz}" ;;
	*.ko.zst) zstd -qdc "$moddir/$rel" >"$root/lib/modules/${base%.zst}" ;;
	*.ko.gz) gzip -dc "$moddir/$rel" >"$root/lib/modules/${base%.gz}" ;;
	*) cp "$moddir/$rel" "$root/lib/modules/$base" ;;
	esac
	echo "${base%.ko*}.ko" >>"$root/lib/modules/load.list"
done

cp "$busybox" "$root/bin/busybox"
cp "$module" "$root/lib/modules/tallymeter.ko"
cp "$testbin" "$root/bin/tallymeter-test"

cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load.list); do
	insmod "/lib/modules/$m" || echo "guest: insmod $m failed"
done
echo "guest: running tallymeter-test"
/bin/tallymeter-test /lib/modules/tallymeter.ko >/dev/ttyS1 2>&1
echo "guest: tallymeter-test exited $?"
poweroff -f
EOF
chmod 0755 "$root/init"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out"
