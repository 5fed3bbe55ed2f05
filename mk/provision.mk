# VM provisioner (daemon/provision/): integration tests on a real libvirtd
# with QEMU (TCG) guests, and the provisioning benchmark.
#
#   make guest-image       build/guest/{vmlinuz,initrd.img}, the tiny test guest
#   make check-provision   integration tests (root, libvirtd; starts it if needed)
#   make bench-provision   accepted spec -> running domain vs raw virDomainCreateXML
#
# The test and bench binaries link only the provisioner's objects and the
# parts of lib/ they use, so that other areas' work in progress can't break them.

PROV_SRCS    := $(wildcard daemon/provision/*.c)
PROV_OBJS    := $(call obj,$(PROV_SRCS) contracts/access.c contracts/contract.c lib/codec.c \
                lib/crypto.c \
                lib/errors.c)
PROV_TESTS   := $(wildcard tests/provision/*.c)

.PHONY: guest-image check-provision bench-provision

guest-image:
	@scripts/build-guest-image.sh $(GUEST_DIR)

$(BUILD)/tests/provision: $(call obj,$(PROV_TESTS)) $(PROV_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/bench/provision_bench: $(call obj,bench/provision_bench.c bench/bench_quiet.c \
		lib/meter_pins.c) $(PROV_OBJS)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# QEMU runs as libvirt-qemu, which may not be able to reach a checkout under
# a private directory: the guest is handed over from a world-readable copy.
check-provision: $(BUILD)/tests/provision guest-image
	@g=$$(scripts/guest-copy.sh $(GUEST_DIR)) && \
	TALLY_GUEST_DIR=$$g $(BUILD)/tests/provision; rc=$$?; rm -rf "$$g"; exit $$rc

bench-provision: $(BUILD)/bench/provision_bench guest-image
	@g=$$(scripts/guest-copy.sh $(GUEST_DIR)) && \
	TALLY_GUEST_DIR=$$g $(BUILD)/bench/provision_bench; rc=$$?; rm -rf "$$g"; exit $$rc

CHECK_TARGETS += check-provision
BENCH_TARGETS += bench-provision
