# tally — top-level build.
#
#   make              build bin/tallyd and bin/tally
#   make check        install missing packages, build, run every test
#   make check-unit   fast Check unit tests (SAN=1 for ASan+UBSan)
#   make bench        benchmarks (each prints a ratio against a same-run baseline)
#   make kmod         build kmod/tallymeter.ko against KDIR
#   make demo         lease a VM end to end on a devnet of four validators
#                     (GUEST=debian-12: with SSH)
#   make install      install binaries under PREFIX (default /usr/local)
#
# Each area adds its own rules in mk/<area>.mk, so the areas build independently.

CC       ?= cc
PKGS     := libvirt libxml-2.0 libbpf libssl libcrypto sqlite3 jansson libmicrohttpd libcurl \
            inih libevent_openssl libevent_pthreads
PREFIX   ?= /usr/local
SAN      ?= 0

ifeq ($(FUZZ),1)
# libFuzzer targets (mk/fuzz.mk): every object instrumented for coverage,
# ASan and UBSan; the fuzzer's main() is linked into the targets only.
CC       := clang
BUILD    := build/fuzz
SANFLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
            -fno-omit-frame-pointer
else ifeq ($(SAN),1)
BUILD    := build/san
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD    := build/out
SANFLAGS :=
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) check 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -I$(BUILD)/gen \
            $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
LDFLAGS  += $(SANFLAGS)
LDLIBS   := $(PKG_LIBS) -lm -lpthread

# The layers, each its own archive; an include may only point down
# (scripts/check-layers.sh, run by `make check`):
#   lib/        base: canonical codec, keys and signatures, errors, Merkle log
#   contracts/  the lease contract's pure rules and settlement     (uses base)
#   lib/chain/  transactions, blocks, genesis, chain verification, the state
#               transition, audit, chain file           (uses base, contracts)
#   daemon/ and cli/ on top, neither including the other.
BASE_SRCS      := $(wildcard lib/*.c)
CONTRACTS_SRCS := $(wildcard contracts/*.c)
CHAIN_SRCS     := $(wildcard lib/chain/*.c)
# libtallyd: the node's parts, without main().
DAEMON_SRCS := $(filter-out daemon/tallyd.c,$(wildcard daemon/*.c daemon/*/*.c))
CLI_SRCS    := $(wildcard cli/*.c)

# The tiny test guest (scripts/build-guest-image.sh); tests boot copies of it.
GUEST_DIR := build/guest

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBBASE      := $(BUILD)/libtally-base.a
LIBCONTRACTS := $(BUILD)/libtally-contracts.a
LIBCHAIN     := $(BUILD)/libtally-chain.a
# What daemon, CLI, tests and benchmarks link, in link order (top first).
LIBTALLY     := $(LIBCHAIN) $(LIBCONTRACTS) $(LIBBASE)
LIBTALLYD    := $(BUILD)/libtallyd.a

.PHONY: all check check-unit bench kmod demo install clean deps
all: bin/tallyd bin/tally

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c $< -o $@

$(LIBBASE): $(call obj,$(BASE_SRCS))
$(LIBCONTRACTS): $(call obj,$(CONTRACTS_SRCS))
$(LIBCHAIN): $(call obj,$(CHAIN_SRCS))
$(LIBTALLYD): $(call obj,$(DAEMON_SRCS))
$(LIBTALLY) $(LIBTALLYD):
	@mkdir -p $(@D)
	rm -f $@ && ar rcs $@ $^

bin/tallyd: $(call obj,daemon/tallyd.c) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bin/tally: $(call obj,$(CLI_SRCS)) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- unit tests -------------------------------------------------------------
# Every tests/unit/*.c defines one or more `Suite *<name>_suite(void)`; the
# runner is generated from them, so adding a test file needs no other edit.
UNIT_SRCS := $(filter-out tests/unit/runner.c,$(wildcard tests/unit/*.c))
# Fixtures shared by the unit tests and the test tools.
TEST_SUPPORT_SRCS := $(wildcard tests/support/*.c)
# The CLI's parts with no main() and no node: tested as units too.
UNIT_CLI_SRCS := cli/progress.c

$(BUILD)/gen/unit_suites.h: $(UNIT_SRCS)
	@mkdir -p $(@D)
	@grep -ho '^Suite \*[a-z0-9_]*_suite(void)' $(UNIT_SRCS) | sort -u | \
	  sed 's/^Suite \*\(.*\)(void)/X(\1)/' > $@.tmp && mv $@.tmp $@

$(call obj,tests/unit/runner.c): $(BUILD)/gen/unit_suites.h

$(BUILD)/tests/unit: $(call obj,tests/unit/runner.c $(UNIT_SRCS) $(TEST_SUPPORT_SRCS) $(UNIT_CLI_SRCS)) \
		$(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(CHECK_LIBS)

check-unit: $(BUILD)/tests/unit
	cd tests/unit && TALLY_SRCDIR=$(CURDIR) $(CURDIR)/$(BUILD)/tests/unit

# Areas append their test targets to CHECK_TARGETS and benchmarks to BENCH_TARGETS.
CHECK_TARGETS := check-lint
BENCH_TARGETS :=
include $(wildcard mk/*.mk)

deps:
	@scripts/install-deps.sh

# Fast checks of the tree itself: no pinned kernel versions, and every
# #include pointing down the layers (each lint shown to fail first).
.PHONY: check-lint
check-lint:
	@scripts/lint-pins.sh --self-test
	@scripts/lint-pins.sh
	@scripts/check-layers.sh --self-test
	@scripts/check-layers.sh

# `make check` works on a fresh Debian 12 machine: packages first, then a
# recursive make so pkg-config sees them.
check: deps
	@$(MAKE) --no-print-directory all check-unit
	@scripts/run-checks.sh $(CHECK_TARGETS)

bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_TARGETS)

demo: deps
	@GUEST=$(GUEST) scripts/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 bin/tallyd bin/tally $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build bin

-include $(shell find build -name '*.d' 2>/dev/null)
