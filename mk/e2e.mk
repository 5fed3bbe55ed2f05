# End-to-end tests: real tallyd, tally, libvirtd + QEMU guests, eBPF meters.
.PHONY: check-e2e
CHECK_TARGETS += check-e2e

$(BUILD)/tests/forge: $(call obj,tests/e2e/forge.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check-e2e: bin/tallyd bin/tally $(BUILD)/tests/forge
	@scripts/build-guest-image.sh build/guest
	@TALLY_FORGE=$(CURDIR)/$(BUILD)/tests/forge TALLY_TAMPER=$(CURDIR)/$(BUILD)/tests/tamper \
		TALLY_HOSTILE=$(CURDIR)/$(BUILD)/tests/hostile \
		tests/e2e/run.sh

$(BUILD)/tests/tamper: $(call obj,tests/e2e/tamper.c tests/support/fileclaim.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check-e2e: $(BUILD)/tests/tamper

$(BUILD)/tests/hostile: $(call obj,tests/e2e/hostile.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

check-e2e: $(BUILD)/tests/hostile
