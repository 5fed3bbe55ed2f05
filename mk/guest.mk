# The Debian 12 cloud guest (scripts/build-debian-image.sh) and the tests of
# a tenant using it: cloud-init with the tenant's key, SSH through the port
# the node forwards, `tally lease ssh`.
#
#   make guest-debian   build/guest/debian-12.{qcow2,vmlinuz,initrd.img}, built
#                       once from Debian's archive with debootstrap and reused
#   make check-guest    two leases of it on a devnet (real cloud-init and
#                       OpenSSH under QEMU/TCG), all traffic on 127.0.0.1
.PHONY: guest-debian check-guest
CHECK_TARGETS += check-guest

guest-debian:
	@scripts/build-debian-image.sh $(GUEST_DIR)

check-guest: bin/tallyd bin/tally guest-debian
	@scripts/build-guest-image.sh $(GUEST_DIR)
	@tests/e2e/run.sh ../guest/test_debian.sh
