/* The ledger's SQLite store: blocks, transactions, state (accounts,
 * validators, leases), the usage log and its Merkle nodes, state-root bucket
 * hashes and metadata, in one database file.
 *
 * Every write of a block happens between store_begin() and store_commit(),
 * in ONE SQLite transaction, so a crash leaves a block wholly there or wholly
 * absent. Writes to state entries mark their state-root bucket dirty; the
 * state-root code (state.c) takes the dirty list at the end of a block.
 *
 * SQLite errors map to TALLY_E_DISKFULL (SQLITE_FULL, or an I/O error whose
 * cause is ENOSPC) or TALLY_E_STORE. */
#ifndef TALLY_LEDGER_STORE_H
#define TALLY_LEDGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/crypto.h"
#include "lib/merkle.h"

#define STORE_SCHEMA_VERSION 1
#define STATE_BUCKETS 65536

/* Key types of state entries (first byte of the state key). */
enum state_key_type {
	STATE_KEY_ACCOUNT = 1,
	STATE_KEY_VALIDATOR = 2,
	STATE_KEY_LEASE = 3,
};

struct account {
	uint64_t balance;
	uint64_t nonce;
};

struct validator_entry {
	uint64_t stake;
	bool jailed;
};

struct store;

/* Opens or creates the database at path (WAL, synchronous=FULL, foreign
 * keys). why[WHY_MAX] gets a sentence on failure. */
int store_open(struct store **out, const char *path, char *why);
void store_close(struct store *s);
/* The SQLite error text of the last failure, for log lines. */
const char *store_errmsg(struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Metadata: small named blobs (chain id, genesis hash, schema version...). */
int store_meta_get(struct store *s, const char *key, uint8_t **val, size_t *len);
int store_meta_put(struct store *s, const char *key, const void *val, size_t len);

/* Missing accounts read as zero balance and nonce with TALLY_E_NOTFOUND. */
int store_account_get(struct store *s, const uint8_t pub[PUBKEY_LEN], struct account *a);
int store_account_put(struct store *s, const uint8_t pub[PUBKEY_LEN], const struct account *a);
int store_validator_get(struct store *s, const uint8_t pub[PUBKEY_LEN], struct validator_entry *v);
int store_validator_put(struct store *s, const uint8_t pub[PUBKEY_LEN],
			const struct validator_entry *v);
/* Every validator in ascending pubkey order. */
int store_validator_each(struct store *s,
			 int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN],
				   const struct validator_entry *v), void *ctx);
int store_lease_get(struct store *s, const uint8_t id[LEASE_ID_LEN], struct lease *l);
int store_lease_put(struct store *s, const struct lease *l);

/* Leases matching the filter (NULL/0 fields match anything), in id order. */
struct lease_filter {
	const uint8_t *tenant;
	const uint8_t *provider;
	uint8_t state;               /* enum lease_state or 0 */
};
int store_lease_each(struct store *s, const struct lease_filter *f,
		     int (*fn)(void *ctx, const struct lease *l), void *ctx);

int store_tx_put(struct store *s, const uint8_t hash[HASH_LEN], uint64_t height, uint32_t index,
		 uint8_t kind, const uint8_t signer[PUBKEY_LEN], const uint8_t *bytes, size_t len);
/* *bytes is malloc'd. */
int store_tx_get(struct store *s, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
		 uint64_t *height, uint32_t *index);

int store_usage_put(struct store *s, uint64_t index, const uint8_t tx_hash[HASH_LEN],
		    const uint8_t lease_id[LEASE_ID_LEN], uint64_t seq);
/* A lease's usage records in seq order: log index and tx hash. */
int store_usage_each(struct store *s, const uint8_t lease_id[LEASE_ID_LEN],
		     int (*fn)(void *ctx, uint64_t index, uint64_t seq,
			       const uint8_t tx_hash[HASH_LEN]), void *ctx);
int store_usage_at(struct store *s, uint64_t index, uint8_t tx_hash[HASH_LEN],
		   uint8_t lease_id[LEASE_ID_LEN], uint64_t *seq);
/* The usage log's Merkle nodes, in the same database and transaction. */
struct merkle_store *store_merkle(struct store *s);

struct stored_block {
	uint64_t height;
	uint8_t id[HASH_LEN];
	uint8_t *header;  size_t header_len;
	uint8_t *body;    size_t body_len;
	uint8_t *cert;    size_t cert_len;
	uint8_t *next_vals; size_t next_vals_len;  /* NULL when unchanged */
};
int store_block_put(struct store *s, const struct stored_block *b);
/* Fills b with malloc'd copies; free with stored_block_free(). */
int store_block_get(struct store *s, uint64_t height, struct stored_block *b);
void stored_block_free(struct stored_block *b);
/* Highest stored height, 0 when there is no block. */
int store_tip_height(struct store *s, uint64_t *height);

/* State-root buckets. */
uint32_t state_bucket_of(uint8_t type, const uint8_t id[32]);
/* Computes a bucket's hash from the state tables (32 zero bytes if empty). */
int store_bucket_compute(struct store *s, uint32_t bucket, uint8_t out[HASH_LEN]);
/* Stores a bucket hash; an all-zero hash deletes the row. */
int store_bucket_put(struct store *s, uint32_t bucket, const uint8_t hash[HASH_LEN]);
int store_bucket_each(struct store *s,
		      int (*fn)(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN]),
		      void *ctx);
/* Buckets written since the last call (each once), in ascending order.
 * *out is malloc'd (may be NULL when n is 0). */
int store_take_dirty(struct store *s, uint32_t **out, size_t *n);
/* Forget dirty marks (after a rollback). */
void store_clear_dirty(struct store *s);

/* Encoded state values, as hashed into buckets. */
void account_value_encode(struct enc *e, const struct account *a);
void validator_value_encode(struct enc *e, const struct validator_entry *v);

#endif
