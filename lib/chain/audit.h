/* The lease auditor: what `tally audit` runs, with no network or files.
 *
 * Given a starting point (genesis or a pinned checkpoint), the blocks after
 * it in height order with their commit certificates (and the next validator
 * set wherever it changes), a lease id and what a node claims was settled for
 * that lease, the auditor
 *
 *   1. verifies every header and commit certificate (chain_verify_block);
 *   2. finds the lease's transactions (LEASE_OPEN, LEASE_START, USAGE,
 *      LEASE_CLOSE) and checks every signature: the tenant's on the open,
 *      the provider's on the start and on each usage record;
 *   3. checks the per-lease hash chain of usage records: seq 0, 1, 2, ...,
 *      each prev_hash the hash of the record before, each start where the
 *      last one ended (a gap, a reorder or a duplicate is named);
 *   4. checks the inclusion proof of each record in the usage log against
 *      the latest verified header: proofs come from a callback (a node's
 *      /v1/proofs/inclusion) or, without one, are computed from the usage
 *      transactions of the blocks given;
 *   5. replays the lease through contracts/ (lease_open, lease_start at the
 *      block time, lease_apply_usage, lease_close) and compares the
 *      recomputed lease (charged, SLA credits, escrow, totals, carries,
 *      state) with the claimed settlement;
 *   6. when the claim comes with a state proof (auditor_set_claim: an
 *      export file's, or a node's /v1/leases/{id}/proof), checks that the
 *      claimed lease state is what the chain committed: the proof leads to
 *      the state root of the block it names, once that block verifies, and
 *      the recomputed lease after that block is the claim, byte for byte.
 *
 * Every failure becomes one sentence in the result that names the height
 * or the record (seq) it concerns; the audit is verified when there is none.
 *
 * Streaming use: auditor_new, auditor_add_block for each block in order,
 * auditor_finish. audit_run does the same over arrays. */
#ifndef TALLY_AUDIT_H
#define TALLY_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/chain/verify.h"
#include "lib/chain/genesis.h"
#include "lib/chain/state_proof.h"
#include "lib/merkle.h"

#define AUDIT_ERRORS_MAX 200     /* further errors are counted, not kept */
#define AUDIT_MSG_MAX 384

struct audit_error {
	int code;                  /* enum tally_err */
	uint64_t height;           /* 0 when the error is not about one block */
	bool has_seq;
	uint64_t seq;              /* the usage record concerned, when has_seq */
	char msg[AUDIT_MSG_MAX];   /* a sentence naming the height or the record */
};

/* One usage record of the lease, as found in the chain. */
struct audit_record {
	uint64_t height;           /* block that committed it */
	uint64_t time_ns;          /* that block's time */
	uint64_t index;            /* position in the usage log */
	uint8_t hash[HASH_LEN];    /* SHA-256 of the USAGE transaction */
	uint8_t leaf_hash[HASH_LEN];    /* its usage-log leaf: SHA-256(0x00 || tx) */
	struct usage_record rec;
	struct usage_charge charge;     /* recomputed with contracts/ */
	uint64_t paid;             /* what the escrow paid the provider */
	bool signature_ok;
	bool proven;               /* inclusion proof verified */
};

struct audit_result {
	bool verified;             /* nothing failed */
	uint8_t genesis_hash[HASH_LEN];   /* the chain audited: signatures are bound to it */
	bool replayed_state;       /* from genesis: every transaction and state root replayed */
	uint64_t verified_height;  /* last block whose header and certificate verified */
	uint8_t verified_block_id[HASH_LEN];
	uint64_t blocks_seen;
	uint64_t usage_size;       /* usage log of the last verified header */
	uint8_t usage_root[HASH_LEN];

	bool lease_found;          /* its LEASE_OPEN was among the blocks */
	bool replayed;             /* every lease transaction replayed cleanly */
	struct lease lease;        /* the recomputed lease */
	uint64_t refund;           /* escrow returned to the tenant at close */
	uint64_t mem_mib_s;        /* memory billed, MiB x seconds (floor) */
	bool compared;             /* a claimed settlement was compared */

	size_t nrecords;
	struct audit_record *records;   /* in chain order */
	size_t nerrors;
	size_t errors_dropped;     /* beyond AUDIT_ERRORS_MAX */
	struct audit_error *errors;
};

/* Fetches PATH(index, D[size]) of the usage log into proof; *n its length.
 * Returns 0 or a tally_err with why[WHY_MAX] filled. */
typedef int (*audit_proof_fn)(void *ctx, uint64_t index, uint64_t size,
			      uint8_t proof[][HASH_LEN], size_t *n, char *why);

struct auditor;

/* Start from genesis (cp == NULL) or from the checkpoint cp whose header
 * must have the id pinned. settled may be NULL (nothing to compare); it is
 * copied. Returns 0, or an error with why[WHY_MAX] when the starting point
 * itself does not verify. */
int auditor_new(struct auditor **out, const struct genesis *g,
		const struct chain_checkpoint *cp, const uint8_t pinned[HASH_LEN],
		const uint8_t lease_id[LEASE_ID_LEN], const struct lease *settled, char *why);
/* The claim is the lease state that proof holds for the lease at block
 * height, replacing any settled given to auditor_new. proof is borrowed:
 * it must outlive the auditor. Returns 0, or the proof's error when it does
 * not hold the lease (why[WHY_MAX]). Call before the first block. */
int auditor_set_claim(struct auditor *a, uint64_t height, const struct state_proof *proof,
		      char *why);
/* The next block. Failures are recorded in the result, not returned: only
 * running out of memory is (TALLY_E_NOMEM). */
int auditor_add_block(struct auditor *a, const struct block *b, const struct commit_cert *cert,
		      const struct validator_set *next_vals);
/* Proves inclusion (with proof_fn when not NULL), compares the settlement
 * and fills out (free with audit_result_free). Returns 0 or TALLY_E_NOMEM;
 * out->verified tells the outcome. */
int auditor_finish(struct auditor *a, audit_proof_fn proof_fn, void *proof_ctx,
		   struct audit_result *out);
void auditor_free(struct auditor *a);
void audit_result_free(struct audit_result *r);

/* The whole audit over arrays. */
struct audit_block {
	const struct block *block;
	const struct commit_cert *cert;
	const struct validator_set *next_vals;   /* NULL when unchanged */
};

struct audit_input {
	const struct genesis *genesis;
	const struct chain_checkpoint *checkpoint;  /* NULL: from genesis */
	const uint8_t *pinned_id;                   /* with checkpoint */
	const struct audit_block *blocks;
	size_t nblocks;
	uint8_t lease_id[LEASE_ID_LEN];
	const struct lease *settled;                /* NULL: nothing to compare */
	/* Optional: the claim as a state proof at a height (auditor_set_claim);
	 * settled is then ignored. */
	const struct state_proof *settled_proof;
	uint64_t settled_height;
	audit_proof_fn proof_fn;                    /* NULL: computed from blocks */
	void *proof_ctx;
};

/* Returns 0 with out filled (out->verified tells), or an error with
 * why[WHY_MAX] when the audit could not run at all. */
int audit_run(const struct audit_input *in, struct audit_result *out, char *why);

#endif
