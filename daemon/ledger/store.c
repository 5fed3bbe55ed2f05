/* The ledger's SQLite store (see store.h).
 *
 * Schema (version 1):
 *   meta(key TEXT PK, value BLOB)            chain_id, genesis_hash, schema_version,
 *                                            usage_size, priorities, ...
 *   blocks(height PK, id UNIQUE, header, body, cert, next_vals)
 *                                            body = block_encode() (header + txs);
 *                                            next_vals = the validator set for the
 *                                            next height when it changes, else NULL
 *   txs(hash PK, height -> blocks, idx, kind, signer, bytes)
 *   accounts(pubkey PK, balance, nonce, bucket)
 *   validators(pubkey PK, stake, jailed, bucket)
 *   leases(id PK, tenant, provider, state, bucket, value = lease_encode_to())
 *   usage(idx PK, tx_hash -> txs, lease_id, seq)   UNIQUE(lease_id, seq)
 *   usage_nodes(level, idx, hash) PK(level, idx)  perfect-subtree hashes
 *   buckets(bucket PK, hash)                 non-empty state-root buckets only
 *
 * u64 amounts are stored in SQLite's signed 64-bit INTEGER by bit pattern
 * (cast on the way in and out); no SQL ever compares or sums them.
 * Foreign keys are DEFERRABLE INITIALLY DEFERRED because a block's row is
 * written after its transactions (the certificate comes last); SQLite checks
 * them at COMMIT.
 *
 * Every statement is prepared once at open. */
#include "daemon/ledger/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/codec.h"
#include "lib/errors.h"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS blocks(height INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
	" header BLOB NOT NULL, body BLOB NOT NULL, cert BLOB NOT NULL, next_vals BLOB);"
	"CREATE TABLE IF NOT EXISTS txs(hash BLOB PRIMARY KEY, height INTEGER NOT NULL"
	" REFERENCES blocks(height) DEFERRABLE INITIALLY DEFERRED, idx INTEGER NOT NULL,"
	" kind INTEGER NOT NULL, signer BLOB NOT NULL, bytes BLOB NOT NULL) WITHOUT ROWID;"
	/* Foreign-key children need indexes: without them SQLite scans the
	 * child table whenever a parent row is inserted. */
	"CREATE INDEX IF NOT EXISTS txs_height ON txs(height);"
	"CREATE TABLE IF NOT EXISTS accounts(pubkey BLOB PRIMARY KEY, balance INTEGER NOT NULL,"
	" nonce INTEGER NOT NULL, bucket INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS accounts_bucket ON accounts(bucket, pubkey);"
	"CREATE TABLE IF NOT EXISTS validators(pubkey BLOB PRIMARY KEY, stake INTEGER NOT NULL,"
	" jailed INTEGER NOT NULL, bucket INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS validators_bucket ON validators(bucket, pubkey);"
	"CREATE TABLE IF NOT EXISTS leases(id BLOB PRIMARY KEY, tenant BLOB NOT NULL,"
	" provider BLOB NOT NULL, state INTEGER NOT NULL, bucket INTEGER NOT NULL,"
	" value BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS leases_bucket ON leases(bucket, id);"
	"CREATE INDEX IF NOT EXISTS leases_tenant ON leases(tenant, id);"
	"CREATE INDEX IF NOT EXISTS leases_provider ON leases(provider, id);"
	"CREATE TABLE IF NOT EXISTS usage(idx INTEGER PRIMARY KEY, tx_hash BLOB NOT NULL"
	" REFERENCES txs(hash) DEFERRABLE INITIALLY DEFERRED, lease_id BLOB NOT NULL,"
	" seq INTEGER NOT NULL, UNIQUE(lease_id, seq));"
	"CREATE INDEX IF NOT EXISTS usage_tx ON usage(tx_hash);"
	"CREATE TABLE IF NOT EXISTS usage_nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS buckets(bucket INTEGER PRIMARY KEY, hash BLOB NOT NULL);";

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_META_GET, ST_META_PUT,
	ST_ACC_GET, ST_ACC_PUT,
	ST_VAL_GET, ST_VAL_PUT, ST_VAL_ALL,
	ST_LEASE_GET, ST_LEASE_PUT, ST_LEASE_ALL,
	ST_TX_PUT, ST_TX_GET,
	ST_USAGE_PUT, ST_USAGE_OF, ST_USAGE_AT,
	ST_NODE_GET, ST_NODE_PUT,
	ST_BLOCK_PUT, ST_BLOCK_GET, ST_TIP,
	ST_BKT_ACC, ST_BKT_VAL, ST_BKT_LEASE, ST_BKT_PUT, ST_BKT_DEL, ST_BKT_ALL,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[ST_ACC_GET] = "SELECT balance, nonce FROM accounts WHERE pubkey = ?1",
	[ST_ACC_PUT] = "INSERT OR REPLACE INTO accounts(pubkey, balance, nonce, bucket)"
		       " VALUES (?1, ?2, ?3, ?4)",
	[ST_VAL_GET] = "SELECT stake, jailed FROM validators WHERE pubkey = ?1",
	[ST_VAL_PUT] = "INSERT OR REPLACE INTO validators(pubkey, stake, jailed, bucket)"
		       " VALUES (?1, ?2, ?3, ?4)",
	[ST_VAL_ALL] = "SELECT pubkey, stake, jailed FROM validators ORDER BY pubkey",
	[ST_LEASE_GET] = "SELECT value FROM leases WHERE id = ?1",
	[ST_LEASE_PUT] = "INSERT OR REPLACE INTO leases(id, tenant, provider, state, bucket, value)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_LEASE_ALL] = "SELECT value FROM leases WHERE (?1 IS NULL OR tenant = ?1)"
			 " AND (?2 IS NULL OR provider = ?2) AND (?3 = 0 OR state = ?3)"
			 " ORDER BY id",
	[ST_TX_PUT] = "INSERT INTO txs(hash, height, idx, kind, signer, bytes)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_TX_GET] = "SELECT bytes, height, idx FROM txs WHERE hash = ?1",
	[ST_USAGE_PUT] = "INSERT INTO usage(idx, tx_hash, lease_id, seq) VALUES (?1, ?2, ?3, ?4)",
	[ST_USAGE_OF] = "SELECT idx, seq, tx_hash FROM usage WHERE lease_id = ?1 ORDER BY seq",
	[ST_USAGE_AT] = "SELECT tx_hash, lease_id, seq FROM usage WHERE idx = ?1",
	[ST_NODE_GET] = "SELECT hash FROM usage_nodes WHERE level = ?1 AND idx = ?2",
	[ST_NODE_PUT] = "INSERT OR REPLACE INTO usage_nodes(level, idx, hash) VALUES (?1, ?2, ?3)",
	[ST_BLOCK_PUT] = "INSERT INTO blocks(height, id, header, body, cert, next_vals)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_BLOCK_GET] = "SELECT id, header, body, cert, next_vals FROM blocks WHERE height = ?1",
	[ST_TIP] = "SELECT COALESCE(MAX(height), 0) FROM blocks",
	[ST_BKT_ACC] = "SELECT pubkey, balance, nonce FROM accounts WHERE bucket = ?1 ORDER BY pubkey",
	[ST_BKT_VAL] = "SELECT pubkey, stake, jailed FROM validators WHERE bucket = ?1"
		       " ORDER BY pubkey",
	[ST_BKT_LEASE] = "SELECT id, value FROM leases WHERE bucket = ?1 ORDER BY id",
	[ST_BKT_PUT] = "INSERT OR REPLACE INTO buckets(bucket, hash) VALUES (?1, ?2)",
	[ST_BKT_DEL] = "DELETE FROM buckets WHERE bucket = ?1",
	[ST_BKT_ALL] = "SELECT bucket, hash FROM buckets ORDER BY bucket",
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct merkle_store merkle;
	uint8_t dirty_bits[STATE_BUCKETS / 8];
	uint32_t *dirty;
	size_t ndirty;
};

static int map_err(struct store *s, int rc)
{
	int prim = rc & 0xff;

	if (prim == SQLITE_FULL)
		return TALLY_E_DISKFULL;
	if (prim == SQLITE_IOERR && sqlite3_system_errno(s->db) == ENOSPC)
		return TALLY_E_DISKFULL;
	if (prim == SQLITE_NOMEM)
		return TALLY_E_NOMEM;
	return TALLY_E_STORE;
}

const char *store_errmsg(struct store *s)
{
	return sqlite3_errmsg(s->db);
}

/* Runs a statement that returns no rows, then resets it. */
static int run(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc == SQLITE_DONE)
		return 0;
	if ((rc & 0xff) == SQLITE_CONSTRAINT)
		return TALLY_E_EXISTS;
	return map_err(s, rc);
}

static void finish(sqlite3_stmt *st)
{
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
}

/* Steps a statement that returns at most one row: 0 with the row ready to
 * read, TALLY_E_NOTFOUND when there is none. The caller finishes st. */
static int step_row(struct store *s, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW)
		return 0;
	return rc == SQLITE_DONE ? TALLY_E_NOTFOUND : map_err(s, rc);
}

/* step_row() for a statement keyed by one blob, bound as parameter 1. */
static int row_by_blob(struct store *s, sqlite3_stmt *st, const void *key, int len)
{
	sqlite3_bind_blob(st, 1, key, len, SQLITE_STATIC);
	return step_row(s, st);
}

/* What a loop over sqlite3_step() returns once it stops on code rc. */
static int rows_end(struct store *s, int rc)
{
	return rc == SQLITE_DONE ? 0 : map_err(s, rc);
}

static int blob_copy(sqlite3_stmt *st, int col, void *out, size_t n)
{
	if (sqlite3_column_bytes(st, col) != (int)n)
		return TALLY_E_STORE;
	memcpy(out, sqlite3_column_blob(st, col), n);
	return 0;
}

static int blob_dup(sqlite3_stmt *st, int col, uint8_t **out, size_t *n)
{
	int len = sqlite3_column_bytes(st, col);
	const void *p = sqlite3_column_blob(st, col);

	*out = malloc(len ? len : 1);
	if (!*out)
		return TALLY_E_NOMEM;
	if (len)
		memcpy(*out, p, len);
	*n = len;
	return 0;
}

static int exec_sql(struct store *s, const char *sql)
{
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : map_err(s, rc);
}

static int merkle_get(void *ctx, unsigned level, uint64_t index, uint8_t out[HASH_LEN])
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_NODE_GET];
	int rc;

	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, (int64_t)index);
	rc = step_row(s, st);
	if (!rc)
		rc = blob_copy(st, 0, out, HASH_LEN);
	finish(st);
	return rc;
}

static int merkle_put(void *ctx, unsigned level, uint64_t index, const uint8_t hash[HASH_LEN])
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_NODE_PUT];

	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, (int64_t)index);
	sqlite3_bind_blob(st, 3, hash, HASH_LEN, SQLITE_STATIC);
	return run(s, st);
}

int store_open(struct store **out, const char *path, char *why)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return TALLY_E_NOMEM;
	s->dirty = malloc(sizeof(uint32_t) * STATE_BUCKETS);
	if (!s->dirty) {
		free(s);
		return TALLY_E_NOMEM;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(why, WHY_MAX, "cannot open %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		rc = TALLY_E_STORE;
		goto err;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);
	/* synchronous=FULL: in WAL mode the WAL is fsynced at every COMMIT, so a
	 * committed block survives power loss, not just a process crash. */
	rc = exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		      " PRAGMA foreign_keys=ON;");
	if (!rc)
		rc = exec_sql(s, schema_sql);
	if (rc) {
		snprintf(why, WHY_MAX, "cannot set up %s: %s", path, sqlite3_errmsg(s->db));
		goto err;
	}
	for (int i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &s->st[i], NULL) != SQLITE_OK) {
			snprintf(why, WHY_MAX, "cannot prepare a statement on %s: %s", path,
				 sqlite3_errmsg(s->db));
			rc = TALLY_E_STORE;
			goto err;
		}
	}
	s->merkle.ctx = s;
	s->merkle.get = merkle_get;
	s->merkle.put = merkle_put;
	*out = s;
	return 0;
err:
	store_close(s);
	return rc;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	for (int i = 0; i < ST__COUNT; i++)
		sqlite3_finalize(s->st[i]);
	sqlite3_close(s->db);
	free(s->dirty);
	free(s);
}

int store_begin(struct store *s)
{
	return run(s, s->st[ST_BEGIN]);
}

int store_commit(struct store *s)
{
	int rc = run(s, s->st[ST_COMMIT]);

	/* A failed COMMIT (disk full, a deferred foreign key) can leave the
	 * transaction open; roll it back so nothing is half-written. */
	if (rc)
		store_rollback(s);
	return rc;
}

void store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->db))
		run(s, s->st[ST_ROLLBACK]);
	store_clear_dirty(s);
}

int store_meta_get(struct store *s, const char *key, uint8_t **val, size_t *len)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	int rc;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = step_row(s, st);
	if (!rc)
		rc = blob_dup(st, 0, val, len);
	finish(st);
	return rc;
}

int store_meta_put(struct store *s, const char *key, const void *val, size_t len)
{
	sqlite3_stmt *st = s->st[ST_META_PUT];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, val, (int)len, SQLITE_STATIC);
	return run(s, st);
}

/* --- state entries and their buckets -------------------------------------- */

uint32_t state_bucket_of(uint8_t type, const uint8_t id[32])
{
	uint8_t key[33], h[HASH_LEN];

	key[0] = type;
	memcpy(key + 1, id, 32);
	sha256(key, sizeof(key), h);
	return (uint32_t)h[0] << 8 | h[1];
}

static void mark_dirty(struct store *s, uint32_t bucket)
{
	uint8_t bit = 1u << (bucket & 7);

	if (s->dirty_bits[bucket >> 3] & bit)
		return;
	s->dirty_bits[bucket >> 3] |= bit;
	s->dirty[s->ndirty++] = bucket;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int store_take_dirty(struct store *s, uint32_t **out, size_t *n)
{
	*out = NULL;
	*n = s->ndirty;
	if (!s->ndirty)
		return 0;
	*out = malloc(sizeof(uint32_t) * s->ndirty);
	if (!*out)
		return TALLY_E_NOMEM;
	memcpy(*out, s->dirty, sizeof(uint32_t) * s->ndirty);
	qsort(*out, *n, sizeof(uint32_t), cmp_u32);
	store_clear_dirty(s);
	return 0;
}

void store_clear_dirty(struct store *s)
{
	memset(s->dirty_bits, 0, sizeof(s->dirty_bits));
	s->ndirty = 0;
}

void account_value_encode(struct enc *e, const struct account *a)
{
	enc_u64(e, a->balance);
	enc_u64(e, a->nonce);
}

void validator_value_encode(struct enc *e, const struct validator_entry *v)
{
	enc_u64(e, v->stake);
	enc_bool(e, v->jailed);
}

/* Accounts and validators are both a pubkey with two integers (balance and
 * nonce; stake and jailed) and a bucket. Reads the two integers of pub with
 * statement id: 0, or TALLY_E_NOTFOUND with both zero. */
static int pubkey_pair_get(struct store *s, enum stmt_id id, const uint8_t pub[PUBKEY_LEN],
			   uint64_t *x, uint64_t *y)
{
	sqlite3_stmt *st = s->st[id];
	int rc = row_by_blob(s, st, pub, PUBKEY_LEN);

	*x = rc ? 0 : (uint64_t)sqlite3_column_int64(st, 0);
	*y = rc ? 0 : (uint64_t)sqlite3_column_int64(st, 1);
	finish(st);
	return rc;
}

/* Writes the two integers of pub, a key of type, and marks its bucket dirty. */
static int pubkey_pair_put(struct store *s, enum stmt_id id, uint8_t type,
			   const uint8_t pub[PUBKEY_LEN], uint64_t x, uint64_t y)
{
	sqlite3_stmt *st = s->st[id];
	uint32_t bucket = state_bucket_of(type, pub);

	sqlite3_bind_blob(st, 1, pub, PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)x);
	sqlite3_bind_int64(st, 3, (int64_t)y);
	sqlite3_bind_int(st, 4, (int)bucket);
	mark_dirty(s, bucket);
	return run(s, st);
}

int store_account_get(struct store *s, const uint8_t pub[PUBKEY_LEN], struct account *a)
{
	memset(a, 0, sizeof(*a));
	return pubkey_pair_get(s, ST_ACC_GET, pub, &a->balance, &a->nonce);
}

int store_account_put(struct store *s, const uint8_t pub[PUBKEY_LEN], const struct account *a)
{
	return pubkey_pair_put(s, ST_ACC_PUT, STATE_KEY_ACCOUNT, pub, a->balance, a->nonce);
}

int store_validator_get(struct store *s, const uint8_t pub[PUBKEY_LEN], struct validator_entry *v)
{
	uint64_t jailed;
	int rc;

	memset(v, 0, sizeof(*v));
	rc = pubkey_pair_get(s, ST_VAL_GET, pub, &v->stake, &jailed);
	v->jailed = jailed != 0;
	return rc;
}

int store_validator_put(struct store *s, const uint8_t pub[PUBKEY_LEN],
			const struct validator_entry *v)
{
	return pubkey_pair_put(s, ST_VAL_PUT, STATE_KEY_VALIDATOR, pub, v->stake, v->jailed);
}

int store_validator_each(struct store *s,
			 int (*fn)(void *ctx, const uint8_t pub[PUBKEY_LEN],
				   const struct validator_entry *v), void *ctx)
{
	sqlite3_stmt *st = s->st[ST_VAL_ALL];
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint8_t pub[PUBKEY_LEN];
		struct validator_entry v = {
			.stake = (uint64_t)sqlite3_column_int64(st, 1),
			.jailed = sqlite3_column_int(st, 2) != 0,
		};
		rc = blob_copy(st, 0, pub, PUBKEY_LEN);
		if (!rc)
			rc = fn(ctx, pub, &v);
		if (rc)
			goto out;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}

static int lease_from_row(sqlite3_stmt *st, int col, struct lease *l)
{
	return lease_decode(l, sqlite3_column_blob(st, col), sqlite3_column_bytes(st, col)) ?
	       TALLY_E_STORE : 0;
}

int store_lease_get(struct store *s, const uint8_t id[LEASE_ID_LEN], struct lease *l)
{
	sqlite3_stmt *st = s->st[ST_LEASE_GET];
	int rc;

	rc = row_by_blob(s, st, id, LEASE_ID_LEN);
	if (!rc)
		rc = lease_from_row(st, 0, l);
	finish(st);
	return rc;
}

int store_lease_put(struct store *s, const struct lease *l)
{
	sqlite3_stmt *st = s->st[ST_LEASE_PUT];
	uint32_t bucket = state_bucket_of(STATE_KEY_LEASE, l->id);
	struct enc e;
	int rc;

	enc_init(&e);
	lease_encode_to(&e, l);
	if ((rc = enc_error(&e)))
		goto out;
	sqlite3_bind_blob(st, 1, l->id, LEASE_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, l->contract.tenant, PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, l->contract.provider, PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 4, l->state);
	sqlite3_bind_int(st, 5, (int)bucket);
	sqlite3_bind_blob(st, 6, e.buf, (int)e.len, SQLITE_STATIC);
	mark_dirty(s, bucket);
	rc = run(s, st);
out:
	enc_free(&e);
	return rc;
}

int store_lease_each(struct store *s, const struct lease_filter *f,
		     int (*fn)(void *ctx, const struct lease *l), void *ctx)
{
	sqlite3_stmt *st = s->st[ST_LEASE_ALL];
	int rc;

	if (f && f->tenant)
		sqlite3_bind_blob(st, 1, f->tenant, PUBKEY_LEN, SQLITE_STATIC);
	if (f && f->provider)
		sqlite3_bind_blob(st, 2, f->provider, PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, f ? f->state : 0);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct lease l;

		rc = lease_from_row(st, 0, &l);
		if (!rc)
			rc = fn(ctx, &l);
		if (rc)
			goto out;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}

/* --- transactions and the usage log --------------------------------------- */

int store_tx_put(struct store *s, const uint8_t hash[HASH_LEN], uint64_t height, uint32_t index,
		 uint8_t kind, const uint8_t signer[PUBKEY_LEN], const uint8_t *bytes, size_t len)
{
	sqlite3_stmt *st = s->st[ST_TX_PUT];

	sqlite3_bind_blob(st, 1, hash, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)height);
	sqlite3_bind_int64(st, 3, index);
	sqlite3_bind_int(st, 4, kind);
	sqlite3_bind_blob(st, 5, signer, PUBKEY_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, bytes, (int)len, SQLITE_STATIC);
	return run(s, st);
}

int store_tx_get(struct store *s, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
		 uint64_t *height, uint32_t *index)
{
	sqlite3_stmt *st = s->st[ST_TX_GET];
	int rc;

	rc = row_by_blob(s, st, hash, HASH_LEN);
	if (!rc) {
		rc = blob_dup(st, 0, bytes, len);
		if (height)
			*height = (uint64_t)sqlite3_column_int64(st, 1);
		if (index)
			*index = (uint32_t)sqlite3_column_int64(st, 2);
	}
	finish(st);
	return rc;
}

int store_usage_put(struct store *s, uint64_t index, const uint8_t tx_hash[HASH_LEN],
		    const uint8_t lease_id[LEASE_ID_LEN], uint64_t seq)
{
	sqlite3_stmt *st = s->st[ST_USAGE_PUT];

	sqlite3_bind_int64(st, 1, (int64_t)index);
	sqlite3_bind_blob(st, 2, tx_hash, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, lease_id, LEASE_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)seq);
	return run(s, st);
}

int store_usage_each(struct store *s, const uint8_t lease_id[LEASE_ID_LEN],
		     int (*fn)(void *ctx, uint64_t index, uint64_t seq,
			       const uint8_t tx_hash[HASH_LEN]), void *ctx)
{
	sqlite3_stmt *st = s->st[ST_USAGE_OF];
	int rc;

	sqlite3_bind_blob(st, 1, lease_id, LEASE_ID_LEN, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint8_t h[HASH_LEN];

		rc = blob_copy(st, 2, h, HASH_LEN);
		if (!rc)
			rc = fn(ctx, (uint64_t)sqlite3_column_int64(st, 0),
				(uint64_t)sqlite3_column_int64(st, 1), h);
		if (rc)
			goto out;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}

int store_usage_at(struct store *s, uint64_t index, uint8_t tx_hash[HASH_LEN],
		   uint8_t lease_id[LEASE_ID_LEN], uint64_t *seq)
{
	sqlite3_stmt *st = s->st[ST_USAGE_AT];
	int rc;

	sqlite3_bind_int64(st, 1, (int64_t)index);
	rc = step_row(s, st);
	if (!rc) {
		rc = blob_copy(st, 0, tx_hash, HASH_LEN);
		if (!rc)
			rc = blob_copy(st, 1, lease_id, LEASE_ID_LEN);
		if (seq)
			*seq = (uint64_t)sqlite3_column_int64(st, 2);
	}
	finish(st);
	return rc;
}

struct merkle_store *store_merkle(struct store *s)
{
	return &s->merkle;
}

/* --- blocks ---------------------------------------------------------------- */

int store_block_put(struct store *s, const struct stored_block *b)
{
	sqlite3_stmt *st = s->st[ST_BLOCK_PUT];

	sqlite3_bind_int64(st, 1, (int64_t)b->height);
	sqlite3_bind_blob(st, 2, b->id, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, b->header, (int)b->header_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, b->body, (int)b->body_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, b->cert, (int)b->cert_len, SQLITE_STATIC);
	if (b->next_vals)
		sqlite3_bind_blob(st, 6, b->next_vals, (int)b->next_vals_len, SQLITE_STATIC);
	return run(s, st);
}

void stored_block_free(struct stored_block *b)
{
	free(b->header);
	free(b->body);
	free(b->cert);
	free(b->next_vals);
	memset(b, 0, sizeof(*b));
}

int store_block_get(struct store *s, uint64_t height, struct stored_block *b)
{
	sqlite3_stmt *st = s->st[ST_BLOCK_GET];
	int rc;

	memset(b, 0, sizeof(*b));
	sqlite3_bind_int64(st, 1, (int64_t)height);
	rc = step_row(s, st);
	if (rc)
		goto out;
	b->height = height;
	rc = blob_copy(st, 0, b->id, HASH_LEN);
	if (!rc)
		rc = blob_dup(st, 1, &b->header, &b->header_len);
	if (!rc)
		rc = blob_dup(st, 2, &b->body, &b->body_len);
	if (!rc)
		rc = blob_dup(st, 3, &b->cert, &b->cert_len);
	if (!rc && sqlite3_column_type(st, 4) != SQLITE_NULL)
		rc = blob_dup(st, 4, &b->next_vals, &b->next_vals_len);
	if (rc)
		stored_block_free(b);
out:
	finish(st);
	return rc;
}

int store_tip_height(struct store *s, uint64_t *height)
{
	sqlite3_stmt *st = s->st[ST_TIP];
	int rc = sqlite3_step(st);

	if (rc == SQLITE_ROW) {
		*height = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = map_err(s, rc);
	}
	finish(st);
	return rc;
}

/* --- state-root buckets ---------------------------------------------------- */

/* One entry of a bucket: u32 len key | key | u32 len value | value. */
static void bucket_entry(struct sha256_stream *h, uint8_t type, const void *id,
			 const struct enc *value)
{
	struct enc e;
	size_t len;
	uint8_t *buf;

	enc_init(&e);
	enc_u32(&e, 33);
	enc_u8(&e, type);
	enc_fixed(&e, id, 32);
	enc_u32(&e, (uint32_t)value->len);
	enc_fixed(&e, value->buf, value->len);
	if (enc_error(&e))
		abort();   /* a wrong state root is worse than stopping */
	buf = enc_take(&e, &len);
	sha256_add(h, buf, len);
	free(buf);
}

static int bucket_rows(struct store *s, enum stmt_id id, uint32_t bucket,
		       struct sha256_stream *h, bool *any)
{
	sqlite3_stmt *st = s->st[id];
	int rc;

	sqlite3_bind_int(st, 1, (int)bucket);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct enc v;

		if (sqlite3_column_bytes(st, 0) != 32) {
			rc = TALLY_E_STORE;
			goto out;
		}
		enc_init(&v);
		if (id == ST_BKT_ACC) {
			struct account a = { (uint64_t)sqlite3_column_int64(st, 1),
					     (uint64_t)sqlite3_column_int64(st, 2) };
			account_value_encode(&v, &a);
			bucket_entry(h, STATE_KEY_ACCOUNT, sqlite3_column_blob(st, 0), &v);
		} else if (id == ST_BKT_VAL) {
			struct validator_entry ve = { (uint64_t)sqlite3_column_int64(st, 1),
						      sqlite3_column_int(st, 2) != 0 };
			validator_value_encode(&v, &ve);
			bucket_entry(h, STATE_KEY_VALIDATOR, sqlite3_column_blob(st, 0), &v);
		} else {
			enc_fixed(&v, sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
			bucket_entry(h, STATE_KEY_LEASE, sqlite3_column_blob(st, 0), &v);
		}
		rc = enc_error(&v);
		enc_free(&v);
		if (rc)
			goto out;
		*any = true;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}

int store_bucket_compute(struct store *s, uint32_t bucket, uint8_t out[HASH_LEN])
{
	struct sha256_stream *h = sha256_begin();
	const uint8_t tag = 0x02;
	bool any = false;
	int rc;

	sha256_add(h, &tag, 1);
	/* Key order = type byte first, so accounts, then validators, then
	 * leases, each in ascending id order (SQLite compares BLOBs with memcmp). */
	rc = bucket_rows(s, ST_BKT_ACC, bucket, h, &any);
	if (!rc)
		rc = bucket_rows(s, ST_BKT_VAL, bucket, h, &any);
	if (!rc)
		rc = bucket_rows(s, ST_BKT_LEASE, bucket, h, &any);
	sha256_end(h, out);
	if (!any)
		memset(out, 0, HASH_LEN);
	return rc;
}

int store_bucket_put(struct store *s, uint32_t bucket, const uint8_t hash[HASH_LEN])
{
	static const uint8_t zero[HASH_LEN];
	sqlite3_stmt *st;

	if (!memcmp(hash, zero, HASH_LEN)) {
		st = s->st[ST_BKT_DEL];
		sqlite3_bind_int(st, 1, (int)bucket);
		return run(s, st);
	}
	st = s->st[ST_BKT_PUT];
	sqlite3_bind_int(st, 1, (int)bucket);
	sqlite3_bind_blob(st, 2, hash, HASH_LEN, SQLITE_STATIC);
	return run(s, st);
}

int store_bucket_each(struct store *s,
		      int (*fn)(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN]),
		      void *ctx)
{
	sqlite3_stmt *st = s->st[ST_BKT_ALL];
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint8_t h[HASH_LEN];
		int64_t b = sqlite3_column_int64(st, 0);

		rc = (b < 0 || b >= STATE_BUCKETS) ? TALLY_E_STORE : blob_copy(st, 1, h, HASH_LEN);
		if (!rc)
			rc = fn(ctx, (uint32_t)b, h);
		if (rc)
			goto out;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}
