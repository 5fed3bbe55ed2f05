/* Genesis: the chain id, the first validator set and the funded accounts,
 * read from a JSON file:
 *
 *   { "chain_id": "tally-dev",
 *     "genesis_time_ns": 1700000000000000000,
 *     "validators": [ { "pubkey": "<64 hex>", "stake": 1000000, "name": "node0",
 *                       "api": "http://127.0.0.1:7654" } ],
 *     "accounts":   [ { "pubkey": "<64 hex>", "balance": 1000000000 } ] }
 *
 * The genesis hash (SHA-256 of its canonical encoding, docs/FORMATS.md) is the
 * prev_block_id of block 1, so a chain is bound to its genesis. */
#ifndef TALLY_GENESIS_H
#define TALLY_GENESIS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/codec.h"
#include "lib/crypto.h"

#define GENESIS_ACCOUNTS_MAX 100000

struct genesis_account {
	uint8_t pubkey[PUBKEY_LEN];
	uint64_t balance;
};

struct genesis_validator_info {
	char name[64];
	char api[256];                  /* the validator's HTTP API, for peers */
};

struct genesis {
	char chain_id[CHAIN_ID_MAX + 1];
	uint64_t genesis_time_ns;
	struct validator_set validators;                /* sorted by pubkey */
	struct genesis_validator_info info[VALIDATORS_MAX]; /* parallel to validators.v */
	size_t naccounts;
	struct genesis_account *accounts;               /* sorted by pubkey, unique */
};

/* Strict: unknown keys, duplicates, zero stake, bad hex are errors (why[256]). */
int genesis_parse(struct genesis *g, const char *json, char *why);
int genesis_load(struct genesis *g, const char *path, char *why);
char *genesis_to_json(const struct genesis *g);   /* malloc'd */
/* The canonical encoding that genesis_hash hashes (names and API addresses
 * are not part of it):
 *   u8 version (1) | str chain_id | u64 genesis_time_ns |
 *   u32 nval | nval x (fixed32 pubkey | u64 stake) |
 *   u32 nacc | nacc x (fixed32 pubkey | u64 balance)      */
void genesis_encode(struct enc *e, const struct genesis *g);
void genesis_hash(const struct genesis *g, uint8_t out[HASH_LEN]);
void genesis_free(struct genesis *g);

#endif
