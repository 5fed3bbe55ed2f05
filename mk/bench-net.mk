# Benchmark of issue 14, printing ratios against baselines measured in the
# same run:
#
#   make bench-net     four validators (real tallyd --no-vms on loopback)
#                      against one: commit latency p50/p99 and blocks/s with
#                      an empty mempool and under load; transfers and USAGE
#                      records committed per second against raw Ed25519
#                      verification

NET_BENCH := $(BUILD)/bench/net_bench

$(NET_BENCH): $(call obj,bench/net_bench.c bench/bench_util.c) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: bench-net
bench-net: $(NET_BENCH) bin/tally bin/tallyd
	$(NET_BENCH) $(CURDIR)/bin/tally $(CURDIR)/bin/tallyd

BENCH_TARGETS += bench-net
