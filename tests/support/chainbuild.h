/* A small chain built in memory for tests and test tools: a genesis with one
 * validator (also the provider), a tenant and a stranger, signed
 * transactions, and blocks whose roots are what executing them gives
 * (lib/chain/exec.h), each certified by the validator's precommit.
 *
 * A block can also be sealed leniently: a transaction the state refuses
 * stays in the block (with no effect on the state it was built from), as a
 * faulty or hostile validator might certify it, so tests can check that
 * every verifier refuses such a chain. Every failure aborts the process
 * with a message: these are test fixtures, not code paths to recover. */
#ifndef TALLY_TEST_CHAINBUILD_H
#define TALLY_TEST_CHAINBUILD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/chain/evidence.h"
#include "lib/chain/genesis.h"
#include "lib/chain/memstate.h"
#include "lib/chain/state.h"
#include "lib/chain/tx.h"
#include "lib/merkle.h"

#define CB_SEC 1000000000ull

enum cb_who { CB_VALIDATOR = 0, CB_TENANT = 1, CB_STRANGER = 2, CB_NKEYS };

struct cb_pending {
	uint8_t *bytes;
	size_t len;
};

struct chainbuild {
	char chain_id[CHAIN_ID_MAX + 1];
	struct genesis genesis;
	uint8_t genesis_hash[HASH_LEN];
	char *genesis_json;
	struct tally_key key[CB_NKEYS];
	uint64_t nonce[CB_NKEYS];            /* next nonce of each key, as sent */
	struct memstate *mem;
	struct state state;                  /* after the last sealed block */
	uint64_t height, time_ns;
	uint8_t prev_id[HASH_LEN], last_cert_hash[HASH_LEN];
	struct validator_set vals;
	struct validator_set last_vals;      /* signed the last block (the liveness rule) */
	struct merkle_frontier usage;        /* the usage log the headers name */
	size_t nblocks, cap;
	struct block *blocks;                /* blocks[i] is height i + 1 */
	struct commit_cert *certs;
	struct validator_set **next_vals;    /* per block: the next set when it changes */
	struct cb_pending pending[64];
	size_t npending;
};

/* Genesis at genesis_time_ns: the validator with stake 100 and balance
 * 1e9, the tenant with 1e9, the stranger with 1e6; keys from fixed seeds.
 * The validator's PROVIDER announcement of cb_contract's image, prices and
 * interval is queued first for the first block. */
void cb_init(struct chainbuild *c, const char *chain_id, uint64_t genesis_time_ns);
/* The same with a version-2 genesis of parameters p. */
void cb_init_params(struct chainbuild *c, const char *chain_id, uint64_t genesis_time_ns,
		    const struct chain_params *p);
void cb_free(struct chainbuild *c);

/* Fills version, chain id, signer and (unless keep_nonce) the signer's next
 * nonce, signs with who's key and queues the transaction for the next
 * block. Returns its hash into hash (may be NULL). */
void cb_tx(struct chainbuild *c, struct tx *t, enum cb_who who, bool keep_nonce,
	   uint8_t hash[HASH_LEN]);
/* A contract of the tenant with the validator as provider: 1 vCPU, 512 MiB,
 * image tiny, an hour metered each second, deposit 1e6, expiring an hour
 * after time_ns. */
void cb_contract(const struct chainbuild *c, struct lease_contract *k, uint64_t time_ns);
/* A usage record of the lease following prev (its hash) from start_ns, of
 * span_ns, using cpu_ns. */
void cb_usage(struct tx *t, const uint8_t lease_id[LEASE_ID_LEN], uint64_t seq,
	      const uint8_t prev[HASH_LEN], uint64_t start_ns, uint64_t span_ns, uint64_t cpu_ns);

/* Two precommits of who's key at height for different blocks (0x11... and
 * 0x22...), both signed: an equivocation, for an EVIDENCE (evidence_make). */
void cb_double_precommit(const struct chainbuild *c, enum cb_who who, uint64_t height,
			 struct signed_vote *x, struct signed_vote *y);

/* Seals the queued transactions into the next block at time_ns. Strict: each
 * must apply (else abort). Lenient: those the state refuses stay in the block
 * without effect. tamper, when not NULL, changes the header before it is
 * certified. */
void cb_seal(struct chainbuild *c, uint64_t time_ns, bool lenient,
	     void (*tamper)(struct block_header *h, void *ctx), void *ctx);

struct chainfile;
/* The chain as a `tally chain export` file in f (chainfile_init'ed by the
 * caller): every block, and each lease's state at the last height with its
 * state proof. */
void cb_file(struct chainbuild *c, struct chainfile *f);
/* cb_file saved at path. */
void cb_write_file(struct chainbuild *c, const char *path);

#endif
