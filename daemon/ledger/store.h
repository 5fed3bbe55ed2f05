/* The ledger's SQLite store: blocks, transactions, the state entries of
 * lib/chain/state.h (through the struct state_backend it provides), the
 * usage log and its Merkle nodes, state-root bucket hashes and metadata, in
 * one database file.
 *
 * Every write of a block happens between store_begin() and store_commit(),
 * in ONE SQLite transaction, so a crash leaves a block wholly there or wholly
 * absent.
 *
 * SQLite errors map to TALLY_E_DISKFULL (SQLITE_FULL, or an I/O error whose
 * cause is ENOSPC) or TALLY_E_STORE. */
#ifndef TALLY_LEDGER_STORE_H
#define TALLY_LEDGER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/chain/state.h"
#include "lib/crypto.h"
#include "lib/merkle.h"

#define STORE_SCHEMA_VERSION 4

struct store;

/* What a refusal of a damaged database tells the operator to do. */
#define STORE_WHAT_TO_DO ": restore the data directory from a backup (docs/OPERATING.md)"

/* Opens or creates the database at path (WAL, synchronous=FULL, foreign
 * keys). A file that is not a database, or is shorter than its header
 * says, is refused. A store of an older schema version (2 and up) is
 * upgraded to this one when upgrade is set, one version at a time, each
 * step wholly or not at all (store_upgraded_from says so), else refused
 * (TALLY_E_VERSION). why[WHY_MAX] gets a sentence on failure. */
int store_open(struct store **out, const char *path, bool upgrade, char *why);
/* The schema version store_open upgraded the store from, or 0. */
unsigned store_upgraded_from(const struct store *s);
/* The last failure was SQLite finding the file damaged (SQLITE_CORRUPT or
 * SQLITE_NOTADB). */
bool store_corrupt(struct store *s);
/* A second connection to the database at path, read-only, for the
 * mempool's admission (daemon/ledger/ledger.c): it reads one snapshot of
 * the committed state, from open or from the last store_snapshot_renew, in
 * a read transaction of its own, while the writer's connection commits the
 * next block (SQLite's WAL keeps both). Its state backend only reads. */
int store_open_reader(struct store **out, const char *path, char *why);
/* A reader's snapshot moves to the last committed state; release lets go
 * of it, so that a checkpoint can take the whole WAL. */
int store_snapshot_renew(struct store *s);
int store_snapshot_release(struct store *s);
/* The writer's checkpoint, once the WAL holds STORE_CHECKPOINT_FRAMES pages
 * (SQLite's automatic checkpoint is off, see store.c): call it with no
 * reader's snapshot held. A checkpoint a reader blocks is left for later. */
#define STORE_CHECKPOINT_FRAMES 1000
int store_checkpoint(struct store *s);
void store_close(struct store *s);
/* The SQLite error text of the last failure, for log lines. */
const char *store_errmsg(struct store *s);

int store_begin(struct store *s);
int store_commit(struct store *s);
void store_rollback(struct store *s);

/* Metadata: small named blobs (chain id, genesis hash, schema version...). */
int store_meta_get(struct store *s, const char *key, uint8_t **val, size_t *len);
int store_meta_put(struct store *s, const char *key, const void *val, size_t len);

/* The state entries, for state_open(). */
struct state_backend store_state_backend(struct store *s);

/* Leases matching the filter (NULL/0 fields match anything), in id order. */
struct lease_filter {
	const uint8_t *tenant;
	const uint8_t *provider;
	uint8_t state;               /* enum lease_state or 0 */
};
int store_lease_each(struct store *s, const struct lease_filter *f,
		     int (*fn)(void *ctx, const struct lease *l), void *ctx);

/* A committed transaction by hash, read from its block's body and checked
 * against the hash (TALLY_E_STORE when they differ): *bytes is malloc'd;
 * bytes (then len is not set), height and index may be NULL.
 * TALLY_E_NOTFOUND when no block holds it. */
int store_tx_get(struct store *s, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
		 uint64_t *height, uint32_t *index);

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
/* The block's row and a txs row for each of its transactions (its hash,
 * tx_hashes[i] for transaction i of the body, and where its bytes lie in
 * the body: store_tx_get reads them there). */
int store_block_put(struct store *s, const struct stored_block *b,
		    const uint8_t (*tx_hashes)[HASH_LEN]);
/* Fills b with malloc'd copies; free with stored_block_free(). */
int store_block_get(struct store *s, uint64_t height, struct stored_block *b);
/* Replaces the stored certificate of a block (with the one the next block
 * names: lib/chain/verify.h, chain_adopt_last_cert). */
int store_cert_put(struct store *s, uint64_t height, const uint8_t *cert, size_t len);
void stored_block_free(struct stored_block *b);
/* Highest stored height, 0 when there is no block. */
int store_tip_height(struct store *s, uint64_t *height);

#endif
