/* Reading the chain from a node for `tally audit`, `tally chain export` and
 * `tally chain verify --node`: genesis, blocks with their certificates, the
 * validator set wherever it changes, checkpoints and inclusion proofs
 * (GET /v1/genesis, /v1/blocks, /v1/validators, /v1/proofs/inclusion) and
 * lease state proofs (GET /v1/leases/{id}/proof). */
#ifndef TALLY_CLI_CHAINSRC_H
#define TALLY_CLI_CHAINSRC_H

#include <stdint.h>

#include "cli/client.h"
#include "lib/chain/block.h"
#include "lib/chain/verify.h"
#include "lib/chain/genesis.h"
#include "lib/chain/state_proof.h"

/* Called for each block in height order; returns 0 to go on. */
typedef int (*block_fn)(void *ctx, const struct block *b, const struct commit_cert *cert,
			const struct validator_set *next_vals);

/* Every function returns an exit code and prints its own message. */
int node_genesis(struct client *c, char **json, struct genesis *g);
int node_tip(struct client *c, uint64_t *height);
int node_blocks(struct client *c, uint64_t from, uint64_t to, block_fn fn, void *ctx);
/* The checkpoint at height, its header pinned to block_id. */
int node_checkpoint(struct client *c, uint64_t height, struct chain_checkpoint *cp);
/* An audit_proof_fn over GET /v1/proofs/inclusion (ctx is the client). */
int node_inclusion_proof(void *ctx, uint64_t index, uint64_t size,
			 uint8_t proof[][HASH_LEN], size_t *n, char *why);
/* The lease's state proof and the height whose state root it leads to
 * (free with state_proof_free); it is checked by whoever uses it. */
int node_lease_proof(struct client *c, const uint8_t id[LEASE_ID_LEN], uint64_t *height,
		     struct state_proof *p);
/* "HEIGHT:BLOCKID" */
int parse_checkpoint(const char *arg, uint64_t *height, uint8_t id[HASH_LEN]);

#endif
