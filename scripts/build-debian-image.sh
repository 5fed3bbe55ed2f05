#!/bin/bash
# Build tally's Debian 12 cloud guest from Debian's own packages, with
# debootstrap and apt only (nothing is downloaded from anywhere else):
#
#   - Debian 12 (bookworm) with systemd, openssh-server, cloud-init, sudo,
#     qemu-guest-agent and Debian's cloud kernel (linux-image-cloud-amd64);
#   - cloud-init limited to the NoCloud datasource, so it never probes a
#     metadata address: the node hands it a "cidata" seed with the tenant's key
#     and the lease's hostname; its default user is "debian";
#   - a serial console on ttyS0, where cloud-init prints the SSH host keys and
#     their fingerprints (the node reads them for the tenant);
#   - systemd-networkd with DHCP on every Ethernet interface;
#   - no documentation, no locales, no apt lists, no SSH host keys and an
#     empty machine-id: each VM makes its own keys and id on first boot.
#
# The root file system fills the whole disk (no partition table) and is made
# with `mke2fs -d` (no loop device, no mount of the image). The guest boots the
# kernel and initramfs of its own image by direct kernel boot (libvirt's
# <kernel>/<initrd>): no bootloader and no firmware disk scan, which saves
# seconds under TCG.
#
# Usage: scripts/build-debian-image.sh [OUTDIR]      (default build/guest)
# Writes OUTDIR/debian-12.{qcow2,vmlinuz,initrd.img,info}. Does nothing when
# they are newer than this script. MIRROR= picks another Debian mirror.
set -euo pipefail

out=${1:-build/guest}
here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
mirror=${MIRROR:-http://deb.debian.org/debian}
suite=bookworm
name=debian-12
disk_gib=2
pkgs=(systemd-sysv udev dbus openssh-server cloud-init sudo qemu-guest-agent
	linux-image-cloud-amd64 initramfs-tools zstd e2fsprogs iproute2 ca-certificates
	netbase less procps)

if [ -f "$out/$name.qcow2" ] && [ -f "$out/$name.vmlinuz" ] && [ -f "$out/$name.initrd.img" ] &&
   [ "$out/$name.qcow2" -nt "$self" ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "build-debian-image: run as root (debootstrap and chroot need it)" >&2
	exit 2
fi
for tool in debootstrap mke2fs qemu-img chroot; do
	command -v "$tool" >/dev/null ||
		{ echo "build-debian-image: $tool is missing (scripts/install-deps.sh)" >&2; exit 1; }
done

started=$(date +%s)
mkdir -p "$out"
work=$(mktemp -d /tmp/tally-debian.XXXXXX)
root=$work/root
[ -n "$work" ] && [ "$root" != / ] || exit 1
unmount_all() {
	local m
	for m in dev sys proc; do
		if mountpoint -q "$root/$m" 2>/dev/null; then
			umount "$root/$m"
		fi
	done
}
cleanup() {
	unmount_all
	rm -rf "$work"
}
trap cleanup EXIT

# In the new root only: every path below starts with "$root/".
put() {    # put FILE < content
	mkdir -p "$(dirname "$root/$1")"
	cat >"$root/$1"
}

echo "build-debian-image: debootstrap $suite from $mirror" >&2
if ! debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 20 "$work/debootstrap.log" >&2
	tail -n 20 "$root/debootstrap/debootstrap.log" >&2 2>/dev/null || true
	echo "build-debian-image: debootstrap failed" >&2
	exit 1
fi

# Before apt runs: no documentation or translations, and an initramfs that
# only needs to find a virtio disk with ext4 on it.
put etc/dpkg/dpkg.cfg.d/01-tally-nodoc <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
put etc/initramfs-tools/conf.d/tally.conf <<'EOF'
MODULES=list
COMPRESS=zstd
EOF
put etc/initramfs-tools/modules <<'EOF'
virtio_pci
virtio_blk
ext4
EOF

# debootstrap lays the minimal base; apt, which resolves dependencies
# better than debootstrap's --include, installs the rest inside it.
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
cp /etc/resolv.conf "$root/etc/resolv.conf"
echo "build-debian-image: apt-get install ${pkgs[*]}" >&2
if ! chroot "$root" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends ${pkgs[*]}" >"$work/apt.log" 2>&1; then
	tail -n 30 "$work/apt.log" >&2
	echo "build-debian-image: apt-get install failed" >&2
	exit 1
fi
chroot "$root" apt-get clean

# --- configuration ---------------------------------------------------------

echo "$name" | put etc/hostname
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' | put etc/hosts
printf '/dev/vda\t/\text4\tdefaults,discard\t0 0\n' | put etc/fstab
put etc/apt/sources.list <<EOF
deb http://deb.debian.org/debian $suite main
deb http://deb.debian.org/debian $suite-updates main
deb http://deb.debian.org/debian-security $suite-security main
EOF

# DHCP on every Ethernet interface (QEMU's user network, or libvirt's NAT).
put etc/systemd/network/20-dhcp.network <<'EOF'
[Match]
Type=ether

[Network]
DHCP=yes
EOF
put etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf <<'EOF'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30
EOF
chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
# Nothing to scrub on a fresh ext4 without LVM; it costs seconds under TCG.
chroot "$root" systemctl mask e2scrub_reap.service e2scrub_all.timer >/dev/null 2>&1

# cloud-init: NoCloud only, the network is networkd's (above), and only the
# host key types a tenant's ssh checks first.
put etc/cloud/cloud.cfg.d/90-tally.cfg <<'EOF'
datasource_list: [ NoCloud ]
network: {config: disabled}
ssh_genkeytypes: [ed25519, ecdsa]
ssh_deletekeys: true
ssh_pwauth: false
disable_root: true
# No locales package: C.UTF-8 is built in, and cc_locale would fail.
locale: false
EOF
put etc/ssh/sshd_config.d/tally.conf <<'EOF'
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
EOF

if ! chroot "$root" update-initramfs -u -k all >"$work/initramfs.log" 2>&1; then
	cat "$work/initramfs.log" >&2
	exit 1
fi
unmount_all
echo "nameserver 10.0.2.3" | put etc/resolv.conf

# Each VM makes its own identity on first boot.
rm -f "$root"/etc/ssh/ssh_host_*
: | put etc/machine-id
rm -f "$root/var/lib/dbus/machine-id"
rm -rf "$root"/var/lib/cloud/* "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
	"$root"/var/log/*.log "$root"/tmp/*
find "$root/usr/share/doc" -mindepth 2 ! -name copyright -delete 2>/dev/null || true
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

kernel=$(find "$root/boot" -name 'vmlinuz-*' | sort -V | tail -n 1)
initrd=$root/boot/initrd.img-${kernel##*/vmlinuz-}
if [ -z "$kernel" ] || [ ! -f "$initrd" ]; then
	echo "build-debian-image: no kernel and initramfs in $root/boot" >&2
	exit 1
fi

# --- the disk ----------------------------------------------------------------

mke2fs -q -t ext4 -L root -d "$root" "$work/root.img" "${disk_gib}G" >/dev/null
qemu-img convert -c -f raw -O qcow2 "$work/root.img" "$work/$name.qcow2"
cp "$kernel" "$work/$name.vmlinuz"
cp "$initrd" "$work/$name.initrd.img"
chmod 0644 "$work/$name.qcow2" "$work/$name.vmlinuz" "$work/$name.initrd.img"
{
	echo "image      $name ($suite from $mirror)"
	echo "kernel     ${kernel##*/vmlinuz-}"
	echo "disk       ${disk_gib} GiB virtual, $(du -m "$work/$name.qcow2" | cut -f1) MiB qcow2"
	echo "built in   $(($(date +%s) - started)) s on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
} >"$work/$name.info"
mv "$work/$name.vmlinuz" "$work/$name.initrd.img" "$work/$name.info" "$out/"
mv "$work/$name.qcow2" "$out/"
cat "$out/$name.info" >&2
