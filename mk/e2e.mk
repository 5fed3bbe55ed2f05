# End-to-end tests: real tallyd, tally, libvirtd + QEMU guests, eBPF meters.
.PHONY: check-e2e
CHECK_TARGETS += check-e2e

check-e2e: bin/tallyd bin/tally
	@scripts/build-guest-image.sh build/guest
	@tests/e2e/run.sh
