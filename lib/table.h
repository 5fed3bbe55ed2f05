/* uthash, as tally's tables use it (the API's, the mempool's): keys are
 * hashed with the per-process keyed hash (lib/keyed_hash.h), because they
 * are bytes a client chooses (public keys, addresses, transaction ids), and
 * running out of memory is an error the caller
 * sees rather than uthash's exit(). Include this instead of <uthash.h>.
 *
 * With HASH_NONFATAL_OOM, a failed HASH_ADD leaves the element out of the
 * table and calls uthash_nonfatal_oom(elt): the caller sets elt->oom = 0
 * before the add, and frees elt and reports TALLY_E_NOMEM when it is 1. */
#ifndef TALLY_TABLE_H
#define TALLY_TABLE_H

#include "lib/keyed_hash.h"

#define HASH_FUNCTION(keyptr, keylen, hashv) \
	((hashv) = (unsigned)keyed_hash((keyptr), (size_t)(keylen)))
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(elt) ((elt)->oom = 1)

#include <uthash.h>

#endif
