/* The state in memory: a struct state_backend for the auditor, `tally chain
 * verify` and the tests, so they run the same state transition as the node
 * (lib/chain/state.h) without SQLite.
 *
 * Entries sit in their state-root buckets (65536 sorted arrays), so a
 * lookup is one SHA-256 (none for a key state_bucket_of remembers) and a
 * binary search, and a table keyed by keys an attacker chooses cannot be
 * flooded without grinding SHA-256. The keys of
 * each type are also kept in a balanced tree for scans in key order. The
 * usage log is an in-memory Merkle store, so inclusion proofs can be
 * computed from it. */
#ifndef TALLY_CHAIN_MEMSTATE_H
#define TALLY_CHAIN_MEMSTATE_H

#include <stdint.h>

#include "lib/chain/state.h"
#include "lib/merkle.h"

struct memstate;

struct memstate *memstate_new(void);
/* A state in memory on top of another: reads fall through to below where
 * this one holds no entry, writes stay here, scans merge both in key order.
 * The node's mempool applies pending transactions to one over the
 * committed state, so admission runs the chain's own rules. Its usage log
 * only counts (it has no root: usage_root is TALLY_E_STATE). below must
 * outlive it and not change while it is used. */
struct memstate *memstate_new_overlay(const struct state_backend *below);
void memstate_free(struct memstate *m);
/* The backend to hand to state_open. */
struct state_backend memstate_backend(struct memstate *m);
/* Every entry this state holds itself (in an overlay: what was written to
 * it), deletions included (an empty value), in ascending key order: fn's
 * non-zero return stops it and is returned; TALLY_E_NOMEM. fn may not
 * write to m. A trial's writes reach the committed state this way
 * (lib/chain/trial.h). */
int memstate_each_own(struct memstate *m, state_entry_fn fn, void *fctx);
/* The usage log's Merkle store (for inclusion proofs). */
struct merkle_store *memstate_usage(struct memstate *m);

#endif
