# The peer network: real tallyd processes on 127.0.0.1 (tests/net/).
#
#   make check-net     devnets of several nodes: gossip, block sync, restarts,
#                      a late full node, hostile peers, leases across providers,
#                      a provider killed mid-lease, pauses and partitions,
#                      the provider registry, evidence kept through a full disk
.PHONY: check-net
CHECK_TARGETS += check-net

$(BUILD)/tests/peer_hostile: $(call obj,tests/net/peer_hostile.c) $(LIBTALLYD) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check-net: bin/tallyd bin/tally $(BUILD)/tests/peer_hostile $(BUILD)/tests/forge
	@scripts/build-guest-image.sh build/guest
	@TALLY_PEER_HOSTILE=$(CURDIR)/$(BUILD)/tests/peer_hostile \
		TALLY_FORGE=$(CURDIR)/$(BUILD)/tests/forge TALLY_SUITE=net \
		tests/e2e/run.sh $(sort $(wildcard $(CURDIR)/tests/net/test_*.sh))
