# Merkle log benchmark: append, proof generation and verification rates as
# ratios against raw SHA-256 measured in the same run.

MERKLE_BENCH := $(BUILD)/bench/merkle_bench

$(MERKLE_BENCH): $(call obj,bench/merkle_bench.c) $(call obj,bench/bench_util.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-merkle
bench-merkle: $(MERKLE_BENCH)
	$(MERKLE_BENCH)

BENCH_TARGETS += bench-merkle
