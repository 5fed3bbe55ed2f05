/* The ledger's SQLite store (see store.h).
 *
 * Schema (version 4):
 *   meta(key TEXT PK, value BLOB)            chain_id, genesis_hash, schema_version,
 *                                            priorities, ...
 *   blocks(height PK, id UNIQUE, header, body, cert, next_vals)
 *                                            body = block_encode() (header + txs);
 *                                            next_vals = the validator set for the
 *                                            next height when it changes, else NULL
 *   txs(hash PK, height -> blocks, idx, off, len)
 *                                            where each transaction's bytes lie
 *                                            in its block's body (block_tx_each);
 *                                            the bytes are kept once, in the body
 *   state(key PK, bucket, value)             the state entries of lib/chain/state.h
 *   leases(id PK, tenant, provider, state, key)
 *                                            an index of the lease entries (key:
 *                                            theirs in state), for the API's lists
 *   usage(idx PK, tx_hash, lease_id, seq)    UNIQUE(lease_id, seq); tx_hash
 *                                            is a txs row's (no foreign key:
 *                                            see upgrade_v3)
 *   usage_nodes(level, idx, hash) PK(level, idx)  perfect-subtree hashes
 *   buckets(bucket PK, hash)                 non-empty state-root buckets only
 *
 * u64 amounts are stored in SQLite's signed 64-bit INTEGER by bit pattern
 * (cast on the way in and out); no SQL ever compares or sums them.
 * The foreign key of txs to blocks is DEFERRABLE INITIALLY DEFERRED, as it
 * was when usage rows, written before their block's, named txs rows too;
 * SQLite checks it at COMMIT.
 *
 * Every statement is prepared once at open. */
#include "daemon/ledger/store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/chain/block.h"
#include "lib/chain/tx.h"
#include "lib/codec.h"
#include "lib/errors.h"

/* The page cache, in KiB (PRAGMA cache_size, negative for KiB). */
#define STORE_CACHE_KIB "65536"

/* Version 3's txs table (under another name while a version-2 store is
 * migrated). A row is small: a block's rows, keyed by hash, land all over
 * the table, and each page they touch is written again at the commit. */
#define TXS_TABLE(name)									\
	"CREATE TABLE IF NOT EXISTS " name "(hash BLOB PRIMARY KEY, height INTEGER NOT NULL"	\
	" REFERENCES blocks(height) DEFERRABLE INITIALLY DEFERRED, idx INTEGER NOT NULL,"	\
	" off INTEGER NOT NULL, len INTEGER NOT NULL) WITHOUT ROWID;"

/* Version 4's usage table (under another name while a version-3 store is
 * migrated): the log in append order, and (lease_id, seq) for a lease's
 * records. tx_hash names the record's transaction in txs; no key says so
 * (see upgrade_v3). */
#define USAGE_TABLE(name)								\
	"CREATE TABLE IF NOT EXISTS " name "(idx INTEGER PRIMARY KEY, tx_hash BLOB NOT NULL,"	\
	" lease_id BLOB NOT NULL, seq INTEGER NOT NULL, UNIQUE(lease_id, seq));"

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS blocks(height INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
	" header BLOB NOT NULL, body BLOB NOT NULL, cert BLOB NOT NULL, next_vals BLOB);"
	TXS_TABLE("txs")
	/* Foreign-key children need indexes: without them SQLite scans the
	 * child table whenever a parent row is inserted. */
	"CREATE INDEX IF NOT EXISTS txs_height ON txs(height);"
	"CREATE TABLE IF NOT EXISTS state(key BLOB PRIMARY KEY, bucket INTEGER NOT NULL,"
	" value BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS state_bucket ON state(bucket, key);"
	"CREATE TABLE IF NOT EXISTS leases(id BLOB PRIMARY KEY, tenant BLOB NOT NULL,"
	" provider BLOB NOT NULL, state INTEGER NOT NULL, key BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS leases_tenant ON leases(tenant, id);"
	"CREATE INDEX IF NOT EXISTS leases_provider ON leases(provider, id);"
	USAGE_TABLE("usage")
	"CREATE TABLE IF NOT EXISTS usage_nodes(level INTEGER NOT NULL, idx INTEGER NOT NULL,"
	" hash BLOB NOT NULL, PRIMARY KEY(level, idx)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS buckets(bucket INTEGER PRIMARY KEY, hash BLOB NOT NULL);";

enum stmt_id {
	ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
	ST_META_GET, ST_META_PUT,
	ST_STATE_GET, ST_STATE_PUT, ST_STATE_DEL, ST_STATE_TYPE, ST_STATE_BUCKET,
	ST_LEASE_IDX_PUT, ST_LEASE_ALL,
	ST_TX_PUT, ST_TX_GET,
	ST_USAGE_PUT, ST_USAGE_OF, ST_USAGE_AT,
	ST_NODE_GET, ST_NODE_PUT,
	ST_BLOCK_PUT, ST_BLOCK_GET, ST_CERT_PUT, ST_TIP,
	ST_BKT_PUT, ST_BKT_DEL, ST_BKT_ALL,
	ST__COUNT
};

static const char *const stmt_sql[ST__COUNT] = {
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[ST_META_PUT] = "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)",
	[ST_STATE_GET] = "SELECT value FROM state WHERE key = ?1",
	/* An update rewrites the row alone: bucket follows from key, so the
	 * state_bucket index keeps its entry (REPLACE would delete and insert
	 * it again, one more page written per entry). */
	[ST_STATE_PUT] = "INSERT INTO state(key, bucket, value) VALUES (?1, ?2, ?3)"
			 " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
	[ST_STATE_DEL] = "DELETE FROM state WHERE key = ?1",
	/* Keys of one type: from the type byte up to (not including) the next. */
	[ST_STATE_TYPE] = "SELECT key, value FROM state WHERE key >= ?1 AND key < ?2 ORDER BY key",
	[ST_STATE_BUCKET] = "SELECT key, value FROM state WHERE bucket = ?1 ORDER BY key",
	/* Every USAGE rewrites its lease's entry, but tenant, provider and
	 * state change only at its START and CLOSE: an unchanged row is left
	 * alone, its pages and those of leases_tenant and leases_provider
	 * clean. */
	[ST_LEASE_IDX_PUT] = "INSERT INTO leases(id, tenant, provider, state, key)"
			     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(id) DO UPDATE SET"
			     " tenant = excluded.tenant, provider = excluded.provider,"
			     " state = excluded.state, key = excluded.key"
			     " WHERE tenant != excluded.tenant OR provider != excluded.provider"
			     " OR state != excluded.state OR key != excluded.key",
	[ST_LEASE_ALL] = "SELECT s.value FROM leases l JOIN state s ON s.key = l.key"
			 " WHERE (?1 IS NULL OR l.tenant = ?1) AND (?2 IS NULL OR l.provider = ?2)"
			 " AND (?3 = 0 OR l.state = ?3) ORDER BY l.id",
	[ST_TX_PUT] = "INSERT INTO txs(hash, height, idx, off, len) VALUES (?1, ?2, ?3, ?4, ?5)",
	[ST_TX_GET] = "SELECT height, idx, off, len FROM txs WHERE hash = ?1",
	[ST_USAGE_PUT] = "INSERT INTO usage(idx, tx_hash, lease_id, seq) VALUES (?1, ?2, ?3, ?4)",
	[ST_USAGE_OF] = "SELECT idx, seq, tx_hash FROM usage WHERE lease_id = ?1 ORDER BY seq",
	[ST_USAGE_AT] = "SELECT tx_hash, lease_id, seq FROM usage WHERE idx = ?1",
	[ST_NODE_GET] = "SELECT hash FROM usage_nodes WHERE level = ?1 AND idx = ?2",
	[ST_NODE_PUT] = "INSERT OR REPLACE INTO usage_nodes(level, idx, hash) VALUES (?1, ?2, ?3)",
	[ST_BLOCK_PUT] = "INSERT INTO blocks(height, id, header, body, cert, next_vals)"
			 " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_BLOCK_GET] = "SELECT id, header, body, cert, next_vals FROM blocks WHERE height = ?1",
	[ST_CERT_PUT] = "UPDATE blocks SET cert = ?2 WHERE height = ?1",
	[ST_TIP] = "SELECT COALESCE(MAX(height), 0) FROM blocks",
	/* An update rewrites the row in place (REPLACE would delete it and
	 * insert it again). */
	[ST_BKT_PUT] = "INSERT INTO buckets(bucket, hash) VALUES (?1, ?2)"
		       " ON CONFLICT(bucket) DO UPDATE SET hash = excluded.hash",
	[ST_BKT_DEL] = "DELETE FROM buckets WHERE bucket = ?1",
	[ST_BKT_ALL] = "SELECT bucket, hash FROM buckets ORDER BY bucket",
};

/* The usage log's levels (lib/merkle.c's MERKLE_LEVELS). */
#define NODE_LEVELS 64

/* The last usage node written at one level. Appending leaf n reads, at
 * each level it closes a subtree, the left sibling: the node written last
 * at that level. The root reads the same nodes. */
struct node_memo {
	bool valid;
	uint64_t idx;
	uint8_t hash[HASH_LEN];
};

/* A leases row as the store's transaction holds it. Every USAGE rewrites
 * its lease's entry, while the row changes only at START and CLOSE: a
 * lease found here unchanged is not sent to SQLite again. Direct-mapped
 * by bytes of the lease id (a hash). */
#define LEASE_MEMO_SLOTS 4096

struct lease_memo {
	bool valid;
	uint8_t key[STATE_KEY_LEN];
	uint8_t id[LEASE_ID_LEN];
	uint8_t tenant[PUBKEY_LEN];
	uint8_t provider[PUBKEY_LEN];
	uint8_t state;
};

/* A state entry as the store's transaction holds it: a block reads each
 * lease and account it touches (the trial falls through to the store)
 * and writes them back at its commit, and the next block reads the same
 * ones again. Direct-mapped by the key's type and bytes of its id (a
 * public key or a hash); values up to ENTRY_MEMO_VALUE bytes (a lease's
 * is about 300). */
#define ENTRY_MEMO_SLOTS 4096
#define ENTRY_MEMO_VALUE 512

struct entry_memo {
	bool valid;
	uint8_t key[STATE_KEY_LEN];
	uint16_t vlen;
	uint8_t val[ENTRY_MEMO_VALUE];
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT];
	struct merkle_store merkle;
	/* What the writer's transaction holds, kept as it writes and forgotten
	 * when it rolls back (store_rollback, memo_forget). */
	struct node_memo node_memo[NODE_LEVELS];
	struct lease_memo *lease_memo;   /* LEASE_MEMO_SLOTS; NULL in a reader */
	struct entry_memo *entry_memo;   /* ENTRY_MEMO_SLOTS; NULL in a reader */
	int wal_frames;              /* in the WAL after the last commit */
	unsigned upgraded_from;      /* the schema version store_open upgraded, or 0 */
};

/* SQLite's own automatic checkpoint runs inside COMMIT, while the reader
 * (store_open_reader) still holds the snapshot before it: the WAL could
 * then never start over and would grow with every block. The writer counts
 * the WAL's frames instead, and store_checkpoint runs when the reader has
 * let go. */
static int count_wal(void *ctx, sqlite3 *db, const char *name, int frames)
{
	struct store *s = ctx;

	(void)db;
	(void)name;
	s->wal_frames = frames;
	return SQLITE_OK;
}

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

unsigned store_upgraded_from(const struct store *s)
{
	return s->upgraded_from;
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

/* Forgets what the writer remembers of its rows: after a rollback they may
 * be gone. */
static void memo_forget(struct store *s)
{
	memset(s->node_memo, 0, sizeof(s->node_memo));
	if (s->lease_memo)
		memset(s->lease_memo, 0, LEASE_MEMO_SLOTS * sizeof(*s->lease_memo));
	if (s->entry_memo)
		memset(s->entry_memo, 0, ENTRY_MEMO_SLOTS * sizeof(*s->entry_memo));
}

static int merkle_get(void *ctx, unsigned level, uint64_t index, uint8_t out[HASH_LEN])
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_NODE_GET];
	int rc;

	if (level < NODE_LEVELS && s->node_memo[level].valid && s->node_memo[level].idx == index) {
		memcpy(out, s->node_memo[level].hash, HASH_LEN);
		return 0;
	}
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

	int rc;

	sqlite3_bind_int(st, 1, level);
	sqlite3_bind_int64(st, 2, (int64_t)index);
	sqlite3_bind_blob(st, 3, hash, HASH_LEN, SQLITE_STATIC);
	rc = run(s, st);
	if (level < NODE_LEVELS) {
		s->node_memo[level].valid = !rc;
		s->node_memo[level].idx = index;
		memcpy(s->node_memo[level].hash, hash, HASH_LEN);
	}
	return rc;
}

bool store_corrupt(struct store *s)
{
	int prim = sqlite3_errcode(s->db) & 0xff;

	return prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A database file cut short (an interrupted copy, a disk that lost its
 * tail) would open, and SQLite would meet the missing pages only when some
 * query reads them. Its header (sqlite.org/fileformat2.html, section 1.3)
 * gives the page size and, when its "version-valid-for" number equals the
 * change counter, the number of pages; while the WAL holds frames, pages may
 * live there instead (a checkpoint the disk filled up), and quick_check()
 * reads them all. No file or 0 bytes: a new store. */
static int check_file(const char *path, char *why)
{
	char wal[4200];
	uint8_t h[100];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (stat(wal, &st) == 0 && st.st_size > 0)
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errno == ENOENT ? 0 : why_set(why, TALLY_E_STORE, "cannot open %s: %s",
						     path, strerror(errno));
	if (fstat(fd, &st) != 0 || st.st_size == 0) {
		close(fd);
		return 0;
	}
	n = pread(fd, h, sizeof(h), 0);
	close(fd);
	if (n != (ssize_t)sizeof(h) || memcmp(h, "SQLite format 3", 16))
		return why_set(why, TALLY_E_STORE, "%s is not a SQLite database or is cut short"
			       " (%lld bytes)" STORE_WHAT_TO_DO, path, (long long)st.st_size);
	uint64_t page = (uint64_t)h[16] << 8 | h[17];
	if (page == 1)
		page = 65536;
	uint64_t want = page * be32(h + 28);
	if (be32(h + 92) == be32(h + 24) && (uint64_t)st.st_size < want)
		return why_set(why, TALLY_E_STORE, "%s is cut short (%lld of %llu bytes)"
			       STORE_WHAT_TO_DO, path, (long long)st.st_size,
			       (unsigned long long)want);
	return 0;
}

/* A page lost or garbled inside the file (a write the disk dropped without
 * saying so) shows only when a query reads it: SQLite's quick_check reads
 * every page of every table and index once (linear in the file's size) at
 * open, so a damaged store is refused before the node serves from it.
 * Sets why on any failure. */
static int quick_check(struct store *s, const char *path, char *why)
{
	sqlite3_stmt *st = NULL;
	const char *res = NULL;
	int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);

	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		res = (const char *)sqlite3_column_text(st, 0);
		rc = res && !strcmp(res, "ok") ? 0 :
		     why_set(why, TALLY_E_STORE, "%s is damaged (%.80s)" STORE_WHAT_TO_DO, path,
			     res ? res : "no answer");
	} else if (store_corrupt(s)) {
		rc = why_set(why, TALLY_E_STORE, "%s is damaged (%s)" STORE_WHAT_TO_DO, path,
			     sqlite3_errmsg(s->db));
	} else {
		rc = why_set(why, map_err(s, rc), "cannot check %s: %s", path,
			     sqlite3_errmsg(s->db));
	}
	sqlite3_finalize(st);
	return rc;
}

/* The connection, with extended result codes and a busy timeout; no
 * SQLite mutex: each connection is used under one of the ledger's locks. */
static int open_db(struct store *s, const char *path, int flags, char *why)
{
	int rc = sqlite3_open_v2(path, &s->db, flags | SQLITE_OPEN_NOMUTEX, NULL);

	if (rc != SQLITE_OK) {
		snprintf(why, WHY_MAX, "cannot open %s%s: %s", path,
			 flags & SQLITE_OPEN_READONLY ? " to read" : "",
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		return TALLY_E_STORE;
	}
	sqlite3_extended_result_codes(s->db, 1);
	sqlite3_busy_timeout(s->db, 5000);
	return 0;
}

static int prepare_all(struct store *s, const char *path, char *why)
{
	for (int i = 0; i < ST__COUNT; i++) {
		if (sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &s->st[i], NULL) != SQLITE_OK) {
			snprintf(why, WHY_MAX, "cannot prepare a statement on %s: %s", path,
				 sqlite3_errmsg(s->db));
			return TALLY_E_STORE;
		}
	}
	s->merkle.ctx = s;
	s->merkle.get = merkle_get;
	s->merkle.put = merkle_put;
	return 0;
}

int store_open_reader(struct store **out, const char *path, char *why)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return TALLY_E_NOMEM;
	rc = open_db(s, path, SQLITE_OPEN_READONLY, why);
	if (rc)
		goto err;
	rc = exec_sql(s, "PRAGMA cache_size=-" STORE_CACHE_KIB ";");
	if (rc) {
		why_set(why, rc, "cannot set up %s: %s", path, sqlite3_errmsg(s->db));
		goto err;
	}
	rc = prepare_all(s, path, why);
	if (!rc)
		rc = store_snapshot_renew(s);
	if (rc) {
		if (!why[0])
			why_set(why, rc, "cannot read %s: %s", path, sqlite3_errmsg(s->db));
		goto err;
	}
	*out = s;
	return 0;
err:
	store_close(s);
	return rc;
}

int store_snapshot_renew(struct store *s)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	int rc;

	if (!sqlite3_get_autocommit(s->db) && (rc = exec_sql(s, "COMMIT")))
		return rc;
	if ((rc = exec_sql(s, "BEGIN")))
		return rc;
	/* BEGIN takes its snapshot at the first read: read now. */
	sqlite3_bind_text(st, 1, "schema_version", -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return map_err(s, rc);
	return 0;
}

int store_snapshot_release(struct store *s)
{
	return sqlite3_get_autocommit(s->db) ? 0 : exec_sql(s, "COMMIT");
}

int store_checkpoint(struct store *s)
{
	int rc;

	if (s->wal_frames < STORE_CHECKPOINT_FRAMES)
		return 0;
	rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY)
		return map_err(s, rc);
	s->wal_frames = 0;
	return 0;
}

/* A block's txs rows: each transaction's hash and its place in the body. */
struct tx_rows {
	struct store *s;
	sqlite3_stmt *st;
	uint64_t height;
	const uint8_t *body;
	const uint8_t (*hash)[HASH_LEN];     /* NULL: hashed here */
};

static int tx_row_put(void *ctx, size_t i, size_t off, size_t len)
{
	struct tx_rows *r = ctx;
	uint8_t h[HASH_LEN];

	if (!r->hash)
		tx_hash(r->body + off, len, h);
	sqlite3_bind_blob(r->st, 1, r->hash ? r->hash[i] : h, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(r->st, 2, (int64_t)r->height);
	sqlite3_bind_int64(r->st, 3, (int64_t)i);
	sqlite3_bind_int64(r->st, 4, (int64_t)off);
	sqlite3_bind_int64(r->st, 5, (int64_t)len);
	return run(r->s, r->st);
}

static int tx_rows_put(struct store *s, sqlite3_stmt *st, uint64_t height, const uint8_t *body,
		       size_t len, const uint8_t (*hash)[HASH_LEN])
{
	struct tx_rows r = { s, st, height, body, hash };

	return block_tx_each(body, len, tx_row_put, &r);
}

/* The schema version in meta: 0 when the store has none yet (new). */
static int schema_version(struct store *s, unsigned *ver)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'schema_version'",
				    -1, &st, NULL);

	*ver = 0;
	if (rc != SQLITE_OK)
		return map_err(s, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 4)
		*ver = ((const uint8_t *)sqlite3_column_blob(st, 0))[0];
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_err(s, rc);
	sqlite3_finalize(st);
	return rc;
}

/* Version 2 to 3: the txs rows no longer carry the transactions' bytes (a
 * second copy of what the blocks' bodies hold), only where they lie in the
 * body. Every stored body is walked once into a new table, which then
 * takes the old one's place. The freed pages are reused as the chain
 * grows. */
static int upgrade_v2(struct store *s, const char *path, char *why)
{
	static const char begin[] = "DROP TABLE IF EXISTS txs_v3; " TXS_TABLE("txs_v3");
	static const char finish_sql[] =
		"DROP TABLE txs; ALTER TABLE txs_v3 RENAME TO txs;"
		" CREATE INDEX txs_height ON txs(height);";
	sqlite3_stmt *blocks = NULL, *put = NULL, *check = NULL;
	int rc, step = SQLITE_DONE;

	rc = exec_sql(s, begin);
	if (!rc && sqlite3_prepare_v2(s->db, "SELECT height, body FROM blocks ORDER BY height", -1,
				      &blocks, NULL) != SQLITE_OK)
		rc = TALLY_E_STORE;
	if (!rc && sqlite3_prepare_v2(s->db, "INSERT INTO txs_v3(hash, height, idx, off, len)"
				      " VALUES (?1, ?2, ?3, ?4, ?5)", -1, &put, NULL) != SQLITE_OK)
		rc = TALLY_E_STORE;
	while (!rc && (step = sqlite3_step(blocks)) == SQLITE_ROW) {
		uint64_t height = (uint64_t)sqlite3_column_int64(blocks, 0);
		const uint8_t *body = sqlite3_column_blob(blocks, 1);
		int n = sqlite3_column_bytes(blocks, 1);

		rc = tx_rows_put(s, put, height, body, (size_t)n, NULL);
		if (rc == TALLY_E_EXISTS)
			why_set(why, TALLY_E_STORE, "upgrading %s: a transaction of block %llu is"
				" stored twice" STORE_WHAT_TO_DO, path, (unsigned long long)height);
		else if (rc && rc != TALLY_E_STORE && rc != TALLY_E_DISKFULL && rc != TALLY_E_NOMEM)
			why_set(why, TALLY_E_STORE, "upgrading %s: block %llu's body does not decode"
				" (%s)" STORE_WHAT_TO_DO, path, (unsigned long long)height,
				tally_strerror(rc));
		if (rc == TALLY_E_EXISTS || (rc && why[0]))
			rc = TALLY_E_STORE;
	}
	if (!rc && step != SQLITE_DONE)
		rc = map_err(s, step);
	sqlite3_finalize(blocks);
	sqlite3_finalize(put);
	/* Every transaction the old table had, and nothing else. */
	if (!rc && sqlite3_prepare_v2(s->db, "SELECT (SELECT count(*) FROM txs) = (SELECT count(*)"
				      " FROM txs_v3) AND NOT EXISTS (SELECT 1 FROM txs t LEFT JOIN"
				      " txs_v3 n ON n.hash = t.hash WHERE n.hash IS NULL OR n.height !="
				      " t.height OR n.idx != t.idx)", -1, &check, NULL) != SQLITE_OK)
		rc = TALLY_E_STORE;
	if (!rc && (step = sqlite3_step(check)) != SQLITE_ROW)
		rc = map_err(s, step);
	else if (!rc && !sqlite3_column_int(check, 0))
		rc = why_set(why, TALLY_E_STORE, "upgrading %s: its transactions do not match its"
			     " blocks' bodies" STORE_WHAT_TO_DO, path);
	sqlite3_finalize(check);
	if (!rc)
		rc = exec_sql(s, finish_sql);
	return rc;
}

/* Version 3 to 4: the usage table loses its foreign key to txs and the
 * index usage_tx(tx_hash) that the key needed. No read looks a usage
 * record up by its transaction (a record's transaction is found from the
 * record, through txs), the rows of both tables are written in the same
 * SQLite transaction, and each record cost one more B-tree keyed by a
 * random hash, written at every commit. The rows are copied as they are. */
static int upgrade_v3(struct store *s, const char *path, char *why)
{
	static const char sql[] =
		"DROP TABLE IF EXISTS usage_v4; " USAGE_TABLE("usage_v4")
		" INSERT INTO usage_v4(idx, tx_hash, lease_id, seq)"
		"  SELECT idx, tx_hash, lease_id, seq FROM usage ORDER BY idx;"
		" DROP TABLE usage; ALTER TABLE usage_v4 RENAME TO usage;";

	(void)path;
	(void)why;
	return exec_sql(s, sql);
}

/* Upgrades a store of schema version from to the next, by SQLite's
 * procedure for changing a table's shape (foreign keys off, new tables,
 * the old dropped, the new renamed, foreign_key_check) in one SQLite
 * transaction: the store is wholly of one version or the other, whatever
 * happens meanwhile. step does the work; it may set why. */
static int upgrade_step(struct store *s, const char *path, unsigned from,
			int (*step)(struct store *s, const char *path, char *why), char *why)
{
	sqlite3_stmt *check = NULL;
	char ver[96];
	int rc, res;

	why[0] = '\0';
	rc = exec_sql(s, "PRAGMA foreign_keys=OFF; BEGIN IMMEDIATE;");
	if (!rc)
		rc = step(s, path, why);
	snprintf(ver, sizeof(ver), "UPDATE meta SET value = X'%02x000000'"
		 " WHERE key = 'schema_version'", from + 1);
	if (!rc)
		rc = exec_sql(s, ver);
	if (!rc && sqlite3_prepare_v2(s->db, "PRAGMA foreign_key_check", -1, &check, NULL) !=
	    SQLITE_OK)
		rc = TALLY_E_STORE;
	if (!rc && (res = sqlite3_step(check)) == SQLITE_ROW)
		rc = why_set(why, TALLY_E_STORE, "upgrading %s: a foreign key does not hold after"
			     " it" STORE_WHAT_TO_DO, path);
	else if (!rc && res != SQLITE_DONE)
		rc = map_err(s, res);
	sqlite3_finalize(check);
	if (!rc)
		rc = exec_sql(s, "COMMIT");
	if (rc) {
		if (!why[0])
			why_set(why, rc, "cannot upgrade %s from schema version %u: %s", path, from,
				sqlite3_errmsg(s->db));
		if (!sqlite3_get_autocommit(s->db))
			exec_sql(s, "ROLLBACK");
	}
	/* Never run on with foreign keys off. */
	if (exec_sql(s, "PRAGMA foreign_keys=ON") && !rc)
		rc = why_set(why, TALLY_E_STORE, "cannot turn foreign keys on again in %s: %s",
			     path, sqlite3_errmsg(s->db));
	if (!rc && !s->upgraded_from)
		s->upgraded_from = from;
	return rc;
}

int store_open(struct store **out, const char *path, bool upgrade, char *why)
{
	struct store *s;
	unsigned ver;
	int rc = check_file(path, why);

	*out = NULL;
	if (rc)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return TALLY_E_NOMEM;
	rc = open_db(s, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, why);
	if (rc)
		goto err;
	/* synchronous=FULL: in WAL mode the WAL is fsynced at every COMMIT, so a
	 * committed block survives power loss, not just a process crash. */
	/* cache_size: SQLite's default 2 MiB page cache holds a fraction of
	 * the pages a block touches (transactions are keyed by hash, so their
	 * rows land all over the table): each block read its pages back with
	 * pread and spilled dirty ones before COMMIT (issue 18's profile).
	 * STORE_CACHE_KIB is an upper bound, taken as the store grows. */
	rc = exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
		      " PRAGMA foreign_keys=ON; PRAGMA cache_size=-" STORE_CACHE_KIB ";");
	if (!rc) {
		rc = quick_check(s, path, why);
		if (rc)
			goto err;
		rc = exec_sql(s, schema_sql);
	}
	if (!rc)
		rc = schema_version(s, &ver);
	/* Before any statement is prepared: one of another version's shape
	 * would fail on a column, which says nothing of why. */
	if (!rc && ver > STORE_SCHEMA_VERSION) {
		rc = why_set(why, TALLY_E_VERSION, "%s has schema version %u, newer than this"
			     " tallyd's %u: a newer tallyd upgraded it; run that one, or restore the"
			     " backup taken before the upgrade (docs/OPERATING.md, \"Upgrades\")",
			     path, ver, STORE_SCHEMA_VERSION);
		goto err;
	}
	if (!rc && ver && ver < 2) {
		rc = why_set(why, TALLY_E_VERSION, "%s has schema version %u, older than any this"
			     " tallyd upgrades (2 and up)", path, ver);
		goto err;
	}
	if (!rc && ver && ver < STORE_SCHEMA_VERSION && !upgrade) {
		rc = why_set(why, TALLY_E_VERSION, "%s has schema version %u: start tallyd on it"
			     " once to upgrade it to version %u", path, ver, STORE_SCHEMA_VERSION);
		goto err;
	}
	/* One version at a time, each step whole: a store left between two
	 * steps is of the version between, and upgraded on from there. */
	if (!rc && ver == 2 && (rc = upgrade_step(s, path, 2, upgrade_v2, why)))
		goto err;
	if (!rc && ver && ver <= 3 && (rc = upgrade_step(s, path, 3, upgrade_v3, why)))
		goto err;
	if (rc && store_corrupt(s))
		why_set(why, rc, "%s is damaged (%s)" STORE_WHAT_TO_DO, path, sqlite3_errmsg(s->db));
	else if (rc)
		why_set(why, rc, "cannot set up %s: %s", path, sqlite3_errmsg(s->db));
	if (rc)
		goto err;
	rc = prepare_all(s, path, why);
	if (rc)
		goto err;
	s->lease_memo = calloc(LEASE_MEMO_SLOTS, sizeof(*s->lease_memo));
	s->entry_memo = calloc(ENTRY_MEMO_SLOTS, sizeof(*s->entry_memo));
	if (!s->lease_memo || !s->entry_memo) {
		rc = TALLY_E_NOMEM;
		goto err;
	}
	sqlite3_wal_hook(s->db, count_wal, s);
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
	free(s->lease_memo);
	free(s->entry_memo);
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
	memo_forget(s);
	if (!sqlite3_get_autocommit(s->db))
		run(s, s->st[ST_ROLLBACK]);
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

/* --- state entries (struct state_backend) ---------------------------------- */

/* The memo slot of a state key, or NULL (a reader's store, another key
 * length). */
static struct entry_memo *entry_memo_slot(struct store *s, const uint8_t *key, size_t klen)
{
	uint32_t x;

	if (!s->entry_memo || klen != STATE_KEY_LEN)
		return NULL;
	x = (uint32_t)key[1] | (uint32_t)key[2] << 8 | (uint32_t)key[3] << 16 |
	    (uint32_t)key[4] << 24;
	x ^= (uint32_t)key[0] * 0x9e3779b1u;
	return &s->entry_memo[x % ENTRY_MEMO_SLOTS];
}

/* Notes key's value as the transaction now holds it (vlen 0 or rc: the
 * slot is let go instead). */
static void entry_memo_note(struct entry_memo *m, const uint8_t *key, const uint8_t *val,
			    size_t vlen, int rc)
{
	if (!m)
		return;
	m->valid = !rc && vlen && vlen <= ENTRY_MEMO_VALUE;
	if (!m->valid)
		return;
	memcpy(m->key, key, STATE_KEY_LEN);
	memcpy(m->val, val, vlen);
	m->vlen = (uint16_t)vlen;
}

static int state_get(void *ctx, const uint8_t *key, size_t klen, uint8_t *val, size_t cap,
		     size_t *vlen)
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_STATE_GET];
	struct entry_memo *m = entry_memo_slot(s, key, klen);
	int rc;
	int n;

	if (m && m->valid && !memcmp(m->key, key, STATE_KEY_LEN)) {
		if (m->vlen > cap)
			return TALLY_E_STORE;
		memcpy(val, m->val, m->vlen);
		*vlen = m->vlen;
		return 0;
	}
	rc = row_by_blob(s, st, key, (int)klen);
	if (!rc) {
		n = sqlite3_column_bytes(st, 0);
		if ((size_t)n > cap) {
			rc = TALLY_E_STORE;
		} else {
			memcpy(val, sqlite3_column_blob(st, 0), n);
			*vlen = (size_t)n;
			entry_memo_note(m, key, val, *vlen, 0);
		}
	}
	finish(st);
	return rc;
}

static struct lease_memo *lease_memo_slot(struct store *s, const uint8_t key[STATE_KEY_LEN])
{
	uint32_t x = (uint32_t)key[1] | (uint32_t)key[2] << 8 | (uint32_t)key[3] << 16 |
		     (uint32_t)key[4] << 24;

	return s->lease_memo ? &s->lease_memo[x % LEASE_MEMO_SLOTS] : NULL;
}

/* A lease entry also updates the index the API's lists read. */
static int lease_index_put(struct store *s, const uint8_t *key, size_t klen,
			   const uint8_t *val, size_t vlen)
{
	sqlite3_stmt *st = s->st[ST_LEASE_IDX_PUT];
	struct lease_memo *m = lease_memo_slot(s, key);
	struct lease l;
	int rc;

	if (lease_decode(&l, val, vlen))
		return TALLY_E_STORE;
	if (m && m->valid && !memcmp(m->key, key, STATE_KEY_LEN) &&
	    !memcmp(m->id, l.id, LEASE_ID_LEN) &&
	    !memcmp(m->tenant, l.contract.tenant, PUBKEY_LEN) &&
	    !memcmp(m->provider, l.contract.provider, PUBKEY_LEN) && m->state == l.state)
		return 0;   /* the row says so already */
	sqlite3_bind_blob(st, 1, l.id, LEASE_ID_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 2, l.contract.tenant, PUBKEY_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_blob(st, 3, l.contract.provider, PUBKEY_LEN, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, l.state);
	sqlite3_bind_blob(st, 5, key, (int)klen, SQLITE_STATIC);
	rc = run(s, st);
	if (m) {
		m->valid = !rc;
		memcpy(m->key, key, STATE_KEY_LEN);
		memcpy(m->id, l.id, LEASE_ID_LEN);
		memcpy(m->tenant, l.contract.tenant, PUBKEY_LEN);
		memcpy(m->provider, l.contract.provider, PUBKEY_LEN);
		m->state = (uint8_t)l.state;
	}
	return rc;
}

static int state_put(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
		     size_t vlen)
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_STATE_PUT];
	struct entry_memo *em = entry_memo_slot(s, key, klen);
	int rc;

	if (vlen == 0) {   /* an empty value deletes (lib/chain/state.h) */
		struct lease_memo *m = klen == STATE_KEY_LEN ? lease_memo_slot(s, key) : NULL;

		if (m)
			m->valid = false;
		entry_memo_note(em, key, val, 0, 0);
		st = s->st[ST_STATE_DEL];
		sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
		return run(s, st);
	}
	sqlite3_bind_blob(st, 1, key, (int)klen, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, (int)state_bucket_of(key, klen));
	sqlite3_bind_blob(st, 3, val, (int)vlen, SQLITE_STATIC);
	rc = run(s, st);
	entry_memo_note(em, key, val, vlen, rc);
	if (!rc && klen == STATE_KEY_LEN && key[0] == STATE_KEY_LEASE)
		rc = lease_index_put(s, key, klen, val, vlen);
	return rc;
}

/* Runs fn over the rows (key, value) of a prepared statement. */
static int entry_rows(struct store *s, sqlite3_stmt *st, state_entry_fn fn, void *fctx)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = fn(fctx, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0),
			sqlite3_column_blob(st, 1), sqlite3_column_bytes(st, 1));
		if (rc)
			goto out;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}

static int state_scan_type(void *ctx, uint8_t type, state_entry_fn fn, void *fctx)
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_STATE_TYPE];
	uint8_t lo = type, hi = (uint8_t)(type + 1);

	sqlite3_bind_blob(st, 1, &lo, 1, SQLITE_TRANSIENT);
	if (type == 0xff)
		sqlite3_bind_blob(st, 2, "\xff\xff", 2, SQLITE_STATIC);  /* above every 0xff key */
	else
		sqlite3_bind_blob(st, 2, &hi, 1, SQLITE_TRANSIENT);
	return entry_rows(s, st, fn, fctx);
}

static int state_scan_bucket(void *ctx, uint32_t bucket, state_entry_fn fn, void *fctx)
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_STATE_BUCKET];

	sqlite3_bind_int(st, 1, (int)bucket);
	return entry_rows(s, st, fn, fctx);
}

static int state_usage_append(void *ctx, uint64_t index, const uint8_t leaf_hash[HASH_LEN],
			      const uint8_t tx_hash[HASH_LEN],
			      const uint8_t lease_id[LEASE_ID_LEN], uint64_t seq)
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_USAGE_PUT];
	int rc = merkle_append(&s->merkle, index, leaf_hash);

	if (rc)
		return rc;
	sqlite3_bind_int64(st, 1, (int64_t)index);
	sqlite3_bind_blob(st, 2, tx_hash, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, lease_id, LEASE_ID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, (int64_t)seq);
	return run(s, st);
}

static int state_usage_root(void *ctx, uint64_t size, uint8_t out[HASH_LEN])
{
	struct store *s = ctx;

	return merkle_root(&s->merkle, size, out);
}

static int state_bucket_hash_put(void *ctx, uint32_t bucket, const uint8_t hash[HASH_LEN])
{
	static const uint8_t zero[HASH_LEN];
	struct store *s = ctx;
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

static int state_bucket_hash_each(void *ctx,
				  int (*fn)(void *fctx, uint32_t bucket,
					    const uint8_t hash[HASH_LEN]), void *fctx)
{
	struct store *s = ctx;
	sqlite3_stmt *st = s->st[ST_BKT_ALL];
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint8_t h[HASH_LEN];
		int64_t b = sqlite3_column_int64(st, 0);

		rc = (b < 0 || b >= STATE_BUCKETS) ? TALLY_E_STORE : blob_copy(st, 1, h, HASH_LEN);
		if (!rc)
			rc = fn(fctx, (uint32_t)b, h);
		if (rc)
			goto out;
	}
	rc = rows_end(s, rc);
out:
	finish(st);
	return rc;
}

struct state_backend store_state_backend(struct store *s)
{
	struct state_backend be = {
		.ctx = s,
		.get = state_get,
		.put = state_put,
		.scan_type = state_scan_type,
		.scan_bucket = state_scan_bucket,
		.usage_append = state_usage_append,
		.usage_root = state_usage_root,
		.bucket_hash_put = state_bucket_hash_put,
		.bucket_hash_each = state_bucket_hash_each,
	};

	return be;
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

		rc = lease_decode(&l, sqlite3_column_blob(st, 0), sqlite3_column_bytes(st, 0)) ?
		     TALLY_E_STORE : 0;
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

/* len bytes at off in the body of block height, into *out (malloc'd),
 * through SQLite's incremental blob I/O (no copy of the whole body). */
static int body_read(struct store *s, uint64_t height, int64_t off, int64_t len, uint8_t **out)
{
	sqlite3_blob *b;
	int rc = sqlite3_blob_open(s->db, "main", "blocks", "body", (sqlite3_int64)height, 0, &b);

	*out = NULL;
	if (rc != SQLITE_OK)
		return map_err(s, rc);
	if (off < 0 || len < 0 || off > sqlite3_blob_bytes(b) ||
	    len > sqlite3_blob_bytes(b) - off) {
		sqlite3_blob_close(b);
		return TALLY_E_STORE;
	}
	*out = malloc(len ? (size_t)len : 1);
	if (!*out) {
		sqlite3_blob_close(b);
		return TALLY_E_NOMEM;
	}
	rc = sqlite3_blob_read(b, *out, (int)len, (int)off);
	sqlite3_blob_close(b);
	if (rc != SQLITE_OK) {
		free(*out);
		*out = NULL;
		return map_err(s, rc);
	}
	return 0;
}

int store_tx_get(struct store *s, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
		 uint64_t *height, uint32_t *index)
{
	sqlite3_stmt *st = s->st[ST_TX_GET];
	uint64_t h;
	int64_t off, n;
	int rc;

	rc = row_by_blob(s, st, hash, HASH_LEN);
	if (!rc) {
		h = (uint64_t)sqlite3_column_int64(st, 0);
		if (index)
			*index = (uint32_t)sqlite3_column_int64(st, 1);
		off = sqlite3_column_int64(st, 2);
		n = sqlite3_column_int64(st, 3);
		if (height)
			*height = h;
	}
	finish(st);
	if (!rc && bytes) {
		uint8_t got[HASH_LEN];

		rc = body_read(s, h, off, n, bytes);
		*len = rc ? 0 : (size_t)n;
		/* A row that points at other bytes must not serve them (they
		 * would end up in a proof): the hash is the row's key. */
		if (!rc) {
			tx_hash(*bytes, *len, got);
			if (memcmp(got, hash, HASH_LEN)) {
				free(*bytes);
				*bytes = NULL;
				*len = 0;
				rc = TALLY_E_STORE;
			}
		}
	}
	return rc;
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

int store_block_put(struct store *s, const struct stored_block *b,
		    const uint8_t (*tx_hashes)[HASH_LEN])
{
	sqlite3_stmt *st = s->st[ST_BLOCK_PUT];
	int rc;

	sqlite3_bind_int64(st, 1, (int64_t)b->height);
	sqlite3_bind_blob(st, 2, b->id, HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_blob(st, 3, b->header, (int)b->header_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, b->body, (int)b->body_len, SQLITE_STATIC);
	sqlite3_bind_blob(st, 5, b->cert, (int)b->cert_len, SQLITE_STATIC);
	if (b->next_vals)
		sqlite3_bind_blob(st, 6, b->next_vals, (int)b->next_vals_len, SQLITE_STATIC);
	rc = run(s, st);
	if (!rc)
		rc = tx_rows_put(s, s->st[ST_TX_PUT], b->height, b->body, b->body_len, tx_hashes);
	return rc;
}

int store_cert_put(struct store *s, uint64_t height, const uint8_t *cert, size_t len)
{
	sqlite3_stmt *st = s->st[ST_CERT_PUT];
	int rc;

	sqlite3_bind_int64(st, 1, (int64_t)height);
	sqlite3_bind_blob(st, 2, cert, (int)len, SQLITE_STATIC);
	rc = run(s, st);
	if (!rc && sqlite3_changes(s->db) != 1)
		rc = TALLY_E_NOTFOUND;
	return rc;
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
