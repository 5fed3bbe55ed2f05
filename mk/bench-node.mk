# Benchmarks of issue 6, each printing a ratio against a baseline measured in
# the same run:
#
#   make bench-node    USAGE records/s a real tallyd (--no-vms, loopback HTTP)
#                      accepts and commits, against raw Ed25519 verification
#   make bench-audit   lib/chain/audit.h's records/s over a lease of many records,
#                      against raw Ed25519 verification; the inclusion proof
#                      size at 10^6 records

NODE_BENCH  := $(BUILD)/bench/node_bench
AUDIT_BENCH := $(BUILD)/bench/audit_bench

$(NODE_BENCH): $(call obj,bench/node_bench.c bench/bench_util.c bench/bench_quiet.c) \
		$(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(AUDIT_BENCH): $(call obj,bench/audit_bench.c) $(call obj,bench/bench_util.c) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-node bench-audit
bench-node: $(NODE_BENCH) bin/tallyd
	$(NODE_BENCH) $(CURDIR)/bin/tallyd

bench-audit: $(AUDIT_BENCH)
	$(AUDIT_BENCH)

BENCH_TARGETS += bench-node bench-audit
