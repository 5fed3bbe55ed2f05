#!/bin/bash
# The Debian packages as an operator meets them: installed with apt into a
# throwaway Debian 12 root made by debootstrap (packages from Debian's
# archive only), then checked: where the files land, the conffile and the
# unit, `tallyd --version`, DKMS building the module for the root's kernel
# headers (`dkms status`), the edited conffile kept on upgrade, `tally node
# init --production` (modes, refusing a second time), and purge removing
# what install made while keeping the node's key, genesis and settings; and
# lintian on the packages, without errors.
#
#   tests/deb/check.sh DEB_DIR     (make check-deb; as root; MIRROR= to
#                                   use another Debian mirror)
#
# Ends with a Check-style summary line, like the other suites.
set -uo pipefail
cd "$(dirname "$0")/../.."
debs=$(cd "${1:?usage: check.sh DEB_DIR}" && pwd)
mirror=${MIRROR:-http://deb.debian.org/debian}
checks=0
fails=0

[ "$(id -u)" -eq 0 ] || { echo "check-deb: run as root (debootstrap and chroot need it)" >&2; exit 2; }
tally_deb=$(ls "$debs"/tally_*.deb 2>/dev/null | head -n 1)
dkms_deb=$(ls "$debs"/tallymeter-dkms_*.deb 2>/dev/null | head -n 1)
[ -n "$tally_deb" ] && [ -n "$dkms_deb" ] || { echo "check-deb: no packages in $debs (make deb)" >&2; exit 2; }

work=$(mktemp -d "/tmp/tally-check-deb.$$.XXXXXX")
root=$work/root
[ -n "$work" ] && [ "$root" != / ] || exit 1
unmount_all() {
	local m
	for m in dev/pts dev sys proc; do
		mountpoint -q "$root/$m" 2>/dev/null && umount "$root/$m"
	done
	return 0
}
cleanup() {
	unmount_all
	rm -rf "$work"
}
trap cleanup EXIT

check() {
	local what=$1
	shift
	checks=$((checks + 1))
	if "$@" >"$work/out" 2>&1; then
		echo "ok $checks - $what"
	else
		echo "not ok $checks - $what"
		sed 's/^/#   /' "$work/out" | tail -n 20
		fails=$((fails + 1))
	fi
}
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive LC_ALL=C "$@"; }

# --- lintian, on the host ---------------------------------------------------------
check "lintian reports no errors on the packages" \
	bash -c "lintian --fail-on error '$tally_deb' '$dkms_deb'"

# --- a throwaway root ---------------------------------------------------------------
started=$(date +%s)
echo "# debootstrap bookworm from $mirror" >&2
if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$work/debootstrap.log" 2>&1; then
	tail -n 20 "$work/debootstrap.log" >&2
	echo "check-deb: debootstrap failed" >&2
	exit 1
fi
mount -t proc proc "$root/proc"
mount -t sysfs sys "$root/sys"
mount --bind /dev "$root/dev"
mount --bind /dev/pts "$root/dev/pts"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# No daemon starts inside the root (there is no init there to own it).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
mkdir -p "$root/debs"
cp "$tally_deb" "$dkms_deb" "$root/debs/"
t=/debs/$(basename "$tally_deb")
d=/debs/$(basename "$dkms_deb")
echo "# root ready in $(($(date +%s) - started)) s" >&2

# What exists before install, to tell what install made.
in_root find / -xdev \( -path /debs -o -path /var/cache -o -path /var/lib/apt -o \
	-path /var/lib/dpkg -o -path /var/log -o -path /tmp \) -prune -o -print | sort >"$work/before"

in_root apt-get update -qq >"$work/apt.log" 2>&1
# The module's headers first, so installing tallymeter-dkms builds it for them.
check "apt-get installs the kernel headers, dkms and both packages" \
	bash -c "chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends linux-headers-amd64 \
		>>'$work/apt.log' 2>&1 &&
		chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends dkms '$t' '$d' >>'$work/apt.log' 2>&1 ||
		{ tail -n 30 '$work/apt.log'; exit 1; }"
echo "# installed in $(($(date +%s) - started)) s" >&2

for f in /usr/sbin/tallyd /usr/bin/tally /etc/tally/tallyd.conf /lib/systemd/system/tallyd.service \
	/usr/share/man/man1/tally.1.gz /usr/share/man/man8/tallyd.8.gz \
	/usr/share/man/man5/tallyd.conf.5.gz /usr/share/bash-completion/completions/tally \
	/usr/src/tallymeter-0.1/dkms.conf /usr/src/tallymeter-0.1/tallymeter.c; do
	check "$f is installed" test -s "$root$f"
done
check "/var/lib/tally exists, mode 0711, empty" \
	bash -c "[ \"\$(stat -c %a '$root/var/lib/tally')\" = 711 ] && [ -z \"\$(ls -A '$root/var/lib/tally')\" ]"
check "/etc/tally/tallyd.conf is a conffile" \
	bash -c "grep -qx /etc/tally/tallyd.conf '$root/var/lib/dpkg/info/tally.conffiles'"
check "the unit is installed, not enabled (the node needs its key first)" \
	bash -c "grep -q '^ExecStart=/usr/sbin/tallyd$' '$root/lib/systemd/system/tallyd.service' &&
		 grep -q '^CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_SYS_ADMIN$' \
			'$root/lib/systemd/system/tallyd.service' &&
		 [ ! -e '$root/etc/systemd/system/multi-user.target.wants/tallyd.service' ]"
version=$(sed -n 's/^#define TALLY_VERSION "\(.*\)"/\1/p' lib/version.h)
check "tallyd --version runs in the root: tallyd $version" \
	bash -c "[ \"\$(chroot '$root' /usr/sbin/tallyd --version)\" = 'tallyd $version' ]"
check "tally --version runs in the root" \
	bash -c "chroot '$root' /usr/bin/tally --version | grep -qx 'tally $version'"
check "tallyd --check-config accepts the packaged tallyd.conf" \
	in_root tallyd --check-config
check "tallyd without a node says how to make one" \
	bash -c "! chroot '$root' /usr/sbin/tallyd 2>'$work/err' && grep -q 'tally node init --production' '$work/err'"

# --- DKMS ---------------------------------------------------------------------------
kver=$(ls "$root/lib/modules" | head -n 1)
check "the root has kernel headers ($kver)" test -n "$kver" -a -d "$root/usr/src/linux-headers-$kver"
# Installing tallymeter-dkms builds for `uname -r`, the host's kernel, whose
# headers the root may not have; then for the root's own headers here.
in_root dkms status >"$work/dkms-status" 2>&1
grep -q "tallymeter/0.1, $kver" "$work/dkms-status" ||
	in_root dkms install tallymeter/0.1 -k "$kver" >"$work/dkms.log" 2>&1
in_root dkms status >"$work/dkms-status" 2>&1
check "dkms status: tallymeter/0.1 installed for $kver" \
	bash -c "cat '$work/dkms-status' '$work/dkms.log' 2>/dev/null; grep -q 'tallymeter/0.1, $kver, x86_64: installed' '$work/dkms-status'"
check "the built module is tallymeter.ko for $kver" \
	bash -c "f=\$(find '$root/lib/modules/$kver/updates' -name 'tallymeter.ko*' | head -n 1);
		 [ -n \"\$f\" ] && modinfo -F vermagic \"\$f\" | grep -q '^$kver '"

# --- upgrade keeps the edited conffile ------------------------------------------------
echo '# edited by the operator' >>"$root/etc/tally/tallyd.conf"
sed -i 's/^#log_level = info$/log_level = debug/' "$root/etc/tally/tallyd.conf"
mkdir -p "$root/etc/tally/tallyd.conf.d"
printf '[node]\nlisten = 127.0.0.1:7700\n' >"$root/etc/tally/tallyd.conf.d/60-local.conf"
cp "$root/etc/tally/tallyd.conf" "$work/edited.conf"
# The next version: the same package with its version raised.
dpkg-deb -R "$tally_deb" "$work/next"
sed -i "s/^Version: .*/Version: ${version}+next1/" "$work/next/DEBIAN/control"
dpkg-deb -b "$work/next" "$root/debs/tally_next.deb" >/dev/null
check "dpkg upgrades tally to ${version}+next1 without asking" \
	bash -c "chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg -i /debs/tally_next.deb </dev/null &&
		 chroot '$root' dpkg-query -W -f='\${Version}' tally | grep -qx '${version}+next1'"
check "the upgrade kept the edited tallyd.conf and the drop-in" \
	bash -c "cmp '$work/edited.conf' '$root/etc/tally/tallyd.conf' &&
		 [ -s '$root/etc/tally/tallyd.conf.d/60-local.conf' ]"
check "tallyd reads the kept configuration (log_level = debug, the drop-in)" \
	bash -c "chroot '$root' /usr/sbin/tallyd --check-config | grep -q '(1 drop-in)'"
rm -f "$root/etc/tally/tallyd.conf.d/60-local.conf"

# --- tally node init --production -------------------------------------------------------
check "tally node init --production makes this host a node in /etc/tally" \
	bash -c "chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		tally node init --production --chain-id deb-check --domain-type qemu --network none \
		>'$work/init.out' 2>&1 || { cat '$work/init.out'; exit 1; }; cat '$work/init.out';
		 grep -q \"this host is a node of chain 'deb-check'\" '$work/init.out'"
check "the node's key is 0600, its genesis and settings 0644, the data dir 0711 and empty" \
	bash -c "cd '$root' && [ \"\$(stat -c '%a %U' etc/tally/node.pem)\" = '600 root' ] &&
		 [ \"\$(stat -c %a etc/tally/genesis.json)\" = 644 ] &&
		 [ \"\$(stat -c %a etc/tally/tallyd.conf.d/50-node.conf)\" = 644 ] &&
		 [ \"\$(stat -c %a var/lib/tally)\" = 711 ] && [ -z \"\$(ls -A var/lib/tally)\" ]"
check "tallyd --check-config reads the package's tallyd.conf and the node's drop-in" \
	bash -c "chroot '$root' /usr/sbin/tallyd --check-config | grep -q '(1 drop-in): node [0-9a-f]*, chain .deb-check., a genesis validator'"
check "the new network jails a validator that misses 1000 certificates in a row" \
	[ "$(jq .params.liveness_window "$root/etc/tally/genesis.json")" = 1000 ]
cp "$root/etc/tally/node.pem" "$work/node.pem"
check "a second node init --production is refused and replaces nothing" \
	bash -c "! chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
		tally node init --production --chain-id deb-other 2>'$work/init2.err' &&
		 grep -q 'node.pem exists: this host is a node already' '$work/init2.err' &&
		 cmp '$work/node.pem' '$root/etc/tally/node.pem' &&
		 grep -q deb-check '$root/etc/tally/genesis.json'"

# --- purge ---------------------------------------------------------------------------
check "apt-get purge removes both packages" \
	bash -c "chroot '$root' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		apt-get purge -y -q tally tallymeter-dkms >'$work/purge.log' 2>&1 || { tail -n 20 '$work/purge.log'; exit 1; }"
check "dkms no longer knows tallymeter" \
	bash -c "! chroot '$root' dkms status 2>&1 | grep -q tallymeter &&
		 [ -z \"\$(find '$root/lib/modules' -name 'tallymeter.ko*')\" ] && [ ! -e '$root/usr/src/tallymeter-0.1' ]"
check "purge removed the conffile and the empty /var/lib/tally, kept the node's files and said where" \
	bash -c "[ ! -e '$root/etc/tally/tallyd.conf' ] && [ ! -e '$root/var/lib/tally' ] &&
		 cmp '$work/node.pem' '$root/etc/tally/node.pem' && [ -s '$root/etc/tally/genesis.json' ] &&
		 [ \"\$(cd '$root/etc/tally' && find . | sort | tr '\n' ' ')\" = \". ./genesis.json ./node.pem ./tallyd.conf.d ./tallyd.conf.d/50-node.conf \" ] &&
		 grep -q '/etc/tally is not empty' '$work/purge.log'"
# The node's files are the operator's: removed by hand, nothing else may be left.
rm -rf "$root/etc/tally"
in_root find / -xdev \( -path /debs -o -path /var/cache -o -path /var/lib/apt -o \
	-path /var/lib/dpkg -o -path /var/log -o -path /tmp \) -prune -o -print | sort >"$work/after"
# What the dependencies (dkms, headers, compilers) put there is theirs.
comm -13 "$work/before" "$work/after" | grep -i tally >"$work/left" || true
check "nothing named tally is left in the root" \
	bash -c "[ ! -s '$work/left' ] || { cat '$work/left'; exit 1; }"

echo "# check-deb took $(($(date +%s) - started)) s" >&2
pct=100
[ $checks -gt 0 ] && pct=$(((checks - fails) * 100 / checks))
echo "deb $pct%: Checks: $checks, Failures: $fails, Errors: 0"
[ $fails -eq 0 ]
