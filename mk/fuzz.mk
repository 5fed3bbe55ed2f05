# libFuzzer targets (tests/fuzz/, docs/RELIABILITY.md): one per decoder or
# parser that takes outside bytes. Each tests/fuzz/fuzz_NAME.c is a target
# with its seed corpus in tests/fuzz/corpus/NAME/; adding one needs no
# edit here.
#
#   make fuzz             each target for FUZZ_SECONDS (default 60), ASan+UBSan,
#                         growing a working corpus in build/fuzz/corpus/NAME
#   make check-fuzz       each target for FUZZ_CHECK_SECONDS (default 3) over
#                         the seeds (part of `make check`)
#   make fuzz-seeds       regenerate the seed corpus from the FORMATS.md vectors,
#                         contracts/examples/ and the fixed test chain
#   make reliability      make fuzz, the torn-file tests, and their summary
#                         (build/reliability.txt; docs/RELIABILITY.md)
#
# The targets build with clang in FUZZ=1 mode (Makefile: build/fuzz/, every
# object instrumented); these rules run a sub-make in that mode.

FUZZ_SECONDS       ?= 60
FUZZ_CHECK_SECONDS ?= 3
FUZZ_TARGETS := $(sort $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_util.c,\
			$(wildcard tests/fuzz/fuzz_*.c))))
FUZZ_SUPPORT := tests/fuzz/fuzz_util.c tests/support/chainbuild.c tests/support/fixchain.c

.PHONY: fuzz check-fuzz fuzz-build fuzz-seeds reliability

ifeq ($(FUZZ),1)
$(BUILD)/bin/%: $(call obj,tests/fuzz/fuzz_%.c $(FUZZ_SUPPORT)) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-build: $(addprefix $(BUILD)/bin/,$(FUZZ_TARGETS))
endif

# The seed generator is an ordinary program (no fuzzer runtime).
$(BUILD)/tests/fuzz-seeds: $(call obj,tests/fuzz/seeds.c tests/support/chainbuild.c \
		tests/support/fixchain.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-seeds: $(BUILD)/tests/fuzz-seeds
	$(BUILD)/tests/fuzz-seeds tests/fuzz/corpus

fuzz: deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	@scripts/fuzz.sh --long $(FUZZ_SECONDS) $(FUZZ_TARGETS)

check-fuzz:
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	@scripts/fuzz.sh --check $(FUZZ_CHECK_SECONDS) $(FUZZ_TARGETS)

CHECK_TARGETS += check-fuzz

# Fuzzing for FUZZ_SECONDS per target and the torn-file tests, then the
# summary that docs/RELIABILITY.md records.
reliability: deps
	@$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	@$(MAKE) --no-print-directory $(BUILD)/tests/unit
	@scripts/reliability.sh $(FUZZ_SECONDS) $(BUILD)/tests/unit $(FUZZ_TARGETS)
