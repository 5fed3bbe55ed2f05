#!/bin/bash
# Copy the tiny guest (vmlinuz, initrd.img) from DIR into a fresh world-readable
# directory under /tmp and print its path. QEMU runs as libvirt-qemu, which
# cannot enter a checkout that lives under a private directory. The caller
# removes the copy.
set -euo pipefail
src=${1:?usage: guest-copy.sh DIR}
dst=$(mktemp -d /tmp/tally-guest.XXXXXX)
chmod 0755 "$dst"
cp "$src/vmlinuz" "$src/initrd.img" "$dst/"
chmod 0644 "$dst"/*
echo "$dst"
