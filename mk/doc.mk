# What tally says about itself besides --help, made from the programs' own
# tables by man/gen.c, so that none of it can drift from what they parse:
#
#   make doc          build/out/doc/: tally.1, tallyd.8, tallyd.conf.5 (man
#                     pages), tally.bash (bash completion), tallyd.conf (the
#                     commented file the package installs)
#   make check-docs   the pages render with man -l and list every command,
#                     option and config key; the completion offers every
#                     option; docs/OPERATING.md holds the generated key table
#   make docs-md      rewrite that table in docs/OPERATING.md

DOC_GEN := $(BUILD)/tools/gen-doc
DOC_DIR := $(BUILD)/doc
DOC_OUT := $(addprefix $(DOC_DIR)/,tally.1 tallyd.8 tallyd.conf.5 tallyd.conf tally.bash)

$(DOC_GEN): $(call obj,man/gen.c man/roff.c $(filter-out cli/main.c,$(CLI_SRCS)) \
		daemon/config.c daemon/cmdline.c) $(LIBTALLY)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(DOC_DIR)/%: $(DOC_GEN) docs/OPERATING.md docs/CLI.md
	@mkdir -p $(@D)
	$(DOC_GEN) $* > $@.tmp && mv $@.tmp $@

.PHONY: doc check-docs docs-md install-doc
all: doc
doc: $(DOC_OUT)

check-docs: doc bin/tally bin/tallyd
	@tests/doc/check.sh $(DOC_DIR) bin

# The table between the markers in docs/OPERATING.md, from config_keys[].
docs-md: $(DOC_GEN)
	@$(DOC_GEN) config-md > $(BUILD)/config-table.md
	@awk -v table=$(BUILD)/config-table.md ' \
		/^<!-- generated from daemon\/config.c/ { print; while ((getline l < table) > 0) print l; skip = 1; next } \
		/^<!-- end/ { skip = 0 } !skip' docs/OPERATING.md > docs/OPERATING.md.tmp && \
		mv docs/OPERATING.md.tmp docs/OPERATING.md

install: install-doc
install-doc: doc
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 0644 $(DOC_DIR)/tally.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 $(DOC_DIR)/tallyd.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 $(DOC_DIR)/tallyd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(DOC_DIR)/tally.bash \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/tally

CHECK_TARGETS += check-docs
