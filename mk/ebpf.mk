# eBPF CPU meter: the BPF object and its skeleton, the integration tests
# (root, host kernel, libvirt), and the overhead benchmark.
#
#   make check-ebpf        integration tests (tests/ebpf/)
#   make bench-cpumeter    perf bench sched pipe with and without the meter
#                          (CPUMETER_BENCH_ARGS=--as-baseline: see the bench)
#   make EBPF_VMLINUX=btf  build the programs against a vmlinux.h dumped from
#                          this kernel's BTF instead of ebpf/vmlinux/vmlinux.h

BPF_CLANG    ?= clang
BPFTOOL      ?= bpftool
EBPF_VMLINUX ?= min
BPF_ARCH     := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_CFLAGS   := -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -g -O2 -Wall -Werror -I.

EBPF_GEN       := $(BUILD)/gen
EBPF_BTF_DIR   := $(EBPF_GEN)/vmlinux-btf
ifeq ($(EBPF_VMLINUX),btf)
EBPF_VMLINUX_DIR := $(EBPF_BTF_DIR)
else
EBPF_VMLINUX_DIR := ebpf/vmlinux
endif

$(EBPF_BTF_DIR)/vmlinux.h:
	@mkdir -p $(@D)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp
	mv $@.tmp $@

$(EBPF_GEN)/%.bpf.o: ebpf/%.bpf.c ebpf/%.h $(EBPF_VMLINUX_DIR)/vmlinux.h
	@mkdir -p $(@D)
	$(BPF_CLANG) $(BPF_CFLAGS) -I$(EBPF_VMLINUX_DIR) -c $< -o $@

.SECONDARY: $(EBPF_GEN)/cpumeter.bpf.o
$(EBPF_GEN)/%.skel.h: $(EBPF_GEN)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $* > $@.tmp
	mv $@.tmp $@

# The same program against the full BTF header, so that the hand-written
# one cannot drift from what a real vmlinux.h declares (built by check-ebpf
# where the kernel has BTF).
$(EBPF_GEN)/btf-check/cpumeter.bpf.o: ebpf/cpumeter.bpf.c ebpf/cpumeter.h \
		$(EBPF_BTF_DIR)/vmlinux.h
	@mkdir -p $(@D)
	$(BPF_CLANG) $(BPF_CFLAGS) -I$(EBPF_BTF_DIR) -c $< -o $@

# daemon/meter includes the skeleton, so it must exist before any of those
# objects compile; later changes are tracked by the compiler's .d files.
$(call obj,$(wildcard daemon/meter/*.c)): | $(EBPF_GEN)/cpumeter.skel.h

METER_SRCS := $(filter-out daemon/meter/gpu%,$(wildcard daemon/meter/*.c))
EBPF_TEST_SRCS := $(wildcard tests/ebpf/*.c)

# The test binary links the meter's own objects (not all of libtallyd), so
# it does not depend on other areas' work in progress.
$(BUILD)/tests/ebpf: $(call obj,$(EBPF_TEST_SRCS) $(METER_SRCS)) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

$(BUILD)/bench/cpumeter_bench: $(call obj,bench/cpumeter_bench.c bench/bench_quiet.c \
		$(METER_SRCS)) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

EBPF_BTF_CHECK := $(if $(wildcard /sys/kernel/btf/vmlinux),$(EBPF_GEN)/btf-check/cpumeter.bpf.o)

.PHONY: check-ebpf bench-cpumeter
# The libvirt test boots the tiny guest (mk/provision.mk), from a
# world-readable copy as check-provision does.
check-ebpf: $(BUILD)/tests/ebpf $(EBPF_BTF_CHECK) guest-image
	@g=$$(scripts/guest-copy.sh $(GUEST_DIR)) && \
	TALLY_SRCDIR=$(CURDIR) TALLY_GUEST_DIR=$$g $(BUILD)/tests/ebpf; rc=$$?; rm -rf "$$g"; exit $$rc

# CPUMETER_BENCH_ARGS=--as-baseline measures over BPF programs already on
# the switch path (the bench refuses to, by default).
bench-cpumeter: $(BUILD)/bench/cpumeter_bench
	$(BUILD)/bench/cpumeter_bench $(CPUMETER_BENCH_ARGS)

CHECK_TARGETS += check-ebpf
BENCH_TARGETS += bench-cpumeter
