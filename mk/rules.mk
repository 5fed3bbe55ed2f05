# One certified chain file per rule the validators enforce, each breaking
# that rule once, plus a control (tests/rules/): the auditor and chain
# verification must refuse each one and name the height and the rule.
#
#   make check-rules

RULEBREAK := $(BUILD)/tests/rulebreak

$(RULEBREAK): $(call obj,tests/rules/rulebreak.c tests/support/chainbuild.c \
		tests/support/fileclaim.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

.PHONY: check-rules
check-rules: $(RULEBREAK) bin/tally
	@tests/rules/run.sh $(RULEBREAK) bin/tally

CHECK_TARGETS += check-rules
