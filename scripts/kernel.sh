#!/bin/bash
# The one place that decides which Debian kernel the guests boot and the
# module builds against: the newest release R for which the image
# (/boot/vmlinuz-R), its modules (/lib/modules/R/modules.dep) and its headers
# (/usr/src/linux-headers-R) are all installed. Nothing in the tree names a
# kernel version; everything asks this script (`make check` lints for it).
#
#   scripts/kernel.sh             print R, or fail saying what is missing
#   scripts/kernel.sh --install   as root: when no release has both image and
#                                 headers, install the missing half of the
#                                 newest one from Debian, then print R
#   scripts/kernel.sh --field F   print one path of R: vmlinuz, modules,
#                                 headers
#
# Debian's linux-image-amd64 and linux-headers-amd64 can point at different
# releases for a while after an upload; picking a complete pair (or making
# one) keeps the build and the guest test on the same kernel.
set -euo pipefail

# A root to look under instead of / (the self-test in scripts/lint-pins.sh
# builds a fake one).
R=${TALLY_KERNEL_ROOT:-}
install=0
field=
while [ $# -gt 0 ]; do
	case $1 in
	--install) install=1 ;;
	--field) field=${2:?--field needs vmlinuz, modules or headers}; shift ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "kernel.sh: unknown argument $1" >&2; exit 2 ;;
	esac
	shift
done

# Releases with an image, newest first.
images() {
	local f
	for f in "$R"/boot/vmlinuz-*-amd64; do
		[ -e "$f" ] && echo "${f#"$R"/boot/vmlinuz-}"
	done | sort -rV
}
headers() {
	local d
	for d in "$R"/usr/src/linux-headers-*-amd64; do
		[ -f "$d/Makefile" ] && echo "${d#"$R"/usr/src/linux-headers-}"
	done | sort -rV
}

complete_pair() {
	local r
	for r in $(images); do
		if [ -f "$R/lib/modules/$r/modules.dep" ] && [ -f "$R/usr/src/linux-headers-$r/Makefile" ]; then
			echo "$r"
			return 0
		fi
	done
	return 1
}

release=$(complete_pair || true)
if [ -z "$release" ] && [ "$install" = 1 ] && [ -z "$R" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "kernel.sh: no kernel with both image and headers installed; run as root to install them" >&2
		exit 2
	fi
	export DEBIAN_FRONTEND=noninteractive
	want=()
	newest_image=$(images | head -n1)
	newest_headers=$(headers | head -n1)
	if [ -n "$newest_image" ]; then
		want=("linux-headers-$newest_image")
	elif [ -n "$newest_headers" ]; then
		want=("linux-image-$newest_headers")
	else
		want=(linux-image-amd64 linux-headers-amd64)
	fi
	echo "kernel.sh: installing ${want[*]} to complete a kernel image + headers pair" >&2
	apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null ||
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; } ||
		{ apt-get install -y -qq --no-install-recommends linux-image-amd64 linux-headers-amd64 >/dev/null; } ||
		true
	release=$(complete_pair || true)
fi
if [ -z "$release" ]; then
	echo "kernel.sh: no Debian kernel with image, modules and headers installed" \
		"(images: $(images | tr '\n' ' ')headers: $(headers | tr '\n' ' '))" \
		"; run 'scripts/kernel.sh --install' as root or install linux-image-amd64 and linux-headers-amd64" >&2
	exit 1
fi

case $field in
'') echo "$release" ;;
vmlinuz) echo "$R/boot/vmlinuz-$release" ;;
modules) echo "$R/lib/modules/$release" ;;
headers) echo "$R/usr/src/linux-headers-$release" ;;
*) echo "kernel.sh: unknown field $field" >&2; exit 2 ;;
esac
