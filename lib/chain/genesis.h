/* Genesis: the chain id, the first validator set, the funded accounts and
 * the chain's staking parameters, read from a JSON file:
 *
 *   { "chain_id": "tally-dev",
 *     "genesis_time_ns": 1700000000000000000,
 *     "params": { "unbonding_blocks": 100, "slash_ppm": 50000, "jail_blocks": 50,
 *                 "min_self_stake": 1000, "max_validators": 100,
 *                 "liveness_window": 0 },
 *     "validators": [ { "pubkey": "<64 hex>", "stake": 1000000, "name": "node0",
 *                       "api": "http://127.0.0.1:7654" } ],
 *     "accounts":   [ { "pubkey": "<64 hex>", "balance": 1000000000 } ] }
 *
 * A file without "params" is a version-1 genesis: it keeps its version-1
 * hash and runs with GENESIS_V1_PARAMS (no unbonding delay, no slashing or
 * jailing, no liveness rule), the rules chains began with before.
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

/* The chain's staking rules (docs/FORMATS.md section 7). Heights are block
 * counts; slash_ppm is parts per million. */
struct chain_params {
	uint64_t unbonding_blocks;   /* UNSTAKE at h pays back at the end of block h + this */
	uint32_t slash_ppm;          /* share of bonded and unbonding stake evidence burns */
	uint64_t jail_blocks;        /* a validator jailed at h may UNJAIL from h + this */
	uint64_t min_self_stake;     /* least stake that makes a validator candidate (>= 1) */
	uint32_t max_validators;     /* set size limit, 1..VALIDATORS_MAX */
	uint64_t liveness_window;    /* consecutive missed commits that jail (without
				      * slashing); 0: off */
};

#define PARAMS_PPM 1000000u
/* The largest liveness window: a million blocks (about 11 days at one block
 * a second); a longer one would never jail anyone that matters. */
#define PARAMS_LIVENESS_MAX 1000000u
/* Written by `tally node init`. */
#define GENESIS_DEFAULT_PARAMS ((struct chain_params){ .unbonding_blocks = 100,	\
	.slash_ppm = 50000, .jail_blocks = 50, .min_self_stake = 1000,			\
	.max_validators = 100, .liveness_window = 0 })
/* What a version-1 genesis (no "params") runs with. */
#define GENESIS_V1_PARAMS ((struct chain_params){ .unbonding_blocks = 0,		\
	.slash_ppm = 0, .jail_blocks = 0, .min_self_stake = 1,				\
	.max_validators = VALIDATORS_MAX, .liveness_window = 0 })

/* 0, or TALLY_E_RANGE with why[256]: slash_ppm <= PARAMS_PPM, min_self_stake
 * >= 1, max_validators 1..VALIDATORS_MAX, liveness_window 0..
 * PARAMS_LIVENESS_MAX, every height count below 2^62. */
int chain_params_check(const struct chain_params *p, char *why);
/* u64 unbonding_blocks | u32 slash_ppm | u64 jail_blocks | u64 min_self_stake |
 * u32 max_validators | u64 liveness_window   (40 bytes) */
#define CHAIN_PARAMS_LEN 40
void chain_params_encode(struct enc *e, const struct chain_params *p);
/* Strict, and chain_params_check (TALLY_E_RANGE). */
int chain_params_decode(struct chain_params *p, const uint8_t *b, size_t n);

struct genesis {
	uint8_t version;                                /* 1: no params; 2 */
	struct chain_params params;
	char chain_id[CHAIN_ID_MAX + 1];
	uint64_t genesis_time_ns;
	struct validator_set validators;                /* sorted by pubkey */
	struct genesis_validator_info info[VALIDATORS_MAX]; /* parallel to validators.v */
	size_t naccounts;
	struct genesis_account *accounts;               /* sorted by pubkey, unique */
};

/* Strict: unknown keys, duplicates, zero stake, bad hex, parameters out of
 * range are errors (why[256]). */
int genesis_parse(struct genesis *g, const char *json, char *why);
int genesis_load(struct genesis *g, const char *path, char *why);
char *genesis_to_json(const struct genesis *g);   /* malloc'd */
/* The canonical encoding that genesis_hash hashes (names and API addresses
 * are not part of it):
 *   u8 version (2) | str chain_id | u64 genesis_time_ns | params (40 bytes) |
 *   u32 nval | nval x (fixed32 pubkey | u64 stake) |
 *   u32 nacc | nacc x (fixed32 pubkey | u64 balance)
 * and for a version-1 genesis the same without params, version byte 1. */
void genesis_encode(struct enc *e, const struct genesis *g);
void genesis_hash(const struct genesis *g, uint8_t out[HASH_LEN]);
void genesis_free(struct genesis *g);

#endif
