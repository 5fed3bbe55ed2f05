# Ledger engine benchmark: signed USAGE transactions accepted and committed
# per second, as a ratio against raw Ed25519 verification in the same run.
# (The ledger's unit tests live in tests/unit/test_ledger.c and run under
# `make check-unit`.)

LEDGER_BENCH := $(BUILD)/bench/ledger_bench

$(LEDGER_BENCH): $(call obj,bench/ledger_bench.c) $(call obj,bench/bench_util.c) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-ledger
bench-ledger: $(LEDGER_BENCH)
	$(LEDGER_BENCH)

BENCH_TARGETS += bench-ledger
