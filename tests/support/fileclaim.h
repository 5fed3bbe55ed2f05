/* Test tools' way of lying in an export file: a lease's claimed state
 * rewritten inside its state proof, which then no longer leads to the state
 * root of the block it names. `tally audit --chain` and `tally chain verify`
 * must refuse such a file (tests/rules/, tests/e2e/test_tamper.sh). */
#ifndef TALLY_TEST_FILECLAIM_H
#define TALLY_TEST_FILECLAIM_H

#include "lib/chain/chainfile.h"

/* Moves one unit of the lease's charge back to the tenant (to its escrow
 * while the lease is open, to the refund once it closed), so the money still
 * adds up and the file decodes. 0, or -1 (with a message) when the lease has
 * nothing charged or its proof does not hold it. */
int fileclaim_undercharge(struct chainfile_lease *cl);

#endif
