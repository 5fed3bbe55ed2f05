/* The paths a chain rule must agree on, for chains of chainbuild.h: a node
 * applying the blocks (ledger_apply_block) and the auditor replaying them
 * (audit_run). A node's admission is ledger_submit itself. For unit tests:
 * links the ledger and the auditor. */
#ifndef TALLY_TEST_CBPATHS_H
#define TALLY_TEST_CBPATHS_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/ledger/ledger.h"
#include "tests/support/chainbuild.h"

/* The blocks of cb, first..last (0-based), into the ledger: 0 or the first
 * refusal, with why. */
int cb_apply_blocks(struct ledger *l, const struct chainbuild *cb, size_t first, size_t last,
		    char *why);
/* The first error the auditor names at height h for an audit of lease (0
 * when none; -2 when the audit fails without naming h). */
int cb_audit_code(const struct chainbuild *cb, const uint8_t lease[HASH_LEN], uint64_t h);
/* Removes a directory tree a test made. */
void cb_rm_tree(const char *dir);

#endif
