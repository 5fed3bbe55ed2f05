# tallymeter.ko: build, lint, and test inside a QEMU guest (docs/KMOD.md).
#
#   make kmod          build kmod/tallymeter.ko against KDIR
#   make check-kmod    W=1 build with no warnings, checkpatch.pl when present,
#                      then the guest test (tests/kmod/run.sh)
#
# KDIR defaults to the headers of the Debian kernel that scripts/kernel.sh
# picks (the newest release with image, modules and headers installed), so
# the module is built for exactly the kernel the guest test boots.

ifeq ($(origin KDIR),undefined)
KDIR := $(shell scripts/kernel.sh --field headers 2>/dev/null)
endif
KMOD_KVER := $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null)

KMOD_OUT     := build/kmod
KMOD_KO      := kmod/tallymeter.ko
KMOD_SRCS    := Kbuild kmod/Kbuild kmod/tallymeter.c kmod/tallymeter_abi.h
KMOD_LINT    := kmod/tallymeter.c kmod/tallymeter_abi.h
KMOD_TESTBIN := $(KMOD_OUT)/tallymeter-test
# checkpatch.pl: from KDIR, an unpacked kernel source, or unpacked here from
# Debian's linux-source-* tarball. Set CHECKPATCH= to a path to override.
CHECKPATCH   ?= $(firstword $(wildcard $(KDIR)/scripts/checkpatch.pl \
	/usr/src/linux-source-*/scripts/checkpatch.pl))
KMOD_SRC_TAR := $(lastword $(sort $(wildcard /usr/src/linux-source-*.tar.xz)))

.PHONY: kmod kmod-w1 kmod-checkpatch check-kmod

define kmod_need_kdir
	@if [ -z "$(KDIR)" ] || [ ! -f "$(KDIR)/Makefile" ]; then \
		echo "kmod: no kernel build tree: scripts/kernel.sh found no Debian kernel with headers (run it with --install as root) or set KDIR" >&2; \
		exit 1; \
	fi
endef

kmod: $(KMOD_SRCS)
	$(kmod_need_kdir)
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# A fresh copy each time, so the W=1 compile really runs and cannot pass on a
# stale object.
kmod-w1: $(KMOD_SRCS)
	$(kmod_need_kdir)
	@rm -rf $(KMOD_OUT)/w1 && mkdir -p $(KMOD_OUT)/w1/kmod
	@cp Kbuild $(KMOD_OUT)/w1/ && cp kmod/Kbuild kmod/*.c kmod/*.h $(KMOD_OUT)/w1/kmod/
	@$(MAKE) -s -C $(KDIR) M=$(CURDIR)/$(KMOD_OUT)/w1 W=1 modules \
		>$(KMOD_OUT)/w1.log 2>&1; status=$$?; cat $(KMOD_OUT)/w1.log; \
	if [ $$status -ne 0 ]; then echo "kmod: W=1 build failed" >&2; exit 1; fi; \
	if grep -qi 'warning:' $(KMOD_OUT)/w1.log; then \
		echo "kmod: W=1 build has warnings" >&2; exit 1; fi; \
	test -f $(KMOD_OUT)/w1/kmod/tallymeter.ko && echo "kmod: W=1 build clean"

$(KMOD_OUT)/checkpatch/scripts/checkpatch.pl: $(KMOD_SRC_TAR)
	@mkdir -p $(KMOD_OUT)/checkpatch
	tar -xJf $< -C $(KMOD_OUT)/checkpatch --strip-components=1 \
		--wildcards '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch'
	@touch $@

KMOD_CHECKPATCH := $(or $(CHECKPATCH),$(if $(KMOD_SRC_TAR),$(KMOD_OUT)/checkpatch/scripts/checkpatch.pl))

kmod-checkpatch: $(KMOD_CHECKPATCH)
	@if [ -z "$(KMOD_CHECKPATCH)" ]; then \
		echo "kmod: checkpatch.pl not available (install linux-source or set CHECKPATCH): not run"; \
	else \
		perl $(KMOD_CHECKPATCH) --no-tree --strict --quiet -f $(KMOD_LINT) && \
		echo "kmod: checkpatch.pl --no-tree --strict clean"; \
	fi

$(KMOD_TESTBIN): tests/kmod/guest_test.c daemon/meter/gpu_kmod.c \
		 daemon/meter/gpu_kmod.h kmod/tallymeter_abi.h lib/errors.c lib/errors.h
	@mkdir -p $(@D)
	$(CC) -static -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. \
		-o $@ tests/kmod/guest_test.c daemon/meter/gpu_kmod.c lib/errors.c

check-kmod: kmod-w1 kmod-checkpatch kmod $(KMOD_TESTBIN)
	tests/kmod/run.sh $(KMOD_KVER) $(KMOD_KO) $(KMOD_TESTBIN)

CHECK_TARGETS += check-kmod
