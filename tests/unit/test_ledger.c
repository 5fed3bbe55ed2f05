/* The ledger engine on real SQLite files in temporary directories:
 * persistence across reopen, chain verification of the stored chain and
 * detection of any changed byte, mempool refusals (replay, wrong chain,
 * overspending, capacity), transactions held for a nonce gap (order,
 * bounds, expiry, replays, one that no longer applies), the full lease flow with exact
 * balances, escrow exhaustion, deterministic headers, incremental vs
 * from-scratch state roots, SIGKILL in the middle of commits, a full disk,
 * proposer selection and the validator's signing guard; batch submission
 * (each transaction answered in its place), the worker pool that checks a
 * batch's signatures, admission while blocks commit, a WAL that stays
 * bounded while the mempool's snapshot is held, and stores of schema
 * versions 2 and 3 upgraded (or, damaged, refused and left as they
 * were). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/api/http.h"
#include "daemon/api/routes.h"
#include "daemon/consensus/round.h"
#include "daemon/ledger/ledger.h"
#include "daemon/ledger/ledger_impl.h"   /* the kept trial, for a test that fails it */
#include "daemon/ledger/mempool.h"
#include "daemon/ledger/store.h"
#include "daemon/ledger/workers.h"
#include "lib/chain/evidence.h"
#include "lib/errors.h"
#include "lib/json_u64.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"
#include "tests/support/offer.h"

/* The state root recomputed from every entry of the store in data_dir (a
 * second connection, as an auditor of the node's disk), next to the one
 * the ledger keeps incrementally (ledger_status). */
static void scratch_root(const char *data_dir, uint8_t out[HASH_LEN])
{
	struct state_backend be;
	struct store *st;
	struct state s;
	char path[4096], why[WHY_MAX];

	snprintf(path, sizeof(path), "%s/ledger.sqlite", data_dir);
	ck_assert_msg(store_open(&st, path, false, why) == 0, "%s", why);
	be = store_state_backend(st);
	ck_assert_int_eq(state_open(&s, &be, 0), 0);
	ck_assert_int_eq(state_root_recompute(&s, out), 0);
	state_close(&s);
	store_close(st);
}

#define CHAIN "tally-ledger-test"
#define T0 1700000000000000000ull          /* genesis time, ns */
#define SEC 1000000000ull
#define EXPIRY 4000000000ull               /* unix s, far ahead of the wall clock */
#define TENANT_FUNDS 10000000ull
#define OTHER_FUNDS 5000ull
#define STAKE 1000ull
#define INTERVAL 60
#define RECORD_CHARGE 6600ull               /* 60 s of 1 vCPU at 100 + 1 GiB-min at 10 */

enum { K_VAL, K_TENANT, K_PROV, K_OTHER, NKEYS };

static struct tally_key keys[NKEYS];
static struct genesis gen;

/* The genesis hash every signature of the test chain is bound to. */
static const uint8_t *gen_hash(void)
{
	static uint8_t h[HASH_LEN];

	genesis_hash(&gen, h);
	return h;
}
static struct genesis_account gen_accounts[2];
static char base[32];   /* per test case, made in the runner's process */
static char dir[64];    /* per test, inside base */

static void setup(void)
{
	lt_keys(keys, NKEYS, 0x40);
	lt_genesis(&gen, gen_accounts, CHAIN, T0, &keys[K_VAL], STAKE, &keys[K_TENANT],
		   TENANT_FUNDS, &keys[K_OTHER], OTHER_FUNDS);
	lt_test_dir(dir, sizeof(dir), base);
}

/* An unchecked fixture runs in the runner's process even when a test fails
 * (a failed assertion ends the forked test before its teardown), so this is
 * where everything a test made is removed for sure: mounts first. */
static void base_setup(void)
{
	lt_case_dir(base, sizeof(base), "ledger");
}

static void base_teardown(void)
{
	char line[1024], mnt[512];
	FILE *f;
	bool again = true;

	while (again && (f = fopen("/proc/mounts", "r"))) {
		again = false;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "%*s %511s", mnt) == 1 &&
			    !strncmp(mnt, base, strlen(base)) && umount2(mnt, MNT_DETACH) == 0)
				again = true;
		fclose(f);
	}
	cb_rm_tree(base);
}

static void teardown(void)
{
	cb_rm_tree(dir);
	for (int i = 0; i < NKEYS; i++)
		key_free(&keys[i]);
}

static void quiet(void *ctx, const char *line)
{
	(void)ctx; (void)line;
}

static struct ledger *open_at(const char *path, bool validator)
{
	struct ledger_config cfg = {
		.data_dir = path, .genesis = &gen,
		.validator_key = validator ? &keys[K_VAL] : NULL, .log = quiet,
	};
	struct ledger *l = NULL;
	char why[WHY_MAX];
	int rc = ledger_open(&l, &cfg, why);

	ck_assert_msg(rc == 0, "ledger_open: %s (%s)", why, tally_strerror(rc));
	return l;
}

/* --- transactions --------------------------------------------------------- */

static void tx_base(struct tx *t, enum tx_kind kind, int who, uint64_t nonce)
{
	memset(t, 0, sizeof(*t));
	t->version = TX_VERSION;
	t->kind = kind;
	strcpy(t->chain_id, CHAIN);
	memcpy(t->signer, keys[who].pub, PUBKEY_LEN);
	t->nonce = nonce;
}

static void tx_finish(struct tx *t, int who, struct signed_tx *out)
{
	lt_sign(t, &keys[who], &gen, out);
}

static void make_transfer(struct signed_tx *out, int from, int to, uint64_t nonce, uint64_t amount)
{
	struct tx t;

	tx_base(&t, TX_TRANSFER, from, nonce);
	memcpy(t.u.transfer.to, keys[to].pub, PUBKEY_LEN);
	t.u.transfer.amount = amount;
	tx_finish(&t, from, out);
}

static void make_open(struct signed_tx *out, uint64_t nonce, uint64_t deposit)
{
	struct tx t;
	struct lease_contract *c = &t.u.open;

	tx_base(&t, TX_LEASE_OPEN, K_TENANT, nonce);
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, CHAIN);
	memcpy(c->tenant, keys[K_TENANT].pub, PUBKEY_LEN);
	memcpy(c->provider, keys[K_PROV].pub, PUBKEY_LEN);
	c->nonce = nonce;
	c->expiry = EXPIRY;
	c->vm.vcpus = 2;
	c->vm.memory_mib = 1024;
	c->vm.disk_gib = 10;
	strcpy(c->vm.image, "debian-12");
	c->duration_s = 3600;
	c->deposit = deposit;
	c->interval_s = INTERVAL;
	c->prices.vcpu_second = 100;
	c->prices.mem_gib_second = 10;
	c->sla.max_delay_ppm = 100000;
	c->sla.credit_ppm = 100000;
	tx_finish(&t, K_TENANT, out);
}

/* The provider's announcement of make_open's image, prices and interval. */
static void make_announce(struct signed_tx *out, uint64_t nonce)
{
	struct signed_tx open;
	struct tx t, o;

	make_open(&open, 0, 1);
	ck_assert_int_eq(tx_decode(&o, open.bytes, open.len), 0);
	tx_base(&t, TX_PROVIDER, K_PROV, nonce);
	test_offer_for(&o.u.open, &t.u.provider);
	tx_finish(&t, K_PROV, out);
}

static void make_start(struct signed_tx *out, const uint8_t lease[HASH_LEN], uint64_t nonce)
{
	struct tx t;

	tx_base(&t, TX_LEASE_START, K_PROV, nonce);
	memcpy(t.u.start.lease_id, lease, LEASE_ID_LEN);
	tx_finish(&t, K_PROV, out);
}

/* One full interval with one vCPU busy: charge RECORD_CHARGE. */
static void make_usage(struct signed_tx *out, int who, const uint8_t lease[HASH_LEN],
		       uint64_t nonce, uint64_t seq, const uint8_t prev[HASH_LEN], uint64_t start)
{
	struct tx t;
	struct usage_record *u = &t.u.usage;

	tx_base(&t, TX_USAGE, who, nonce);
	memcpy(u->lease_id, lease, LEASE_ID_LEN);
	u->seq = seq;
	if (prev)
		memcpy(u->prev_hash, prev, HASH_LEN);
	u->start_ns = start;
	u->end_ns = start + INTERVAL * SEC;
	u->cpu_ns = INTERVAL * SEC;
	u->mem_mib = 1024;
	u->mem_peak_bytes = 512u << 20;
	u->gpu_source = GPU_SOURCE_NONE;
	tx_finish(&t, who, out);
}

static void make_close(struct signed_tx *out, int who, const uint8_t lease[HASH_LEN],
		       uint64_t nonce, uint8_t reason)
{
	struct tx t;

	tx_base(&t, TX_LEASE_CLOSE, who, nonce);
	memcpy(t.u.close.lease_id, lease, LEASE_ID_LEN);
	t.u.close.reason = reason;
	tx_finish(&t, who, out);
}

static void submit_ok(struct ledger *l, const struct signed_tx *s)
{
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX];
	int rc = ledger_submit(l, s->bytes, s->len, hash, why);

	ck_assert_msg(rc == 0, "submit: %s (%s)", why, tally_strerror(rc));
	ck_assert_mem_eq(hash, s->hash, HASH_LEN);
}

static int submit_err(struct ledger *l, const struct signed_tx *s, char *why)
{
	uint8_t hash[HASH_LEN];

	return ledger_submit(l, s->bytes, s->len, hash, why);
}

static uint64_t balance(struct ledger *l, int who)
{
	return lt_balance(l, keys[who].pub);
}

/* Everything money can be: balances, escrows and stake. */
static uint64_t total_supply(struct ledger *l)
{
	struct validator_entry v;
	struct lease *ls;
	size_t n;
	uint64_t sum = 0;

	for (int i = 0; i < NKEYS; i++)
		sum += balance(l, i);
	ck_assert_int_eq(ledger_validator(l, keys[K_VAL].pub, &v), 0);
	sum += v.stake;
	ck_assert_int_eq(ledger_leases(l, NULL, &ls, &n), 0);
	for (size_t i = 0; i < n; i++)
		sum += ls[i].escrow;
	free(ls);
	return sum;
}

/* A chain with a little of everything: transfers, a lease with usage. */
struct flow {
	uint8_t lease[HASH_LEN];
	uint64_t started_ns;
	uint64_t time;
	uint64_t tenant_nonce, prov_nonce;
	uint8_t last_usage[HASH_LEN];
	uint64_t seq;
	bool announced;
};

static void flow_open(struct ledger *l, struct flow *f, uint64_t deposit)
{
	struct signed_tx s;
	struct lease le;

	if (!f->announced) {
		/* In the LEASE_OPEN's block, before it. */
		make_announce(&s, f->prov_nonce++);
		submit_ok(l, &s);
		f->announced = true;
	}
	make_open(&s, f->tenant_nonce++, deposit);
	memcpy(f->lease, s.hash, HASH_LEN);
	submit_ok(l, &s);
	lt_produce(l, f->time += SEC);
	make_start(&s, f->lease, f->prov_nonce++);
	submit_ok(l, &s);
	lt_produce(l, f->time += SEC);
	ck_assert_int_eq(ledger_lease(l, f->lease, &le), 0);
	ck_assert_int_eq(le.state, LEASE_RUNNING);
	f->started_ns = le.started_ns;
	ck_assert_uint_eq(f->started_ns, f->time);
}

/* n records of INTERVAL s each, committed in a block once their time has
 * passed: a record may not end after the block that commits it. */
static void flow_usage(struct ledger *l, struct flow *f, int n)
{
	struct signed_tx s;

	for (int i = 0; i < n; i++) {
		make_usage(&s, K_PROV, f->lease, f->prov_nonce++, f->seq,
			   f->seq ? f->last_usage : NULL, f->started_ns + f->seq * INTERVAL * SEC);
		submit_ok(l, &s);
		memcpy(f->last_usage, s.hash, HASH_LEN);
		f->seq++;
	}
	f->time += SEC;
	if (f->time < f->started_ns + f->seq * INTERVAL * SEC)
		f->time = f->started_ns + f->seq * INTERVAL * SEC;
	lt_produce(l, f->time);
}

static void build_chain(struct ledger *l, struct flow *f)
{
	struct signed_tx s;

	memset(f, 0, sizeof(*f));
	f->time = T0;
	make_transfer(&s, K_OTHER, K_PROV, 0, 1000);
	submit_ok(l, &s);
	lt_produce(l, f->time += SEC);
	flow_open(l, f, 1000000);
	flow_usage(l, f, 2);
	flow_usage(l, f, 1);
}

/* --- persistence ------------------------------------------------------------ */

START_TEST(test_reopen_same_chain)
{
	struct ledger_status a, b;
	struct block_header h1, h2;
	struct flow f;
	struct ledger *l = open_at(dir, true);
	uint64_t bal[NKEYS];

	build_chain(l, &f);
	ck_assert_int_eq(ledger_status(l, &a), 0);
	ck_assert_uint_eq(a.height, 5);
	ck_assert_uint_eq(a.usage_size, 3);
	for (int i = 0; i < NKEYS; i++)
		bal[i] = balance(l, i);
	ck_assert_int_eq(ledger_header(l, 4, &h1), 0);
	ledger_close(l);

	l = open_at(dir, true);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_uint_eq(b.height, a.height);
	ck_assert_mem_eq(b.last_block_id, a.last_block_id, HASH_LEN);
	ck_assert_mem_eq(b.state_root, a.state_root, HASH_LEN);
	ck_assert_mem_eq(b.usage_root, a.usage_root, HASH_LEN);
	ck_assert_uint_eq(b.time_ns, a.time_ns);
	for (int i = 0; i < NKEYS; i++)
		ck_assert_uint_eq(balance(l, i), bal[i]);
	ck_assert_int_eq(ledger_header(l, 4, &h2), 0);
	ck_assert_mem_eq(&h1, &h2, sizeof(h1));
	/* The chain continues where it stopped. */
	flow_usage(l, &f, 1);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_uint_eq(b.height, 6);
	ck_assert_uint_eq(b.usage_size, 4);
	ledger_close(l);
}
END_TEST

/* sql on the store in data_dir, with a second connection (as an operator's
 * sqlite3 would). */
static void store_sql(const char *data_dir, const char *sql)
{
	char path[4096], *err = NULL;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s/ledger.sqlite", data_dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql, err);
	sqlite3_close(db);
}

/* The first column of the first row of sql, as an integer. */
static long long store_int(const char *data_dir, const char *sql)
{
	char path[4096];
	sqlite3_stmt *st;
	sqlite3 *db;
	long long v;

	snprintf(path, sizeof(path), "%s/ledger.sqlite", data_dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
	v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Back to schema version 3's shape: the usage table with its foreign key
 * to txs and the index usage_tx that key needed, as a node of that version
 * wrote it. */
static const char to_v3_sql[] =
	"PRAGMA foreign_keys=OFF; BEGIN;"
	" CREATE TABLE usage_v3(idx INTEGER PRIMARY KEY, tx_hash BLOB NOT NULL REFERENCES"
	" txs(hash) DEFERRABLE INITIALLY DEFERRED, lease_id BLOB NOT NULL, seq INTEGER NOT NULL,"
	" UNIQUE(lease_id, seq));"
	" INSERT INTO usage_v3 SELECT idx, tx_hash, lease_id, seq FROM usage;"
	" DROP TABLE usage; ALTER TABLE usage_v3 RENAME TO usage;"
	" CREATE INDEX usage_tx ON usage(tx_hash);"
	" UPDATE meta SET value = X'03000000' WHERE key = 'schema_version'; COMMIT;";

/* The usage table as version 4 has it: no foreign key, no usage_tx. */
static void assert_usage_v4(const char *data_dir)
{
	ck_assert_int_eq(store_int(data_dir, "SELECT hex(value) = '04000000' FROM meta"
				   " WHERE key = 'schema_version'"), 1);
	ck_assert_int_eq(store_int(data_dir, "SELECT count(*) FROM"
				   " pragma_foreign_key_list('usage')"), 0);
	ck_assert_int_eq(store_int(data_dir, "SELECT count(*) FROM sqlite_master WHERE name IN"
				   " ('usage_tx', 'usage_v4')"), 0);
}

/* What a tenant reads of the flow's lease: every usage record in seq
 * order with its transaction and block, each with an inclusion proof that
 * holds against the usage root, and the lease in its tenant's and its
 * provider's lists. */
static void check_usage_reads(struct ledger *l, const struct flow *f)
{
	struct lease_filter byt = { .tenant = keys[K_TENANT].pub };
	struct lease_filter byp = { .provider = keys[K_PROV].pub, .state = LEASE_RUNNING };
	struct ledger_status st;
	struct ledger_usage *u;
	struct lease *ls;
	uint8_t root[HASH_LEN], leaf[HASH_LEN], proof[MERKLE_MAX_PROOF][HASH_LEN];
	size_t n, np;

	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_int_eq(ledger_usage_root(l, st.usage_size, root), 0);
	ck_assert_mem_eq(root, st.usage_root, HASH_LEN);
	ck_assert_int_eq(ledger_lease_usage(l, f->lease, &u, &n), 0);
	ck_assert_uint_eq(n, f->seq);
	for (size_t i = 0; i < n; i++) {
		uint8_t h[HASH_LEN];

		ck_assert_uint_eq(u[i].seq, i);
		ck_assert_ptr_nonnull(u[i].tx);
		tx_hash(u[i].tx, u[i].tx_len, h);
		ck_assert_mem_eq(h, u[i].tx_hash, HASH_LEN);
		ck_assert_uint_ge(u[i].height, 1);
		ck_assert_int_eq(ledger_usage_inclusion(l, u[i].index, st.usage_size, leaf, proof,
							&np), 0);
		ck_assert_int_eq(merkle_inclusion_verify(u[i].index, st.usage_size, leaf, proof, np,
							 root), 0);
	}
	ledger_usage_free(u, n);
	ck_assert_int_eq(ledger_leases(l, &byt, &ls, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_mem_eq(ls[0].id, f->lease, LEASE_ID_LEN);
	free(ls);
	ck_assert_int_eq(ledger_leases(l, &byp, &ls, &n), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert_mem_eq(ls[0].id, f->lease, LEASE_ID_LEN);
	free(ls);
}

/* Back to schema version 2's shape (after version 3's, to_v3_sql): each
 * txs row with its own copy of the transaction's bytes (and its kind and
 * signer), as a node of that version wrote it. */
static const char to_v2_sql[] =
	"PRAGMA foreign_keys=OFF; BEGIN;"
	" CREATE TABLE txs_v2(hash BLOB PRIMARY KEY, height INTEGER NOT NULL REFERENCES"
	" blocks(height) DEFERRABLE INITIALLY DEFERRED, idx INTEGER NOT NULL, kind INTEGER NOT"
	" NULL, signer BLOB NOT NULL, bytes BLOB NOT NULL) WITHOUT ROWID;"
	" INSERT INTO txs_v2 SELECT t.hash, t.height, t.idx, 0, zeroblob(32),"
	" substr(b.body, t.off + 1, t.len) FROM txs t JOIN blocks b ON b.height = t.height;"
	" DROP TABLE txs; ALTER TABLE txs_v2 RENAME TO txs;"
	" CREATE INDEX txs_height ON txs(height);"
	" UPDATE meta SET value = X'02000000' WHERE key = 'schema_version'; COMMIT;";

/* Every committed transaction found by hash: its bytes, block and index
 * those of the block's own copy. Returns how many. */
static int check_every_tx(struct ledger *l, uint64_t tip)
{
	int n = 0;

	for (uint64_t h = 1; h <= tip; h++) {
		struct block b;

		ck_assert_int_eq(ledger_block(l, h, &b), 0);
		for (size_t i = 0; i < b.ntx; i++) {
			uint8_t hash[HASH_LEN], *bytes;
			uint64_t height;
			uint32_t index;
			size_t len;

			tx_hash(b.txs[i].bytes, b.txs[i].len, hash);
			ck_assert_int_eq(ledger_tx(l, hash, &bytes, &len, &height, &index), 0);
			ck_assert_uint_eq(height, h);
			ck_assert_uint_eq(index, i);
			ck_assert_uint_eq(len, b.txs[i].len);
			ck_assert_mem_eq(bytes, b.txs[i].bytes, len);
			free(bytes);
			n++;
		}
		block_free(&b);
	}
	return n;
}

START_TEST(test_store_upgrade_from_v2)
{
	struct ledger_config cfg = { .data_dir = dir, .genesis = &gen, .log = quiet };
	struct ledger_status a, b;
	struct flow f;
	struct ledger *l = open_at(dir, true);
	char why[WHY_MAX], path[4096];
	uint64_t h;
	int ntx;

	build_chain(l, &f);
	ck_assert_int_eq(ledger_status(l, &a), 0);
	ntx = check_every_tx(l, a.height);
	ck_assert_int_ge(ntx, 6);
	ledger_close(l);
	store_sql(dir, to_v3_sql);
	store_sql(dir, to_v2_sql);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM pragma_table_info('txs')"
				   " WHERE name = 'bytes'"), 1);

	/* A damaged version-2 store (a row whose transaction no block holds)
	 * is refused, and left as it was. */
	store_sql(dir, "UPDATE txs SET hash = zeroblob(32) WHERE idx = 0 AND height ="
		       " (SELECT min(height) FROM txs)");
	ck_assert_int_eq(ledger_open(&l, &cfg, why), TALLY_E_STORE);
	ck_assert_msg(strstr(why, "do not match") != NULL, "%s", why);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM pragma_table_info('txs')"
				   " WHERE name = 'bytes'"), 1);
	ck_assert_int_eq(store_int(dir, "SELECT hex(value) = '02000000' FROM meta"
				   " WHERE key = 'schema_version'"), 1);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM sqlite_master WHERE name ="
				   " 'txs_v3'"), 0);

	/* Rebuilt from scratch, then upgraded: the same chain, each
	 * transaction read from its block. */
	cb_rm_tree(dir);
	l = open_at(dir, true);
	build_chain(l, &f);
	ledger_close(l);
	store_sql(dir, to_v3_sql);
	store_sql(dir, to_v2_sql);
	/* Verification reads; it does not upgrade. */
	ck_assert_int_eq(ledger_verify_store(dir, &gen, &h, why), TALLY_E_VERSION);
	ck_assert_msg(strstr(why, "start tallyd on it once") != NULL, "%s", why);
	/* Through version 3 to this one, each step whole. */
	l = open_at(dir, true);
	assert_usage_v4(dir);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM pragma_table_info('txs')"
				   " WHERE name = 'bytes'"), 0);
	check_usage_reads(l, &f);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_uint_eq(b.height, a.height);
	ck_assert_mem_eq(b.last_block_id, a.last_block_id, HASH_LEN);
	ck_assert_mem_eq(b.state_root, a.state_root, HASH_LEN);
	ck_assert_int_eq(check_every_tx(l, b.height), ntx);
	/* The chain goes on, and its store verifies as an auditor's would. */
	flow_usage(l, &f, 2);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_uint_eq(b.height, a.height + 1);
	ck_assert_int_eq(check_every_tx(l, b.height), ntx + 2);
	ledger_close(l);
	snprintf(path, sizeof(path), "%s", dir);
	ck_assert_msg(ledger_verify_store(path, &gen, &h, why) == 0, "%s", why);
	ck_assert_uint_eq(h, b.height);

	/* A store of a newer schema (a newer tallyd upgraded it) is refused
	 * with its version, before anything else is read, and not changed. */
	store_sql(dir, "UPDATE meta SET value = X'05000000' WHERE key = 'schema_version'");
	ck_assert_int_eq(ledger_open(&l, &cfg, why), TALLY_E_VERSION);
	ck_assert_msg(strstr(why, "schema version 5, newer than this tallyd's 4") != NULL, "%s",
		      why);
	ck_assert_int_eq(store_int(dir, "SELECT hex(value) = '05000000' FROM meta"
				   " WHERE key = 'schema_version'"), 1);
	store_sql(dir, "UPDATE meta SET value = X'04000000' WHERE key = 'schema_version'");

		/* A row that points at other bytes does not serve them. */
	store_sql(dir, "UPDATE txs SET off = off + 1 WHERE height = 1 AND idx = 0");
	l = open_at(dir, true);
	{
		struct block blk;
		uint8_t hash[HASH_LEN], *bytes = NULL;
		size_t len;

		ck_assert_int_eq(ledger_block(l, 1, &blk), 0);
		tx_hash(blk.txs[0].bytes, blk.txs[0].len, hash);
		ck_assert_int_eq(ledger_tx(l, hash, &bytes, &len, NULL, NULL), TALLY_E_STORE);
		ck_assert_ptr_null(bytes);
		block_free(&blk);
	}
	ledger_close(l);
}
END_TEST

/* A store of schema version 3 (usage rows with a foreign key to txs and
 * an index by transaction) is upgraded in place: the same rows, every read
 * a tenant makes of its usage the same, and the chain goes on. */
START_TEST(test_store_upgrade_from_v3)
{
	struct ledger_status a, b;
	struct flow f;
	struct ledger *l = open_at(dir, true);
	char why[WHY_MAX];
	long long rows;
	uint64_t h;

	build_chain(l, &f);
	check_usage_reads(l, &f);
	ck_assert_int_eq(ledger_status(l, &a), 0);
	ledger_close(l);
	store_sql(dir, to_v3_sql);
	rows = store_int(dir, "SELECT count(*) FROM usage");
	ck_assert_int_eq(rows, (long long)f.seq);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM pragma_foreign_key_list('usage')"), 1);
	ck_assert_int_eq(ledger_verify_store(dir, &gen, &h, why), TALLY_E_VERSION);
	ck_assert_msg(strstr(why, "schema version 3: start tallyd on it once") != NULL, "%s",
		      why);

	/* An upgrade that fails half-way (a table of its own name in the
	 * way is dropped first; a usage row whose lease is stored twice at
	 * one seq cannot be copied) leaves version 3 as it was. */
	store_sql(dir, "PRAGMA foreign_keys=OFF; DROP INDEX usage_tx; CREATE TABLE tmp AS"
		       " SELECT * FROM usage; DROP TABLE usage; CREATE TABLE usage(idx INTEGER"
		       " PRIMARY KEY, tx_hash BLOB NOT NULL REFERENCES txs(hash) DEFERRABLE"
		       " INITIALLY DEFERRED, lease_id BLOB NOT NULL, seq INTEGER NOT NULL);"
		       " INSERT INTO usage SELECT * FROM tmp; DROP TABLE tmp;"
		       " CREATE INDEX usage_tx ON usage(tx_hash);"
		       " INSERT INTO usage SELECT idx + 1000, tx_hash, lease_id, seq FROM usage"
		       " WHERE idx = 0;");
	{
		struct ledger_config cfg = { .data_dir = dir, .genesis = &gen, .log = quiet };

		ck_assert_int_eq(ledger_open(&l, &cfg, why), TALLY_E_STORE);
		ck_assert_msg(strstr(why, "cannot upgrade") != NULL &&
			      strstr(why, "from schema version 3") != NULL, "%s", why);
	}
	ck_assert_int_eq(store_int(dir, "SELECT hex(value) = '03000000' FROM meta"
				   " WHERE key = 'schema_version'"), 1);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM usage"), rows + 1);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM sqlite_master WHERE name ="
				   " 'usage_v4'"), 0);
	store_sql(dir, "DELETE FROM usage WHERE idx >= 1000; CREATE UNIQUE INDEX usage_ls"
		       " ON usage(lease_id, seq);");

	l = open_at(dir, true);
	assert_usage_v4(dir);
	ck_assert_int_eq(store_int(dir, "SELECT count(*) FROM usage"), rows);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_uint_eq(b.height, a.height);
	ck_assert_mem_eq(b.usage_root, a.usage_root, HASH_LEN);
	ck_assert_mem_eq(b.state_root, a.state_root, HASH_LEN);
	check_usage_reads(l, &f);
	flow_usage(l, &f, 2);
	check_usage_reads(l, &f);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ledger_close(l);
	ck_assert_msg(ledger_verify_store(dir, &gen, &h, why) == 0, "%s", why);
	ck_assert_uint_eq(h, b.height);
}
END_TEST

/* A lease as the store keeps it: opened with a contract of the tests'. */
static void memo_lease(struct lease *l)
{
	struct lease_contract c;
	static const uint8_t id[LEASE_ID_LEN] = { 0x51, 0x52, 0x53, 0x54 };
	char why[WHY_MAX];

	memset(&c, 0, sizeof(c));
	c.version = CONTRACT_VERSION;
	strcpy(c.chain_id, CHAIN);
	memset(c.tenant, 0x11, PUBKEY_LEN);
	memset(c.provider, 0x22, PUBKEY_LEN);
	c.expiry = EXPIRY;
	c.vm.vcpus = 1;
	c.vm.memory_mib = 1024;
	c.vm.disk_gib = 10;
	strcpy(c.vm.image, "debian-12");
	c.duration_s = 3600;
	c.deposit = 120000;
	c.interval_s = INTERVAL;
	c.prices.vcpu_second = 100;
	c.prices.mem_gib_second = 10;
	c.sla.max_delay_ppm = 50000;
	c.sla.credit_ppm = 100000;
	ck_assert_msg(lease_open(l, id, &c, 1, why) == 0, "%s", why);
}

static void memo_put(struct state_backend *be, const struct lease *l)
{
	uint8_t key[STATE_KEY_LEN];
	struct enc e;

	enc_init(&e);
	lease_encode_to(&e, l);
	ck_assert_int_eq(enc_error(&e), 0);
	state_key(key, STATE_KEY_LEASE, l->id);
	ck_assert_int_eq(be->put(be->ctx, key, sizeof(key), e.buf, e.len), 0);
	enc_free(&e);
}

/* The state of l's entry as be reads it. */
static unsigned memo_state(struct state_backend *be, const struct lease *l)
{
	uint8_t key[STATE_KEY_LEN], val[STATE_VALUE_MAX];
	struct lease got;
	size_t n;

	state_key(key, STATE_KEY_LEASE, l->id);
	ck_assert_int_eq(be->get(be->ctx, key, sizeof(key), val, sizeof(val), &n), 0);
	ck_assert_int_eq(lease_decode(&got, val, n), 0);
	return got.state;
}

static int count_lease(void *ctx, const struct lease *l)
{
	(void)l;
	(*(int *)ctx)++;
	return 0;
}

static int leases_in(struct store *st, uint8_t state)
{
	struct lease_filter f = { .state = state };
	int n = 0;

	ck_assert_int_eq(store_lease_each(st, &f, count_lease, &n), 0);
	return n;
}

/* The writer remembers the state entries, leases rows and usage nodes it
 * read and wrote, so as not to ask SQLite for them again; a rolled-back
 * block took its writes away, and what it remembered of them goes too. */
START_TEST(test_store_rollback_forgets)
{
	struct store *st;
	struct state_backend be;
	struct merkle_store *m;
	struct lease l;
	uint8_t a[HASH_LEN], b[HASH_LEN], c[HASH_LEN], root[HASH_LEN], want[HASH_LEN], got[HASH_LEN];
	char path[128], why[WHY_MAX];

	snprintf(path, sizeof(path), "%s/memo.sqlite", dir);
	ck_assert_msg(store_open(&st, path, false, why) == 0, "%s", why);
	be = store_state_backend(st);
	m = store_merkle(st);
	memset(a, 0xa1, HASH_LEN);
	memset(b, 0xb2, HASH_LEN);
	memset(c, 0xc3, HASH_LEN);
	memo_lease(&l);
	ck_assert_int_eq(store_begin(st), 0);
	memo_put(&be, &l);
	ck_assert_int_eq(be.usage_append(be.ctx, 0, a, a, l.id, 0), 0);
	ck_assert_int_eq(store_commit(st), 0);
	ck_assert_int_eq(leases_in(st, LEASE_OPENED), 1);

	/* A block that starts the lease and appends a record, rolled back. */
	ck_assert_int_eq(store_begin(st), 0);
	ck_assert_msg(lease_start(&l, l.contract.provider, T0, why) == 0, "%s", why);
	memo_put(&be, &l);
	ck_assert_int_eq(be.usage_append(be.ctx, 1, b, b, l.id, 1), 0);
	ck_assert_int_eq(leases_in(st, LEASE_RUNNING), 1);
	ck_assert_uint_eq(memo_state(&be, &l), LEASE_RUNNING);
	store_rollback(st);
	ck_assert_uint_eq(memo_state(&be, &l), LEASE_OPENED);
	ck_assert_int_eq(leases_in(st, LEASE_OPENED), 1);
	ck_assert_int_eq(leases_in(st, LEASE_RUNNING), 0);
	ck_assert_int_eq(m->get(m->ctx, 0, 1, got), TALLY_E_NOTFOUND);
	ck_assert_int_eq(m->get(m->ctx, 1, 0, got), TALLY_E_NOTFOUND);

	/* The same start again, and another record in that place. */
	ck_assert_int_eq(store_begin(st), 0);
	memo_put(&be, &l);
	ck_assert_int_eq(be.usage_append(be.ctx, 1, c, c, l.id, 1), 0);
	ck_assert_int_eq(store_commit(st), 0);
	ck_assert_int_eq(leases_in(st, LEASE_RUNNING), 1);
	ck_assert_int_eq(leases_in(st, LEASE_OPENED), 0);
	merkle_node_hash(a, c, want);
	ck_assert_int_eq(be.usage_root(be.ctx, 2, root), 0);
	ck_assert_mem_eq(root, want, HASH_LEN);
	store_close(st);

	/* What was committed, read afresh. */
	ck_assert_msg(store_open(&st, path, false, why) == 0, "%s", why);
	be = store_state_backend(st);
	ck_assert_int_eq(be.usage_root(be.ctx, 2, root), 0);
	ck_assert_mem_eq(root, want, HASH_LEN);
	ck_assert_int_eq(leases_in(st, LEASE_RUNNING), 1);
	store_close(st);
}
END_TEST

START_TEST(test_reopen_other_genesis_refused)
{
	struct ledger_config cfg = { .data_dir = dir, .genesis = &gen, .log = quiet };
	struct ledger *l = open_at(dir, true);
	char why[WHY_MAX];

	ledger_close(l);
	gen_accounts[0].balance++;
	ck_assert_int_eq(ledger_open(&l, &cfg, why), TALLY_E_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "another genesis"));
	gen_accounts[0].balance--;
	strcpy(gen.chain_id, "tally-other");
	ck_assert_int_eq(ledger_open(&l, &cfg, why), TALLY_E_CHAIN_ID);
	strcpy(gen.chain_id, CHAIN);
}
END_TEST

/* Sets the first byte of every state entry of type (its key's first byte)
 * to byte, or cuts each to its first len bytes when len > 0. */
static void state_doctor(const char *data_dir, uint8_t type, uint8_t byte, int len)
{
	char path[4096];
	sqlite3_stmt *rd, *wr;
	sqlite3 *db;
	uint8_t lo = type, hi = (uint8_t)(type + 1);

	snprintf(path, sizeof(path), "%s/ledger.sqlite", data_dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT key, value FROM state WHERE key >= ?1"
					    " AND key < ?2", -1, &rd, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "UPDATE state SET value = ?2 WHERE key = ?1",
					    -1, &wr, NULL), SQLITE_OK);
	sqlite3_bind_blob(rd, 1, &lo, 1, SQLITE_STATIC);
	sqlite3_bind_blob(rd, 2, &hi, 1, SQLITE_STATIC);
	while (sqlite3_step(rd) == SQLITE_ROW) {
		int n = sqlite3_column_bytes(rd, 1);
		uint8_t v[4096];

		ck_assert_int_le(n, (int)sizeof(v));
		memcpy(v, sqlite3_column_blob(rd, 1), (size_t)n);
		v[0] = byte;
		sqlite3_bind_blob(wr, 1, sqlite3_column_blob(rd, 0), sqlite3_column_bytes(rd, 0),
				  SQLITE_TRANSIENT);
		sqlite3_bind_blob(wr, 2, v, len > 0 && len < n ? len : n, SQLITE_TRANSIENT);
		ck_assert_int_eq(sqlite3_step(wr), SQLITE_DONE);
		sqlite3_reset(wr);
	}
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	sqlite3_close(db);
}

/* A store whose chain an earlier tallyd began, with state entries of a
 * format this one does not read (a lease state of version 2, a provider
 * entry of version 1), is refused at open, naming the entry: the node came
 * up on it and answered every lease and registry read with a 500. A
 * damaged entry is named as damage. */
START_TEST(test_reopen_older_state_format_refused)
{
	struct ledger_config cfg = { .data_dir = dir, .genesis = &gen, .log = quiet };
	struct ledger *l = open_at(dir, true);
	char why[WHY_MAX];
	struct flow f;
	int rc;

	build_chain(l, &f);
	ledger_close(l);
	state_doctor(dir, STATE_KEY_LEASE, 2, 0);
	rc = ledger_open(&l, &cfg, why);
	ck_assert_msg(rc == TALLY_E_VERSION, "%s", why);
	ck_assert_msg(strstr(why, "is a lease state of version 2, which this tallyd does not"
				  " read") && strstr(why, "begin a new chain"), "%s", why);
	state_doctor(dir, STATE_KEY_LEASE, 3, 0);
	state_doctor(dir, STATE_KEY_PROVIDER, 1, 0);
	rc = ledger_open(&l, &cfg, why);
	ck_assert_msg(rc == TALLY_E_VERSION, "%s", why);
	ck_assert_msg(strstr(why, "registry entry is of version 1"), "%s", why);
	state_doctor(dir, STATE_KEY_PROVIDER, PROVIDER_ENTRY_VERSION, 0);
	/* As it was: it opens, and the chain goes on. */
	l = open_at(dir, true);
	flow_usage(l, &f, 1);
	ledger_close(l);
	state_doctor(dir, STATE_KEY_LEASE, 3, 20);
	rc = ledger_open(&l, &cfg, why);
	ck_assert_msg(rc == TALLY_E_STORE, "%s", why);
	ck_assert_msg(strstr(why, "is damaged") && strstr(why, "lease state of version 3"),
		      "%s", why);
}
END_TEST

/* --- chain verification of the stored chain ------------------------------------ */

static void verify_ok(const char *path)
{
	char why[WHY_MAX];
	uint64_t h;
	int rc = ledger_verify_store(path, &gen, &h, why);

	ck_assert_msg(rc == 0, "verify: %s", why);
}

static void blob_set(sqlite3 *db, const char *col, uint64_t height, const void *p, int n)
{
	char sql[128];
	sqlite3_stmt *st;

	snprintf(sql, sizeof(sql), "UPDATE blocks SET %s = ?1 WHERE height = ?2", col);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, p, n, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)height);
	ck_assert_int_eq(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
}

START_TEST(test_verify_detects_every_byte)
{
	static const char *const cols[] = { "header", "body", "cert" };
	struct ledger *l = open_at(dir, true);
	struct signed_tx s;
	char path[128], why[WHY_MAX];
	sqlite3 *db;
	uint64_t h;
	size_t flips = 0;

	make_transfer(&s, K_OTHER, K_PROV, 0, 10);
	submit_ok(l, &s);
	lt_produce(l, T0 + SEC);
	make_transfer(&s, K_TENANT, K_OTHER, 0, 20);
	submit_ok(l, &s);
	lt_produce(l, T0 + 2 * SEC);
	ledger_close(l);
	verify_ok(dir);

	snprintf(path, sizeof(path), "%s/ledger.sqlite", dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	for (uint64_t height = 1; height <= 2; height++) {
		for (int c = 0; c < 3; c++) {
			struct stored_block sb;
			uint8_t *blob;
			size_t len;

			l = open_at(dir, false);
			ck_assert_int_eq(ledger_block_raw(l, height, &sb), 0);
			ledger_close(l);
			blob = c == 0 ? sb.header : c == 1 ? sb.body : sb.cert;
			len = c == 0 ? sb.header_len : c == 1 ? sb.body_len : sb.cert_len;
			for (size_t i = 0; i < len; i++) {
				blob[i] ^= 0x01;
				blob_set(db, cols[c], height, blob, (int)len);
				ck_assert_msg(ledger_verify_store(dir, &gen, &h, why) != 0,
					      "flipped byte %zu of %s %llu went unnoticed", i,
					      cols[c], (unsigned long long)height);
				blob[i] ^= 0x01;
				flips++;
			}
			blob_set(db, cols[c], height, blob, (int)len);
			stored_block_free(&sb);
			verify_ok(dir);
		}
	}
	sqlite3_close(db);
	ck_assert_uint_gt(flips, 500);
}
END_TEST

/* from's bytes into to (a closed store's file). */
static void file_copy(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
	ck_assert_int_eq(ferror(in), 0);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
}

/* The state a store keeps beside its blocks is checked against the state
 * the blocks make (ledger_verify_store): an entry changed, removed or
 * added, a kept bucket hash changed, a usage log node changed; each is
 * refused though every block verifies, and the store put back verifies. */
START_TEST(test_verify_detects_stored_state)
{
	static const struct {
		const char *sql;
		int err;
	} spoil[] = {
		{ "UPDATE state SET value = CAST(X'00' || value AS BLOB)"
		  " WHERE key = (SELECT max(key) FROM state)", TALLY_E_STATEROOT },
		{ "DELETE FROM state WHERE key = (SELECT min(key) FROM state)", TALLY_E_STATEROOT },
		{ "INSERT INTO state(key, bucket, value) SELECT X'01"   /* an account no one has */
		  "0000000000000000000000000000000000000000000000000000000000000000', bucket,"
		  " value FROM state WHERE key = (SELECT max(key) FROM state)", TALLY_E_STATEROOT },
		{ "UPDATE buckets SET hash = (SELECT hash FROM buckets ORDER BY bucket DESC LIMIT 1)"
		  " WHERE bucket = (SELECT min(bucket) FROM buckets)", TALLY_E_STATEROOT },
		{ "UPDATE usage_nodes SET hash = zeroblob(32) WHERE level = 0 AND idx = 0",
		  TALLY_E_USAGEROOT },
	};
	struct ledger *l = open_at(dir, true);
	char db[128], good[128], why[WHY_MAX];
	struct flow f;
	uint64_t h;

	build_chain(l, &f);
	ledger_close(l);
	verify_ok(dir);
	snprintf(db, sizeof(db), "%s/ledger.sqlite", dir);
	snprintf(good, sizeof(good), "%s/good.sqlite", dir);
	file_copy(db, good);
	for (size_t i = 0; i < sizeof(spoil) / sizeof(spoil[0]); i++) {
		int rc;

		store_sql(dir, spoil[i].sql);
		rc = ledger_verify_store(dir, &gen, &h, why);
		ck_assert_msg(rc == spoil[i].err, "%s: verify gave %d (%s), not %d", spoil[i].sql,
			      rc, why, spoil[i].err);
		ck_assert_uint_eq(h, 5);   /* the blocks themselves verified */
		file_copy(good, db);
		verify_ok(dir);
	}
}
END_TEST

/* --- mempool refusals ---------------------------------------------------------- */

START_TEST(test_replay_and_wrong_chain)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s, s2;
	char why[WHY_MAX];
	struct tx t;

	make_transfer(&s, K_TENANT, K_OTHER, 0, 5);
	submit_ok(l, &s);
	/* The same bytes again while pending. */
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_REPLAY);
	ck_assert_ptr_nonnull(strstr(why, "already pending"));
	/* Another tx with the pending nonce. */
	make_transfer(&s2, K_TENANT, K_OTHER, 0, 6);
	ck_assert_int_eq(submit_err(l, &s2, why), TALLY_E_REPLAY);
	lt_produce(l, T0 + SEC);
	/* After commit: the nonce is used. */
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_REPLAY);
	ck_assert_msg(strstr(why, "nonce 0 already used by account") != NULL, "%s", why);
	/* Made for another chain. */
	tx_base(&t, TX_TRANSFER, K_TENANT, 1);
	strcpy(t.chain_id, "tally-elsewhere");
	memcpy(t.u.transfer.to, keys[K_OTHER].pub, PUBKEY_LEN);
	t.u.transfer.amount = 1;
	tx_finish(&t, K_TENANT, &s2);
	ck_assert_int_eq(submit_err(l, &s2, why), TALLY_E_CHAIN_ID);
	/* A changed byte breaks the signature. */
	make_transfer(&s2, K_TENANT, K_OTHER, 1, 7);
	s2.bytes[s2.len - 1] ^= 0x80;
	ck_assert_int_eq(submit_err(l, &s2, why), TALLY_E_SIGNATURE);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + 5);
	ledger_close(l);
}
END_TEST

/* A nonce ahead of the account's next one is held until the gap fills,
 * then queued in nonce order with its successors. */
START_TEST(test_nonce_gap)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s[4];
	struct ledger_tx_status ts;
	struct ledger_status st;
	uint64_t next;

	make_transfer(&s[2], K_TENANT, K_OTHER, 2, 5);
	ck_assert(lt_submit_held(l, &s[2]));
	ck_assert_int_eq(ledger_tx_status(l, s[2].hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_HELD);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 0);
	ck_assert_uint_eq(st.mempool_held, 1);
	make_transfer(&s[0], K_TENANT, K_OTHER, 0, 5);
	ck_assert(!lt_submit_held(l, &s[0]));
	/* Held ones do not count for the next nonce. */
	ck_assert_int_eq(ledger_next_nonce(l, keys[K_TENANT].pub, &next), 0);
	ck_assert_uint_eq(next, 1);
	make_transfer(&s[1], K_TENANT, K_OTHER, 1, 5);
	ck_assert(!lt_submit_held(l, &s[1]));
	ck_assert_int_eq(ledger_next_nonce(l, keys[K_TENANT].pub, &next), 0);
	ck_assert_uint_eq(next, 3);
	ck_assert_int_eq(ledger_tx_status(l, s[2].hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_PENDING);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 3);
	ck_assert_uint_eq(st.mempool_held, 0);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 3);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + 15);
	ledger_close(l);
}
END_TEST

/* The nonces of block `height`'s transactions, in block order. */
static size_t block_nonces(struct ledger *l, uint64_t height, uint64_t *out, size_t max)
{
	struct block b;
	struct tx t;
	size_t n;

	ck_assert_int_eq(ledger_block(l, height, &b), 0);
	for (n = 0; n < b.ntx && n < max; n++) {
		ck_assert_int_eq(tx_decode(&t, b.txs[n].bytes, b.txs[n].len), 0);
		out[n] = t.nonce;
	}
	n = b.ntx;
	block_free(&b);
	return n;
}

/* Submitted backwards, committed in nonce order; two accounts' gaps do
 * not disturb each other. */
START_TEST(test_hold_order)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s;
	uint64_t nonces[16];
	struct ledger_block_result r;

	for (int i = 5; i >= 1; i--) {
		make_transfer(&s, K_TENANT, K_OTHER, (uint64_t)i, 1);
		ck_assert(lt_submit_held(l, &s));
		make_transfer(&s, K_OTHER, K_TENANT, (uint64_t)i, 1);
		ck_assert(lt_submit_held(l, &s));
	}
	make_transfer(&s, K_OTHER, K_TENANT, 0, 1);
	ck_assert(!lt_submit_held(l, &s));
	make_transfer(&s, K_TENANT, K_OTHER, 0, 1);
	ck_assert(!lt_submit_held(l, &s));
	r = lt_produce(l, T0 + SEC);
	ck_assert_uint_eq(r.ntx, 12);
	ck_assert_uint_eq(block_nonces(l, r.height, nonces, 16), 12);
	for (int i = 0; i < 6; i++) {
		ck_assert_uint_eq(nonces[i], (uint64_t)i);          /* K_OTHER's, 0..5 */
		ck_assert_uint_eq(nonces[6 + i], (uint64_t)i);      /* K_TENANT's */
	}
	ledger_close(l);
}
END_TEST

static struct ledger *open_holding(const struct mempool_hold *h)
{
	struct ledger_config cfg = {
		.data_dir = dir, .genesis = &gen, .validator_key = &keys[K_VAL],
		.log = quiet, .hold = h,
	};
	struct ledger *l = NULL;
	char why[WHY_MAX];

	ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	return l;
}

/* A node holds nonce 2 for its gap; a block another node built commits
 * nonces 0..2: the held transaction is committed, not dropped (it was
 * logged as "held for nonce 2, which another transaction of the account
 * used" and counted as a drop). */
START_TEST(test_hold_committed_elsewhere)
{
	char dir2[128];
	struct ledger *a, *b;
	struct signed_tx s[3];
	struct stored_block sb;
	struct ledger_tx_status ts;
	struct ledger_status st;
	char why[WHY_MAX];

	snprintf(dir2, sizeof(dir2), "%s/second", dir);
	a = open_at(dir, true);
	b = open_at(dir2, true);
	for (int i = 0; i < 3; i++) {
		make_transfer(&s[i], K_TENANT, K_OTHER, (uint64_t)i, 1);
		submit_ok(b, &s[i]);
	}
	ck_assert(lt_submit_held(a, &s[2]));
	ck_assert_uint_eq(lt_produce(b, T0 + SEC).ntx, 3);
	ck_assert_int_eq(ledger_block_raw(b, 1, &sb), 0);
	ck_assert_msg(ledger_apply_block(a, sb.body, sb.body_len, sb.cert, sb.cert_len, why) == 0,
		      "%s", why);
	stored_block_free(&sb);
	ck_assert_int_eq(ledger_tx_status(a, s[2].hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_COMMITTED);
	ck_assert_int_eq(ledger_status(a, &st), 0);
	ck_assert_uint_eq(st.mempool_held, 0);
	ck_assert_uint_eq(st.held_dropped, 0);
	ck_assert_uint_eq(balance(a, K_OTHER), OTHER_FUNDS + 3);
	ledger_close(a);
	ledger_close(b);
}
END_TEST

/* The pool keeps each transaction's bytes, not its decoded form, and
 * decodes them again to apply them after a block (the recheck), when a held
 * one's turn comes, and to build a block: every amount here differs, so a
 * transaction decoded from the wrong bytes, applied twice or not at all
 * shows in the balances. A block another node built takes the tenant's
 * nonce 0 with other bytes: the recheck drops the pending one it replaced,
 * keeps the rest and the held one; the held one's gap then fills. */
START_TEST(test_recheck_and_promote_from_bytes)
{
	char dir2[128];
	struct ledger *a, *b;
	struct signed_tx mine0, theirs0, t1, t2, t3, o0;
	struct stored_block sb;
	struct ledger_tx_status ts;
	struct ledger_status st;
	struct ledger_block_result r;
	uint64_t nonces[8], next;
	char why[WHY_MAX];

	snprintf(dir2, sizeof(dir2), "%s/second", dir);
	a = open_at(dir, true);
	b = open_at(dir2, true);
	make_transfer(&mine0, K_TENANT, K_OTHER, 0, 5);
	make_transfer(&theirs0, K_TENANT, K_OTHER, 0, 100);
	make_transfer(&t1, K_TENANT, K_OTHER, 1, 11);
	make_transfer(&t2, K_TENANT, K_OTHER, 2, 17);
	make_transfer(&t3, K_TENANT, K_OTHER, 3, 13);
	make_transfer(&o0, K_OTHER, K_TENANT, 0, 7);
	submit_ok(a, &mine0);
	submit_ok(a, &t1);
	ck_assert(lt_submit_held(a, &t3));
	submit_ok(a, &o0);
	submit_ok(b, &theirs0);
	ck_assert_uint_eq(lt_produce(b, T0 + SEC).ntx, 1);
	ck_assert_int_eq(ledger_block_raw(b, 1, &sb), 0);
	ck_assert_msg(ledger_apply_block(a, sb.body, sb.body_len, sb.cert, sb.cert_len, why) == 0,
		      "%s", why);
	stored_block_free(&sb);
	/* Recheck: mine0's nonce is used, t1 and o0 still apply, t3 waits. */
	ck_assert_int_eq(ledger_tx_status(a, mine0.hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_DROPPED);
	ck_assert_msg(strstr(ts.why, "nonce 0") != NULL, "%s", ts.why);
	ck_assert_int_eq(ledger_status(a, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 2);
	ck_assert_uint_eq(st.mempool_held, 1);
	ck_assert_int_eq(ledger_next_nonce(a, keys[K_TENANT].pub, &next), 0);
	ck_assert_uint_eq(next, 2);
	/* t2 fills the gap: t3 is promoted behind it. */
	ck_assert(!lt_submit_held(a, &t2));
	ck_assert_int_eq(ledger_next_nonce(a, keys[K_TENANT].pub, &next), 0);
	ck_assert_uint_eq(next, 4);
	ck_assert_int_eq(ledger_tx_status(a, t3.hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_PENDING);
	r = lt_produce(a, T0 + 2 * SEC);
	ck_assert_uint_eq(r.ntx, 4);
	ck_assert_uint_eq(r.ndropped, 0);
	ck_assert_uint_eq(block_nonces(a, r.height, nonces, 8), 4);
	ck_assert_uint_eq(nonces[0], 1);      /* t1, then o0 in arrival order */
	ck_assert_uint_eq(nonces[1], 0);
	ck_assert_uint_eq(nonces[2], 2);
	ck_assert_uint_eq(nonces[3], 3);
	ck_assert_uint_eq(balance(a, K_OTHER), OTHER_FUNDS + 100 + 11 + 17 + 13 - 7);
	ck_assert_uint_eq(balance(a, K_TENANT), TENANT_FUNDS - 100 - 11 - 17 - 13 + 7);
	ck_assert_int_eq(ledger_status(a, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 0);
	ck_assert_uint_eq(st.mempool_held, 0);
	ck_assert_uint_eq(st.held_dropped, 0);
	ledger_close(a);
	ledger_close(b);
}
END_TEST

/* The window, the bound in all, and replays: all refused, not held. */
START_TEST(test_hold_bounds_and_replays)
{
	struct mempool_hold h = { .ahead = 3, .max = 2, .timeout_ns = 10 * SEC };
	struct ledger *l = open_holding(&h);
	struct signed_tx s, other;
	char why[WHY_MAX];

	make_transfer(&s, K_TENANT, K_OTHER, 4, 1);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_NONCE);
	ck_assert_msg(strstr(why, "next nonce 0") != NULL, "%s", why);
	make_transfer(&s, K_TENANT, K_OTHER, 2, 1);
	ck_assert(lt_submit_held(l, &s));
	/* The same bytes again (named held, not pending); another transaction
	 * for the held nonce. */
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_REPLAY);
	ck_assert_msg(strstr(why, "is already held (waiting for an earlier nonce") != NULL, "%s",
		      why);
	make_transfer(&other, K_TENANT, K_OTHER, 2, 2);
	ck_assert_int_eq(submit_err(l, &other, why), TALLY_E_REPLAY);
	ck_assert_msg(strstr(why, "already held") != NULL, "%s", why);
	make_transfer(&s, K_TENANT, K_OTHER, 1, 1);
	ck_assert(lt_submit_held(l, &s));
	/* Two held in all, both this account's: its third has no room (and
	 * the account holds the most, so it takes no other's place). */
	make_transfer(&s, K_TENANT, K_OTHER, 3, 1);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_CAPACITY);
	ck_assert_msg(strstr(why, "holds no more early transactions (2 held, 0 pending;"
			     " this account holds 2 of them") != NULL, "%s", why);
	make_transfer(&s, K_TENANT, K_OTHER, 0, 1);
	submit_ok(l, &s);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 3);
	/* A used nonce is a replay, never held. */
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_REPLAY);
	ck_assert_msg(strstr(why, "already used") != NULL, "%s", why);
	ledger_close(l);
}
END_TEST

/* The default window: eight batches of LEDGER_BATCH_MAX that overtake one
 * another whole (four connections, each sending its next when one is
 * answered) are held, not refused; one nonce past the window is refused. */
START_TEST(test_hold_default_window)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s;
	char why[WHY_MAX];

	make_transfer(&s, K_TENANT, K_OTHER, 8 * LEDGER_BATCH_MAX, 1);
	ck_assert(lt_submit_held(l, &s));
	make_transfer(&s, K_TENANT, K_OTHER, MEMPOOL_HOLD_AHEAD + 1, 1);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_NONCE);
	ck_assert_msg(strstr(why, "next nonce 0") != NULL, "%s", why);
	ledger_close(l);
}
END_TEST

/* A key the chain knows nothing of (no balance, no nonce used, no stake) is
 * free to make, so nothing is held for it: its early nonce is refused as
 * one past the window is, with its next nonce, and the hold stays empty.
 * A genesis validator with stake alone is known; so is a key funded by a
 * transfer still pending (the check state counts pending transactions). */
START_TEST(test_hold_unknown_account)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s, fund;
	struct ledger_tx_status ts;
	struct ledger_status st;
	char why[WHY_MAX];

	for (uint64_t n = 1; n <= 3; n++) {
		make_transfer(&s, K_PROV, K_OTHER, n, 1);
		ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_NONCE);
		ck_assert_msg(strstr(why, "(next nonce 0), and the chain knows nothing of this"
				     " account") != NULL, "%s", why);
		ck_assert_msg(strstr(why, "nothing is held for it: send nonce 0 first") != NULL,
			      "%s", why);
		ck_assert_int_eq(ledger_tx_status(l, s.hash, &ts), 0);
		ck_assert_int_eq(ts.status, LEDGER_TX_UNKNOWN);
	}
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_held, 0);
	ck_assert_uint_eq(st.mempool_size, 0);
	/* The validator has stake and no account entry. */
	make_transfer(&s, K_VAL, K_OTHER, 1, 1);
	ck_assert(lt_submit_held(l, &s));
	/* Funded by a pending transfer, the key is known. */
	make_transfer(&fund, K_TENANT, K_PROV, 0, 10);
	submit_ok(l, &fund);
	make_transfer(&s, K_PROV, K_OTHER, 1, 1);
	ck_assert(lt_submit_held(l, &s));
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_held, 2);
	ledger_close(l);
}
END_TEST

/* A full hold: an account that holds fewer than the one holding most takes
 * the place of that one's highest nonce (a drop with its reason); the
 * account holding most takes no other's, nor do two holding as many. What
 * stays held is queued in order once the gaps fill. */
START_TEST(test_hold_full_evicts_greedy)
{
	struct mempool_hold h = { .ahead = 8, .max = 4, .timeout_ns = 10 * SEC };
	struct ledger *l = open_holding(&h);
	struct signed_tx t[6], o[4], s;
	struct ledger_tx_status ts;
	struct ledger_status st;
	char why[WHY_MAX];

	for (int i = 0; i < 6; i++)
		make_transfer(&t[i], K_TENANT, K_OTHER, (uint64_t)i, 1);
	for (int i = 0; i < 4; i++)
		make_transfer(&o[i], K_OTHER, K_TENANT, (uint64_t)i, 1);
	/* The tenant holds every place: 4, 2, 1, 3 (its highest is not its last). */
	ck_assert(lt_submit_held(l, &t[4]));
	ck_assert(lt_submit_held(l, &t[2]));
	ck_assert(lt_submit_held(l, &t[1]));
	ck_assert(lt_submit_held(l, &t[3]));
	/* Its own fifth: refused, it holds most. */
	ck_assert_int_eq(submit_err(l, &t[5], why), TALLY_E_CAPACITY);
	ck_assert_msg(strstr(why, "this account holds 4 of them, and no account more") != NULL,
		      "%s", why);
	/* Another account's takes the place of the tenant's nonce 4. */
	ck_assert(lt_submit_held(l, &o[1]));
	ck_assert_int_eq(ledger_tx_status(l, t[4].hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_DROPPED);
	ck_assert_msg(strstr(ts.why, "held for nonce 4, evicted: the node's held transactions"
			     " were full (4) and this account held 4 of them, the most of"
			     " any") != NULL, "%s", ts.why);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_held, 4);
	ck_assert_uint_eq(st.held_dropped, 1);
	/* The tenant (3) still holds most: it cannot take the other's place. */
	ck_assert_int_eq(submit_err(l, &t[4], why), TALLY_E_CAPACITY);
	ck_assert_int_eq(ledger_tx_status(l, o[1].hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_HELD);
	/* The other (1 < 3) takes the tenant's nonce 3. */
	ck_assert(lt_submit_held(l, &o[2]));
	ck_assert_int_eq(ledger_tx_status(l, t[3].hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_DROPPED);
	ck_assert_msg(strstr(ts.why, "held for nonce 3, evicted") != NULL, "%s", ts.why);
	/* Two each: neither takes the other's place. */
	ck_assert_int_eq(submit_err(l, &o[3], why), TALLY_E_CAPACITY);
	ck_assert_int_eq(submit_err(l, &t[3], why), TALLY_E_CAPACITY);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_held, 4);
	ck_assert_uint_eq(st.held_dropped, 2);
	/* The gaps fill: 1, 2 of each follow their 0. */
	submit_ok(l, &t[0]);
	submit_ok(l, &o[0]);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_held, 0);
	ck_assert_uint_eq(st.mempool_size, 6);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 6);
	/* Room again: the tenant's evicted ones come back in order. */
	make_transfer(&s, K_TENANT, K_OTHER, 4, 1);
	ck_assert(lt_submit_held(l, &s));
	ck_assert(!lt_submit_held(l, &t[3]));
	ck_assert_uint_eq(lt_produce(l, T0 + 2 * SEC).ntx, 2);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + 5 - 3);
	ledger_close(l);
}
END_TEST

/* POST /v1/txs through the API's own route, without a socket: the answer's
 * status, and its body parsed (NULL when it is not JSON) into *answer with
 * the text in text[cap]. With an inbox, the request prefers respond-async. */
static unsigned post_txs_route_to(struct ledger *l, struct inbox *inbox, const char *type,
				  const void *body, size_t len, json_t **answer, char *text,
				  size_t cap)
{
	struct api api = { .ledger = l, .inbox = inbox };
	struct http_field fields[] = {
		{ 0, "Content-Type", type }, { 0, "Prefer", "wait=5, Respond-Async" },
	};
	struct http_request req = {
		.method = "POST", .path = "/v1/txs", .nseg = 2, .seg = { "v1", "txs" },
		.body = body, .body_len = len, .fields = fields, .nfields = inbox ? 2 : 1,
		.from_loopback = 1,
	};
	struct http_response resp = { 0 };
	http_handler h = NULL;
	char *dumped = NULL;

	for (size_t i = 0; i < api_nroutes; i++)
		if (!strcmp(api_routes[i].method, "POST") &&
		    !strcmp(api_routes[i].pattern, "/v1/txs"))
			h = api_routes[i].handler;
	ck_assert_ptr_nonnull(h);
	h(&api, &req, &resp);
	if (resp.json) {
		dumped = json_dumps(resp.json, JSON_COMPACT);
		snprintf(text, cap, "%s\n", dumped);
		free(dumped);
	} else {
		ck_assert_ptr_nonnull(resp.text);
		ck_assert_str_eq(resp.content_type, "application/json");
		snprintf(text, cap, "%s", resp.text);
	}
	*answer = json_loads(text, 0, NULL);
	json_decref(resp.json);
	free(resp.text);
	if (inbox)
		ck_assert_str_eq(resp.preference_applied, "respond-async");
	else
		ck_assert_ptr_null(resp.preference_applied);
	return resp.status;
}

static unsigned post_txs_route(struct ledger *l, const char *type, const void *body, size_t len,
			       json_t **answer, char *text, size_t cap)
{
	return post_txs_route_to(l, NULL, type, body, len, answer, text, cap);
}

static const char *answer_status(json_t *answer, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(answer,
							"results"), i), "status"));
}

/* Transfers of nonce 0, 2 (held until nonce 1) and 1 into s, framed as a
 * binary batch body (daemon/api/txbody.h) of four, the third framed bytes
 * that are no transaction; malloc'd, *len its length. */
static uint8_t *four_framed(struct signed_tx s[3], size_t *len)
{
	static const uint8_t junk[] = { 1, 2, 3 };
	struct enc e;
	uint8_t *body;

	make_transfer(&s[0], K_TENANT, K_OTHER, 0, 5);
	make_transfer(&s[1], K_TENANT, K_OTHER, 2, 5);
	make_transfer(&s[2], K_TENANT, K_OTHER, 1, 5);
	enc_init(&e);
	enc_u16(&e, 4);
	enc_bytes(&e, s[0].bytes, s[0].len);
	enc_bytes(&e, s[1].bytes, s[1].len);
	enc_bytes(&e, junk, sizeof(junk));
	enc_bytes(&e, s[2].bytes, s[2].len);
	body = enc_take(&e, len);
	ck_assert_ptr_nonnull(body);
	return body;
}

/* The binary batch body (daemon/api/txbody.h, Content-Type
 * application/octet-stream): each transaction answered in its place as in
 * a JSON batch, and the answer the same JSON text jansson would write. */
START_TEST(test_api_txs_binary)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s[3];
	struct ledger_status st;
	static char text[16384];
	char *again;
	json_t *a;
	size_t len;
	uint8_t *body = four_framed(s, &len);

	/* Cut short by a byte: refused whole, nothing admitted. */
	ck_assert_uint_eq(post_txs_route(l, "application/octet-stream", body, len - 1, &a, text,
					 sizeof(text)), 400);
	ck_assert_str_eq(json_string_value(json_object_get(a, "code")), "invalid");
	ck_assert_msg(strstr(json_string_value(json_object_get(a, "error")), "cut short"), "%s",
		      text);
	json_decref(a);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size + st.mempool_held, 0);

	/* As JSON it is no batch at all. */
	ck_assert_uint_eq(post_txs_route(l, "application/json", body, len, &a, text,
					 sizeof(text)), 400);
	json_decref(a);

	ck_assert_uint_eq(post_txs_route(l, "Application/Octet-Stream; x=1", body, len, &a, text,
					 sizeof(text)), 200);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(answer_status(a, 0), "pending");
	ck_assert_str_eq(answer_status(a, 1), "held");
	ck_assert_str_eq(answer_status(a, 2), "refused");
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
				json_object_get(a, "results"), 2), "code")), "truncated");
	ck_assert_str_eq(answer_status(a, 3), "pending");
	ck_assert_int_eq(json_integer_value(json_object_get(a, "accepted")), 3);
	ck_assert_int_eq(json_integer_value(json_object_get(a, "refused")), 1);
	again = json_dumps(a, JSON_COMPACT);
	ck_assert_uint_eq(strlen(text), strlen(again) + 1);
	ck_assert_int_eq(strncmp(text, again, strlen(again)), 0);
	ck_assert_int_eq(text[strlen(again)], '\n');
	free(again);
	json_decref(a);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 3);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 3);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + 15);
	free(body);
	ledger_close(l);
}
END_TEST

/* A binary batch preferring respond-async: each one that decodes is
 * "received" in its place (the one that does not refused at once), the
 * answer the JSON text jansson would write; then the inbox admits them in
 * order, the one held until its gap fills too. */
START_TEST(test_api_txs_binary_async)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s[3];
	static char text[16384];
	struct inbox_stats is;
	struct ledger_status st;
	char why[WHY_MAX], hex[2 * HASH_LEN + 1], *again;
	struct inbox *q = inbox_new(l, CHAIN, NULL, 0, why);
	json_t *a;
	size_t len;
	uint8_t *body;

	ck_assert_msg(q, "%s", why);
	body = four_framed(s, &len);
	ck_assert_uint_eq(post_txs_route_to(l, q, "application/octet-stream", body, len, &a, text,
					    sizeof(text)), 200);
	ck_assert_ptr_nonnull(a);
	ck_assert_str_eq(answer_status(a, 0), "received");
	ck_assert_str_eq(answer_status(a, 1), "received");
	ck_assert_str_eq(answer_status(a, 2), "refused");
	ck_assert_str_eq(answer_status(a, 3), "received");
	hex_encode(s[1].hash, HASH_LEN, hex);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(
				json_object_get(a, "results"), 1), "hash")), hex);
	again = json_dumps(a, JSON_COMPACT);
	ck_assert_int_eq(strncmp(text, again, strlen(again)), 0);
	free(again);
	json_decref(a);
	for (int i = 0; i < 60000; i++) {
		inbox_stats(q, &is);
		if (is.admitted == 3)
			break;
		usleep(1000);
	}
	ck_assert_uint_eq(is.admitted, 3);
	ck_assert_uint_eq(is.refused, 0);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 3);
	inbox_free(q);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 3);
	free(body);
	ledger_close(l);
}
END_TEST

static uint64_t wall_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

/* The held transaction hash was dropped, the only one so far, with a
 * reason that says `reason`; the status after it. */
static struct ledger_status held_dropped(struct ledger *l, const uint8_t hash[HASH_LEN],
					 const char *reason)
{
	struct ledger_tx_status ts;
	struct ledger_status st;

	ck_assert_int_eq(ledger_tx_status(l, hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_DROPPED);
	ck_assert_msg(strstr(ts.why, reason) != NULL, "%s", ts.why);
	{
		/* The ring's slots not written yet are no drops: the all-zero
		 * hash, never seen, is unknown (it read "dropped at block 0"). */
		static const uint8_t zero[HASH_LEN];

		ck_assert_int_eq(ledger_tx_status(l, zero, &ts), 0);
		ck_assert_int_eq(ts.status, LEDGER_TX_UNKNOWN);
	}
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.held_dropped, 1);
	return st;
}

/* A gap that never fills: the held transaction goes once it has waited
 * longer than the timeout (block time), with a reason its sender can read. */
START_TEST(test_hold_gap_never_fills)
{
	struct mempool_hold h = { .ahead = 8, .max = 8, .timeout_ns = 5 * SEC };
	struct ledger *l = open_holding(&h);
	struct signed_tx s;
	struct ledger_tx_status ts;
	struct ledger_status st;
	uint64_t t0 = wall_now_ns();

	make_transfer(&s, K_TENANT, K_OTHER, 1, 1);
	ck_assert(lt_submit_held(l, &s));
	lt_produce(l, t0 + SEC);
	ck_assert_int_eq(ledger_tx_status(l, s.hash, &ts), 0);
	ck_assert_int_eq(ts.status, LEDGER_TX_HELD);
	lt_produce(l, t0 + 60 * SEC);
	st = held_dropped(l, s.hash, "never arrived");
	ck_assert_uint_eq(st.mempool_held, 0);
	/* The gap fills now: nothing follows it. */
	make_transfer(&s, K_TENANT, K_OTHER, 0, 1);
	submit_ok(l, &s);
	ck_assert_uint_eq(lt_produce(l, t0 + 61 * SEC).ntx, 1);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + 1);
	ledger_close(l);
}
END_TEST

/* A held transaction that no longer applies when its turn comes is
 * dropped; the one that filled the gap stays. */
START_TEST(test_hold_becomes_invalid)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s1, s0;
	struct ledger_status st;

	make_transfer(&s1, K_OTHER, K_TENANT, 1, OTHER_FUNDS - 1000);
	ck_assert(lt_submit_held(l, &s1));
	make_transfer(&s0, K_OTHER, K_TENANT, 0, 2000);
	ck_assert(!lt_submit_held(l, &s0));
	st = held_dropped(l, s1.hash, "exceeds balance");
	ck_assert_uint_eq(st.mempool_size, 1);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 1);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS - 2000);
	ledger_close(l);
}
END_TEST

START_TEST(test_overspend_refused)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx s;
	char why[WHY_MAX];
	struct ledger_status st;

	make_open(&s, 0, TENANT_FUNDS + 1);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_CONTRACT);
	ck_assert_msg(strstr(why, "is not registered") != NULL, "%s", why);
	make_announce(&s, 0);
	submit_ok(l, &s);
	make_open(&s, 0, TENANT_FUNDS + 1);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_BALANCE);
	ck_assert_msg(strcmp(why, "deposit 10000001 exceeds balance 10000000 (micro-units)") == 0, "%s", why);
	/* Pending debits count: two transfers that together overspend. */
	make_transfer(&s, K_OTHER, K_TENANT, 0, OTHER_FUNDS - 100);
	submit_ok(l, &s);
	make_transfer(&s, K_OTHER, K_TENANT, 1, 101);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_BALANCE);
	lt_produce(l, T0 + SEC);
	ck_assert_uint_eq(balance(l, K_OTHER), 100);
	ck_assert_uint_eq(balance(l, K_TENANT), TENANT_FUNDS + OTHER_FUNDS - 100);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 0);
	ck_assert_uint_eq(total_supply(l), TENANT_FUNDS + OTHER_FUNDS + STAKE);
	ledger_close(l);
}
END_TEST

START_TEST(test_mempool_bound_and_roles)
{
	struct ledger_config cfg = {
		.data_dir = dir, .genesis = &gen, .validator_key = &keys[K_VAL],
		.mempool_max = 2, .log = quiet,
	};
	struct ledger *l;
	struct signed_tx s;
	struct flow f = { .time = T0 };
	char why[WHY_MAX];

	ck_assert_int_eq(ledger_open(&l, &cfg, why), 0);
	flow_open(l, &f, 1000000);
	/* Only the provider may meter. */
	make_usage(&s, K_OTHER, f.lease, 0, 0, NULL, f.started_ns);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_UNAUTHORIZED);
	/* The tenant may close only as tenant-closed: admission applies the
	 * lease's rules as a block would. */
	make_close(&s, K_TENANT, f.lease, f.tenant_nonce, CLOSE_TERM_ENDED);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_UNAUTHORIZED);
	ck_assert_msg(strstr(why, "only as tenant-closed") != NULL, "%s", why);
	/* The pool holds two. */
	make_transfer(&s, K_TENANT, K_OTHER, f.tenant_nonce, 1);
	submit_ok(l, &s);
	make_transfer(&s, K_TENANT, K_OTHER, f.tenant_nonce + 1, 1);
	submit_ok(l, &s);
	make_transfer(&s, K_TENANT, K_OTHER, f.tenant_nonce + 2, 1);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_CAPACITY);
	ck_assert_uint_eq(lt_produce(l, f.time += SEC).ntx, 2);
	ledger_close(l);
}
END_TEST

/* --- the lease flow -------------------------------------------------------------- */

START_TEST(test_lease_flow_balances)
{
	struct ledger *l = open_at(dir, true);
	uint64_t supply0, deposit = 1000000;
	struct ledger_usage *u;
	struct ledger_status st;
	struct block_header h;
	struct signed_tx s;
	struct lease le;
	struct flow f = { .time = T0 };
	uint8_t proof[MERKLE_MAX_PROOF][HASH_LEN], leaf[HASH_LEN], old_root[HASH_LEN];
	size_t n, np;
	uint64_t old_size;

	supply0 = total_supply(l);
	flow_open(l, &f, deposit);
	ck_assert_uint_eq(balance(l, K_TENANT), TENANT_FUNDS - deposit);
	ck_assert_int_eq(ledger_lease(l, f.lease, &le), 0);
	ck_assert_uint_eq(le.escrow, deposit);
	flow_usage(l, &f, 3);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	old_size = st.usage_size;
	memcpy(old_root, st.usage_root, HASH_LEN);
	flow_usage(l, &f, 2);
	ck_assert_uint_eq(balance(l, K_PROV), 5 * RECORD_CHARGE);
	ck_assert_int_eq(ledger_lease(l, f.lease, &le), 0);
	ck_assert_uint_eq(le.escrow, deposit - 5 * RECORD_CHARGE);
	ck_assert_uint_eq(le.charged, 5 * RECORD_CHARGE);
	ck_assert_uint_eq(total_supply(l), supply0);

	/* The tenant closes one interval after the last record: the lease
	 * waits, closing, for the provider's record of that interval. */
	make_close(&s, K_TENANT, f.lease, f.tenant_nonce++, CLOSE_TENANT);
	submit_ok(l, &s);
	f.time = f.started_ns + (f.seq + 1) * INTERVAL * SEC;
	lt_produce(l, f.time);
	ck_assert_int_eq(ledger_lease(l, f.lease, &le), 0);
	ck_assert_int_eq(le.state, LEASE_CLOSING);
	ck_assert_uint_eq(le.closing_ns, f.time);
	ck_assert_uint_eq(le.escrow, deposit - 5 * RECORD_CHARGE);
	flow_usage(l, &f, 1);
	ck_assert_int_eq(ledger_lease(l, f.lease, &le), 0);
	ck_assert_int_eq(le.state, LEASE_CLOSED);
	ck_assert_int_eq(le.close_reason, CLOSE_TENANT);
	ck_assert_uint_eq(le.escrow, 0);
	ck_assert_uint_eq(balance(l, K_TENANT), TENANT_FUNDS - 6 * RECORD_CHARGE);
	ck_assert_uint_eq(balance(l, K_PROV), 6 * RECORD_CHARGE);
	ck_assert_uint_eq(total_supply(l), supply0);

	/* Records in seq order, each provably in the log of the last header. */
	ck_assert_int_eq(ledger_lease_usage(l, f.lease, &u, &n), 0);
	ck_assert_uint_eq(n, 6);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_int_eq(ledger_header(l, st.height, &h), 0);
	ck_assert_uint_eq(h.usage_size, 6);
	for (size_t i = 0; i < n; i++) {
		struct tx t;

		ck_assert_uint_eq(u[i].seq, i);
		/* The height it reports is the block that really holds it. */
		uint8_t *bytes;
		size_t len;
		uint64_t height;
		uint32_t index;
		ck_assert_int_eq(ledger_tx(l, u[i].tx_hash, &bytes, &len, &height, &index), 0);
		free(bytes);
		ck_assert_uint_gt(u[i].height, 0);
		ck_assert_uint_eq(u[i].height, height);
		ck_assert_int_eq(tx_decode(&t, u[i].tx, u[i].tx_len), 0);
		ck_assert_uint_eq(t.u.usage.seq, i);
		ck_assert_int_eq(ledger_usage_inclusion(l, u[i].index, h.usage_size, leaf, proof,
							&np), 0);
		ck_assert_int_eq(merkle_inclusion_verify(u[i].index, h.usage_size, leaf,
							 (const uint8_t (*)[HASH_LEN])proof, np,
							 h.usage_root), 0);
	}
	ledger_usage_free(u, n);
	ck_assert_int_eq(ledger_usage_consistency(l, old_size, h.usage_size, proof, &np), 0);
	ck_assert_int_eq(merkle_consistency_verify(old_size, h.usage_size, old_root, h.usage_root,
						   (const uint8_t (*)[HASH_LEN])proof, np), 0);
	/* Lookups by tx hash and by party. */
	{
		uint8_t *bytes;
		size_t len;
		uint64_t height;
		uint32_t idx;
		struct lease *ls;
		struct lease_filter flt = { .provider = keys[K_PROV].pub, .state = LEASE_CLOSED };

		ck_assert_int_eq(ledger_tx(l, s.hash, &bytes, &len, &height, &idx), 0);
		ck_assert_uint_eq(len, s.len);
		ck_assert_mem_eq(bytes, s.bytes, len);
		ck_assert_uint_eq(height, st.height - 1);   /* the close; then the last record */
		ck_assert_uint_eq(idx, 0);
		free(bytes);
		ck_assert_int_eq(ledger_leases(l, &flt, &ls, &n), 0);
		ck_assert_uint_eq(n, 1);
		ck_assert_mem_eq(ls[0].id, f.lease, HASH_LEN);
		free(ls);
		flt.state = LEASE_RUNNING;
		ck_assert_int_eq(ledger_leases(l, &flt, &ls, &n), 0);
		ck_assert_uint_eq(n, 0);
		free(ls);
	}
	ledger_close(l);
	verify_ok(dir);
}
END_TEST

START_TEST(test_escrow_exhaustion)
{
	struct ledger *l = open_at(dir, true);
	uint64_t deposit = 12600;   /* the first interval's maximum: 2 vCPUs + memory */
	struct flow f = { .time = T0 };
	struct ledger_block_result r;
	struct signed_tx s;
	struct lease le;
	char why[WHY_MAX];
	uint64_t supply0 = total_supply(l);

	flow_open(l, &f, deposit);
	flow_usage(l, &f, 1);
	ck_assert_int_eq(ledger_lease(l, f.lease, &le), 0);
	ck_assert_uint_eq(le.escrow, deposit - RECORD_CHARGE);
	/* The next record costs more than is left: it takes the rest. */
	make_usage(&s, K_PROV, f.lease, f.prov_nonce++, f.seq, f.last_usage,
		   f.started_ns + f.seq * INTERVAL * SEC);
	submit_ok(l, &s);
	memcpy(f.last_usage, s.hash, HASH_LEN);
	f.seq++;
	/* And one more, which admission refuses: with the pending record
	 * applied, the lease is closed. */
	make_usage(&s, K_PROV, f.lease, f.prov_nonce, f.seq, f.last_usage,
		   f.started_ns + f.seq * INTERVAL * SEC);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "lease is closed") != NULL, "%s", why);
	r = lt_produce(l, f.time = f.started_ns + f.seq * INTERVAL * SEC);
	ck_assert_uint_eq(r.ntx, 1);
	ck_assert_uint_eq(r.ndropped, 0);
	ck_assert_int_eq(ledger_lease(l, f.lease, &le), 0);
	ck_assert_int_eq(le.state, LEASE_CLOSED);
	ck_assert_int_eq(le.close_reason, CLOSE_EXHAUSTED);
	ck_assert_uint_eq(le.closed_height, r.height);
	ck_assert_uint_eq(le.escrow, 0);
	ck_assert_uint_eq(balance(l, K_PROV), deposit);
	ck_assert_uint_eq(balance(l, K_TENANT), TENANT_FUNDS - deposit);
	ck_assert_uint_eq(total_supply(l), supply0);
	ledger_close(l);
}
END_TEST

/* --- determinism and the state root ----------------------------------------------- */

START_TEST(test_two_stores_identical_headers)
{
	char dir2[128];
	struct ledger *a, *b;
	struct flow fa, fb;
	struct ledger_status sa, sb;
	uint8_t scratch[HASH_LEN];

	snprintf(dir2, sizeof(dir2), "%s/second", dir);
	a = open_at(dir, true);
	build_chain(a, &fa);
	b = open_at(dir2, true);
	build_chain(b, &fb);
	ck_assert_int_eq(ledger_status(a, &sa), 0);
	ck_assert_int_eq(ledger_status(b, &sb), 0);
	ck_assert_uint_eq(sa.height, sb.height);
	for (uint64_t h = 1; h <= sa.height; h++) {
		struct stored_block x, y;

		ck_assert_int_eq(ledger_block_raw(a, h, &x), 0);
		ck_assert_int_eq(ledger_block_raw(b, h, &y), 0);
		ck_assert_uint_eq(x.header_len, y.header_len);
		ck_assert_mem_eq(x.header, y.header, x.header_len);
		ck_assert_uint_eq(x.body_len, y.body_len);
		ck_assert_mem_eq(x.body, y.body, x.body_len);
		stored_block_free(&x);
		stored_block_free(&y);
	}
	/* The incremental root equals a recomputation from every entry. */
	scratch_root(dir, scratch);
	ck_assert_mem_eq(sa.state_root, scratch, HASH_LEN);
	ledger_close(a);
	ledger_close(b);
}
END_TEST

START_TEST(test_state_root_changes_with_state)
{
	struct ledger *l = open_at(dir, true);
	struct ledger_status s0, s1, s2;
	struct signed_tx s;
	uint8_t scratch[HASH_LEN];

	ck_assert_int_eq(ledger_status(l, &s0), 0);
	scratch_root(dir, scratch);
	ck_assert_mem_eq(s0.state_root, scratch, HASH_LEN);
	lt_produce(l, T0 + SEC);   /* an empty block changes no state */
	ck_assert_int_eq(ledger_status(l, &s1), 0);
	ck_assert_mem_eq(s0.state_root, s1.state_root, HASH_LEN);
	make_transfer(&s, K_TENANT, K_PROV, 0, 1);
	submit_ok(l, &s);
	lt_produce(l, T0 + 2 * SEC);
	ck_assert_int_eq(ledger_status(l, &s2), 0);
	ck_assert_mem_ne(s1.state_root, s2.state_root, HASH_LEN);
	scratch_root(dir, scratch);
	ck_assert_mem_eq(s2.state_root, scratch, HASH_LEN);
	ledger_close(l);
}
END_TEST

START_TEST(test_time_must_increase)
{
	struct ledger *l = open_at(dir, true);
	char why[WHY_MAX];

	ck_assert_int_eq(ledger_produce_block(l, T0, NULL, why), TALLY_E_INVALID);
	lt_produce(l, T0 + 5);
	ck_assert_int_eq(ledger_produce_block(l, T0 + 5, NULL, why), TALLY_E_INVALID);
	ledger_close(l);
}
END_TEST

/* GET pattern through the API's own route, without a socket: the answer's
 * JSON as the node would send it (dumped and parsed back). */
static json_t *get_route(struct api *api, const char *pattern, size_t nseg,
			 const char *const *seg)
{
	struct http_request req = { .method = "GET", .path = pattern, .nseg = nseg,
				    .from_loopback = 1 };
	struct http_response resp = { 0 };
	http_handler h = NULL;

	for (size_t i = 0; i < nseg; i++)
		req.seg[i] = seg[i];
	for (size_t i = 0; i < api_nroutes; i++)
		if (!strcmp(api_routes[i].method, "GET") && !strcmp(api_routes[i].pattern, pattern))
			h = api_routes[i].handler;
	ck_assert_ptr_nonnull(h);
	h(api, &req, &resp);
	ck_assert_uint_eq(resp.status, 200);
	ck_assert_ptr_nonnull(resp.json);
	char *text = json_dumps(resp.json, JSON_COMPACT);
	json_t *j = json_loads(text, 0, NULL);

	free(text);
	json_decref(resp.json);
	return j;
}

/* A block time above 2^63 - 1 (nothing refuses one) is sent as a decimal
 * string, not as the negative number a signed JSON integer would print
 * (docs/PROTOCOL.md, "Numbers"); the figures below it stay integers. */
START_TEST(test_api_u64_above_int64_is_a_string)
{
	struct ledger *l = open_at(dir, true);
	struct config cfg = { 0 };
	struct api api = { .cfg = &cfg, .ledger = l, .node_pub = keys[K_VAL].pub };
	const uint64_t t = (uint64_t)INT64_MAX + 1 + 5;
	const char *status_seg[] = { "v1", "status" }, *block_seg[] = { "v1", "blocks", "1" };
	uint64_t v = 0;

	lt_produce(l, t);
	json_t *st = get_route(&api, "/v1/status", 2, status_seg);
	ck_assert_str_eq(json_string_value(json_object_get(st, "time_ns")),
			 "9223372036854775813");
	ck_assert_int_eq(json_u64_get(json_object_get(st, "time_ns"), &v), 0);
	ck_assert_uint_eq(v, t);
	ck_assert(json_is_integer(json_object_get(st, "height")));
	ck_assert_int_eq(json_integer_value(json_object_get(st, "height")), 1);
	json_decref(st);
	json_t *b = get_route(&api, "/v1/blocks/*", 3, block_seg);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "header"),
							   "time_ns")), "9223372036854775813");
	ck_assert_int_eq(json_integer_value(json_object_get(b, "height")), 1);
	json_decref(b);
	ledger_close(l);
}
END_TEST

/* --- replay of a stored chain into a fresh store ------------------------------------ */

static void replay_into(struct ledger *src, const char *path, uint64_t height)
{
	struct ledger *dst = open_at(path, false);
	struct ledger_status a, b;
	char why[WHY_MAX];

	for (uint64_t h = 1; h <= height; h++) {
		struct stored_block sb;
		int rc;

		ck_assert_int_eq(ledger_block_raw(src, h, &sb), 0);
		rc = ledger_apply_block(dst, sb.body, sb.body_len, sb.cert, sb.cert_len, why);
		ck_assert_msg(rc == 0, "replay of block %llu: %s", (unsigned long long)h, why);
		stored_block_free(&sb);
	}
	ck_assert_int_eq(ledger_status(src, &a), 0);
	ck_assert_int_eq(ledger_status(dst, &b), 0);
	ck_assert_uint_eq(a.height, b.height);
	ck_assert_mem_eq(a.last_block_id, b.last_block_id, HASH_LEN);
	ck_assert_mem_eq(a.state_root, b.state_root, HASH_LEN);
	ck_assert_mem_eq(a.usage_root, b.usage_root, HASH_LEN);
	for (int i = 0; i < NKEYS; i++)
		ck_assert_uint_eq(balance(src, i), balance(dst, i));
	ledger_close(dst);
}

START_TEST(test_apply_block_replays_and_refuses_tampering)
{
	struct ledger *l = open_at(dir, true), *dst;
	char dir2[128], why[WHY_MAX];
	struct stored_block sb;
	struct flow f;

	build_chain(l, &f);
	snprintf(dir2, sizeof(dir2), "%s/replay", dir);
	replay_into(l, dir2, 5);
	/* A block whose certificate is for another block is refused. */
	cb_rm_tree(dir2);
	dst = open_at(dir2, false);
	ck_assert_int_eq(ledger_block_raw(l, 1, &sb), 0);
	sb.cert[sb.cert_len - 1] ^= 1;
	ck_assert_int_ne(ledger_apply_block(dst, sb.body, sb.body_len, sb.cert, sb.cert_len, why), 0);
	sb.cert[sb.cert_len - 1] ^= 1;
	ck_assert_int_eq(ledger_apply_block(dst, sb.body, sb.body_len, sb.cert, sb.cert_len, why), 0);
	ck_assert_int_eq(ledger_apply_block(dst, sb.body, sb.body_len, sb.cert, sb.cert_len, why),
			 TALLY_E_HEIGHT);
	stored_block_free(&sb);
	ledger_close(dst);
	ledger_close(l);
}
END_TEST

/* The rows sql gives on the store in data_dir, in its order: a digest of
 * every column's bytes, and how many rows. */
static long long rows_digest(const char *data_dir, const char *sql, uint8_t out[HASH_LEN])
{
	struct sha256_stream *h = sha256_begin();
	char path[4096];
	sqlite3_stmt *st;
	sqlite3 *db;
	long long n = 0;
	int rc;

	ck_assert_ptr_nonnull(h);
	snprintf(path, sizeof(path), "%s/ledger.sqlite", data_dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			int len = sqlite3_column_bytes(st, c);
			const void *p = sqlite3_column_blob(st, c);

			sha256_add(h, &len, sizeof(len));
			if (len)
				sha256_add(h, p, (size_t)len);
		}
		n++;
	}
	ck_assert_int_eq(rc, SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	sha256_end(h, out);
	return n;
}

static const char *const store_tables[] = {
	"SELECT key, bucket, value FROM state ORDER BY key",
	"SELECT id, tenant, provider, state, key FROM leases ORDER BY id",
	"SELECT idx, tx_hash, lease_id, seq FROM usage ORDER BY idx",
	"SELECT level, idx, hash FROM usage_nodes ORDER BY level, idx",
	"SELECT bucket, hash FROM buckets ORDER BY bucket",
	"SELECT hash, height, idx, off, len FROM txs ORDER BY hash",
};

/* The stores in data dirs a and b (closed) hold the same rows in every
 * table the state and the chain's reads are kept in. */
static void same_store_rows(const char *a, const char *b)
{
	for (size_t i = 0; i < sizeof(store_tables) / sizeof(store_tables[0]); i++) {
		uint8_t da[HASH_LEN], db[HASH_LEN];
		long long na = rows_digest(a, store_tables[i], da);
		long long nb = rows_digest(b, store_tables[i], db);

		ck_assert_msg(na > 0 && na == nb && !memcmp(da, db, HASH_LEN),
			      "%s: %lld rows in %s, %lld in %s, %s", store_tables[i], na, a, nb, b,
			      memcmp(da, db, HASH_LEN) ? "different" : "the same");
	}
}

/* Block h of src and its certificate, applied to dst as consensus decided
 * it there. */
static void apply_from(struct ledger *src, struct ledger *dst, uint64_t h)
{
	struct stored_block sb;
	char why[WHY_MAX];

	ck_assert_int_eq(ledger_block_raw(src, h, &sb), 0);
	ck_assert_msg(ledger_apply_block(dst, sb.body, sb.body_len, sb.cert, sb.cert_len, why)
		      == 0, "block %llu: %s", (unsigned long long)h, why);
	stored_block_free(&sb);
}

/* Block h of src checked by dst as a proposal; ok: whether it must pass.
 * With tamper, a byte of the block's first transaction is changed first
 * (its signature no longer verifies). */
static void check_from(struct ledger *src, struct ledger *dst, uint64_t h, bool tamper)
{
	struct stored_block sb;
	struct block b;
	struct enc e;
	char why[WHY_MAX];
	int rc;

	ck_assert_int_eq(ledger_block_raw(src, h, &sb), 0);
	ck_assert_int_eq(block_decode(&b, sb.body, sb.body_len), 0);
	if (tamper) {
		uint8_t changed[TX_MAX_SIZE];

		ck_assert_uint_gt(b.ntx, 0);
		memcpy(changed, b.txs[0].bytes, b.txs[0].len);
		changed[b.txs[0].len - 2] ^= 0x01;
		ck_assert_int_eq(block_tx_replace(&b, 0, changed, b.txs[0].len), 0);
		block_txs_root(&b, b.header.txs_root);
	}
	enc_init(&e);
	block_encode(&e, &b);
	ck_assert_int_eq(enc_error(&e), 0);
	rc = ledger_check_block(dst, e.buf, e.len, NULL, why);
	if (tamper)
		ck_assert_int_ne(rc, 0);
	else
		ck_assert_msg(rc == 0, "block %llu: %s", (unsigned long long)h, why);
	enc_free(&e);
	block_free(&b);
	stored_block_free(&sb);
}

/* dst builds a block of its own at the next height (not the one decided). */
static void build_own(struct ledger *dst, uint64_t time_ns)
{
	uint8_t *bytes;
	size_t len, dropped;
	char why[WHY_MAX];

	ck_assert_msg(ledger_build_block(dst, time_ns, keys[K_VAL].pub, &bytes, &len, &dropped,
					 why) == 0, "%s", why);
	free(bytes);
}

/* The node in dir2 (made "<dir>/decider", 128 bytes), which decided
 * blocks 1 to 5 (build_chain, each committed from its trial). */
static struct ledger *open_decider(char *dir2, struct flow *f)
{
	struct ledger *src;

	snprintf(dir2, 128, "%s/decider", dir);
	src = open_at(dir2, true);
	build_chain(src, f);
	return src;
}

/* The block decided at a height is not always the one this node tried
 * last: another round's proposal was checked after it, or a proposal that
 * does not verify, or the node built a block of its own. Then the decided
 * block is executed; when it is the one tried last it is committed from
 * that trial. Either way the store comes out row for row as the store of
 * the node that made the chain (which committed every block from its
 * trial), verifies, and the node goes on after a restart. */
START_TEST(test_decided_not_the_block_tried_last)
{
	struct ledger_status a, b;
	char dir2[128];
	struct flow f;
	struct ledger *src = open_decider(dir2, &f), *l = open_at(dir, true);

	build_own(l, T0 + SEC + 1);                /* its own block 1, not decided */
	apply_from(src, l, 1);
	check_from(src, l, 2, false);              /* block 2 checked, */
	check_from(src, l, 2, true);               /* then one that is not valid */
	apply_from(src, l, 2);
	check_from(src, l, 3, false);              /* block 3 checked, then its own */
	ck_assert_int_eq(ledger_status(l, &a), 0);
	build_own(l, a.time_ns + 1);
	apply_from(src, l, 3);
	ck_assert_int_eq(ledger_status(l, &a), 0);
	ck_assert_uint_eq(a.committed, 3);
	ck_assert_uint_eq(a.committed_from_trial, 0);
	check_from(src, l, 4, false);              /* block 4 checked last */
	apply_from(src, l, 4);
	ck_assert_int_eq(ledger_status(l, &a), 0);
	build_own(l, a.time_ns + 1);               /* its own block 5, then 5 */
	check_from(src, l, 5, false);
	apply_from(src, l, 5);
	ck_assert_int_eq(ledger_status(l, &a), 0);
	ck_assert_int_eq(ledger_status(src, &b), 0);
	ck_assert_uint_eq(a.height, 5);
	ck_assert_uint_eq(a.committed, 5);
	ck_assert_uint_eq(a.committed_from_trial, 2);
	ck_assert_uint_eq(b.committed_from_trial, 5);
	ck_assert_mem_eq(a.state_root, b.state_root, HASH_LEN);
	ck_assert_mem_eq(a.usage_root, b.usage_root, HASH_LEN);
	ledger_close(l);
	ledger_close(src);
	same_store_rows(dir, dir2);
	verify_ok(dir);
	/* After a restart the node goes on from the same state. The two
	 * ledgers share one validator key, and the decider signed the blocks:
	 * its signer_state goes with the key (a store whose last certificate
	 * holds the key's precommit is refused without it). */
	char from[192], to[192];
	snprintf(from, sizeof(from), "%s/signer_state", dir2);
	snprintf(to, sizeof(to), "%s/signer_state", dir);
	file_copy(from, to);
	l = open_at(dir, true);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_mem_eq(a.state_root, b.state_root, HASH_LEN);
	flow_usage(l, &f, 1);
	ck_assert_int_eq(ledger_status(l, &b), 0);
	ck_assert_uint_eq(b.height, 6);
	ck_assert_uint_eq(b.committed_from_trial, 1);
	ledger_close(l);
	verify_ok(dir);
}
END_TEST

/* A trial that could not note what it wrote (t->rc, memory) is not
 * committed: the block is executed instead, and the commit succeeds. */
START_TEST(test_trial_out_of_memory_executes)
{
	struct ledger_status a, b;
	char dir2[128];
	struct flow f;
	struct ledger *src = open_decider(dir2, &f), *l = open_at(dir, true);

	for (uint64_t h = 1; h <= 5; h++) {
		check_from(src, l, h, false);
		ck_assert(l->kept_valid);
		l->kept.rc = TALLY_E_NOMEM;
		apply_from(src, l, h);
		ck_assert(!l->kept_valid);
	}
	ck_assert_int_eq(ledger_status(l, &a), 0);
	ck_assert_int_eq(ledger_status(src, &b), 0);
	ck_assert_uint_eq(a.committed, 5);
	ck_assert_uint_eq(a.committed_from_trial, 0);
	ck_assert_mem_eq(a.state_root, b.state_root, HASH_LEN);
	ledger_close(l);
	ledger_close(src);
	same_store_rows(dir, dir2);
	verify_ok(dir);
}
END_TEST

/* A validator that built each block commits it from the trial it built it
 * on (execute.c, lib/chain/trial.h); a node that applies the same blocks
 * executes them. Their stores are the same row for row: the state entries,
 * the lease index, the usage log and its Merkle nodes, the kept bucket
 * hashes, the txs rows. */
START_TEST(test_trial_commit_same_store)
{
	struct ledger *a = open_at(dir, true), *b;
	struct ledger_status sa, sb;
	struct signed_tx s;
	struct flow f;
	char dir2[128], why[WHY_MAX];

	build_chain(a, &f);
	make_close(&s, K_TENANT, f.lease, f.tenant_nonce++, CLOSE_TENANT);
	submit_ok(a, &s);
	make_transfer(&s, K_OTHER, K_TENANT, 1, 5);
	submit_ok(a, &s);
	lt_produce(a, f.time += INTERVAL * SEC);
	ck_assert_int_eq(ledger_status(a, &sa), 0);
	ck_assert_uint_eq(sa.height, 6);
	ck_assert_uint_eq(sa.committed, 6);
	ck_assert_uint_eq(sa.committed_from_trial, 6);
	snprintf(dir2, sizeof(dir2), "%s/applied", dir);
	b = open_at(dir2, false);
	for (uint64_t h = 1; h <= sa.height; h++) {
		struct stored_block sb_;

		ck_assert_int_eq(ledger_block_raw(a, h, &sb_), 0);
		ck_assert_msg(ledger_apply_block(b, sb_.body, sb_.body_len, sb_.cert, sb_.cert_len,
						 why) == 0, "block %llu: %s", (unsigned long long)h,
			      why);
		stored_block_free(&sb_);
	}
	ck_assert_int_eq(ledger_status(b, &sb), 0);
	ck_assert_uint_eq(sb.committed, 6);
	ck_assert_uint_eq(sb.committed_from_trial, 0);
	ck_assert_mem_eq(sa.state_root, sb.state_root, HASH_LEN);
	ledger_close(a);
	ledger_close(b);
	same_store_rows(dir, dir2);
}
END_TEST

/* A proposed block whose transactions this node never saw: their
 * signatures are checked ahead on the worker pool (execute.c, preverify);
 * one that does not verify still gets the block refused for it, and the
 * good block's transactions submitted afterwards are taken. */
START_TEST(test_block_signatures_checked_ahead)
{
	char dir2[128], why[WHY_MAX];
	struct ledger *a, *b;
	struct signed_tx s[6];
	struct block blk;
	struct enc e;
	uint8_t *bytes, changed[TX_MAX_SIZE];
	size_t len, dropped, at;
	uint64_t t1;
	struct ledger_status st;

	snprintf(dir2, sizeof(dir2), "%s/builder", dir);
	a = open_at(dir, true);
	b = open_at(dir2, true);
	for (int i = 0; i < 6; i++) {
		make_transfer(&s[i], K_TENANT, K_OTHER, (uint64_t)i, 1);
		submit_ok(b, &s[i]);
	}
	ck_assert_int_eq(ledger_status(b, &st), 0);
	t1 = st.time_ns + SEC;
	ck_assert_msg(ledger_build_block(b, t1, keys[K_VAL].pub, &bytes, &len, &dropped, why) == 0,
		      "%s", why);
	ck_assert_uint_eq(dropped, 0);
	/* The fourth transaction's signature changed, the transactions root
	 * made to match: only the signature is wrong. */
	ck_assert_int_eq(block_decode(&blk, bytes, len), 0);
	ck_assert_uint_eq(blk.ntx, 6);
	at = blk.txs[3].len - 2;
	memcpy(changed, blk.txs[3].bytes, blk.txs[3].len);
	changed[at] ^= 0x01;
	ck_assert_int_eq(block_tx_replace(&blk, 3, changed, blk.txs[3].len), 0);
	block_txs_root(&blk, blk.header.txs_root);
	enc_init(&e);
	block_encode(&e, &blk);
	ck_assert_int_eq(enc_error(&e), 0);
	ck_assert_int_eq(ledger_check_block(a, e.buf, e.len, NULL, why), TALLY_E_SIGNATURE);
	ck_assert_msg(strstr(why, "transaction 3") != NULL, "%s", why);
	/* Checked again: still refused (nothing of the bad one was noted). */
	ck_assert_int_eq(ledger_check_block(a, e.buf, e.len, NULL, why), TALLY_E_SIGNATURE);
	enc_free(&e);
	block_free(&blk);
	ck_assert_msg(ledger_check_block(a, bytes, len, NULL, why) == 0, "%s", why);
	free(bytes);
	for (int i = 0; i < 6; i++)
		submit_ok(a, &s[i]);
	ck_assert_uint_eq(lt_produce(a, t1).ntx, 6);
	ledger_close(a);
	ledger_close(b);
}
END_TEST

/* --- SIGKILL in the middle of commits ------------------------------------------------ */

#define CRASH_BATCH 400

/* Opens the ledger, says so on ready (one byte), then commits blocks of
 * transfers until it is killed. */
static void crash_child(const char *path, int ready)
{
	struct ledger *l = open_at(path, true);
	struct ledger_status st;
	struct signed_tx *s = malloc(sizeof(*s) * CRASH_BATCH);
	struct account a;
	char why[WHY_MAX];

	ledger_status(l, &st);
	ledger_account(l, keys[K_TENANT].pub, &a);
	if (write(ready, "r", 1) != 1)
		_exit(4);
	for (uint64_t round = 0;; round++) {
		for (int i = 0; i < CRASH_BATCH; i++) {
			uint8_t h[HASH_LEN];

			make_transfer(&s[i], K_TENANT, i % 2 ? K_OTHER : K_PROV, a.nonce + i, 1);
			if (ledger_submit(l, s[i].bytes, s[i].len, h, why))
				_exit(2);
		}
		a.nonce += CRASH_BATCH;
		if (ledger_produce_block(l, st.time_ns + (round + 1) * SEC, NULL, why))
			_exit(3);
	}
}

START_TEST(test_sigkill_mid_commit)
{
	char dir2[128];
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();

	for (int run = 0; run < 5; run++) {
		struct ledger_status st;
		uint8_t scratch[HASH_LEN];
		struct block_header h;
		struct ledger *l;
		int status, ready[2];
		char c;
		pid_t pid;

		ck_assert_int_eq(pipe(ready), 0);
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			crash_child(dir, ready[1]);
		/* Killed inside the commits, not while the store is first made
		 * (a store never made is "not found", as it should be). */
		ck_assert_int_eq(read(ready[0], &c, 1), 1);
		close(ready[0]);
		close(ready[1]);
		usleep(rand_r(&seed) % 600000);
		ck_assert_int_eq(kill(pid, SIGKILL), 0);
		ck_assert_int_eq(waitpid(pid, &status, 0), pid);
		ck_assert_msg(WIFSIGNALED(status), "child exited early with %d",
			      WEXITSTATUS(status));

		verify_ok(dir);
		l = open_at(dir, true);
		ck_assert_int_eq(ledger_status(l, &st), 0);
		scratch_root(dir, scratch);
		ck_assert_mem_eq(st.state_root, scratch, HASH_LEN);
		if (st.height) {
			ck_assert_int_eq(ledger_header(l, st.height, &h), 0);
			ck_assert_mem_eq(h.state_root, scratch, HASH_LEN);
		}
		/* Supply is conserved whatever the height. */
		ck_assert_uint_eq(total_supply(l), TENANT_FUNDS + OTHER_FUNDS + STAKE);
		/* The state is what replaying the stored blocks gives. */
		snprintf(dir2, sizeof(dir2), "%s/replay", dir);
		cb_rm_tree(dir2);
		replay_into(l, dir2, st.height);
		cb_rm_tree(dir2);
		/* The validator goes on (at a later round if it had signed). */
		lt_produce(l, st.time_ns + SEC);
		ledger_close(l);
	}
}
END_TEST

/* --- a full disk -------------------------------------------------------------------- */

START_TEST(test_disk_full)
{
	char mnt[128], why[WHY_MAX];
	struct ledger_status before, after;
	struct ledger *l;
	uint64_t nonce = 0, t = T0;
	int rc = 0, blocks = 0;

	snprintf(mnt, sizeof(mnt), "%s/small", dir);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (mount("tally-test", mnt, "tmpfs", 0, "size=512k") != 0) {
		printf("SKIP: cannot mount a small tmpfs: %s\n", strerror(errno));
		return;
	}
	l = open_at(mnt, true);
	while (blocks < 1000) {
		for (int i = 0; i < 100; i++) {
			struct signed_tx s;
			uint8_t h[HASH_LEN];

			make_transfer(&s, K_TENANT, K_OTHER, nonce + i, 1);
			rc = ledger_submit(l, s.bytes, s.len, h, why);
			ck_assert_msg(rc == 0, "%s", why);
		}
		ck_assert_int_eq(ledger_status(l, &before), 0);
		rc = ledger_produce_block(l, t += SEC, NULL, why);
		if (rc)
			break;
		nonce += 100;
		blocks++;
	}
	ck_assert_msg(rc == TALLY_E_DISKFULL, "rc %d (%s): %s", rc, tally_strerror(rc), why);
	ck_assert_uint_gt(blocks, 0);
	/* Nothing of the failed block, in memory or on disk. */
	ck_assert_int_eq(ledger_status(l, &after), 0);
	ck_assert_uint_eq(after.height, before.height);
	ck_assert_mem_eq(after.state_root, before.state_root, HASH_LEN);
	ck_assert_uint_eq(after.mempool_size, before.mempool_size);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + nonce);
	/* Nor in /metrics: a block that failed is not counted as committed. */
	ck_assert_uint_eq(after.committed, before.committed);
	ck_assert_uint_eq(after.committed_from_trial, before.committed_from_trial);
	printf("disk full: block %" PRIu64 " refused: %s\n", before.height + 1, why);
	/* With room again the same node, not reopened, goes on: the decided
	 * block is committed after all (its trial was dropped with the failed
	 * commit: executed on the state reloaded from the disk), then another
	 * from its trial. What it holds in memory is what the disk holds. */
	ck_assert_int_eq(mount(NULL, mnt, NULL, MS_REMOUNT, "size=4m"), 0);
	rc = ledger_produce_block(l, t += SEC, NULL, why);
	ck_assert_msg(rc == 0, "after the disk has room: %s", why);
	nonce += 100;
	ck_assert_int_eq(ledger_status(l, &after), 0);
	ck_assert_uint_gt(after.height, before.height);
	ck_assert_uint_gt(after.committed_from_trial, 0);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + nonce);
	before = after;
	ledger_close(l);
	verify_ok(mnt);
	l = open_at(mnt, false);
	ck_assert_int_eq(ledger_status(l, &after), 0);
	ck_assert_uint_eq(after.height, before.height);
	ck_assert_mem_eq(after.last_block_id, before.last_block_id, HASH_LEN);
	ck_assert_mem_eq(after.state_root, before.state_root, HASH_LEN);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + nonce);
	ledger_close(l);
	ck_assert_int_eq(umount(mnt), 0);
}
END_TEST

/* --- consensus -------------------------------------------------------------------- */

START_TEST(test_proposer_rotation)
{
	struct validator_set s;
	size_t order[6], count[3] = { 0 };

	memset(&s, 0, sizeof(s));
	s.n = 3;
	for (int i = 0; i < 3; i++) {
		memset(s.v[i].pubkey, 0x10 * (i + 1), PUBKEY_LEN);   /* ascending */
		s.v[i].stake = (uint64_t)i + 1;
	}
	/* Worked by hand from the algorithm: C B A C B C. */
	for (int r = 0; r < 6; r++)
		order[r] = valset_increment(&s);
	ck_assert_uint_eq(order[0], 2);
	ck_assert_uint_eq(order[1], 1);
	ck_assert_uint_eq(order[2], 0);
	ck_assert_uint_eq(order[3], 2);
	ck_assert_uint_eq(order[4], 1);
	ck_assert_uint_eq(order[5], 2);
	/* Over many rounds each validator proposes in proportion to stake. */
	for (int r = 0; r < 600; r++)
		count[valset_increment(&s)]++;
	ck_assert_uint_eq(count[0], 100);
	ck_assert_uint_eq(count[1], 200);
	ck_assert_uint_eq(count[2], 300);
}
END_TEST

START_TEST(test_signing_guard_survives_restart)
{
	char path[128], why[WHY_MAX];
	struct privval pv;
	struct vote v = { .type = VOTE_PREVOTE, .height = 5, .round = 0 };
	uint8_t sig1[SIG_LEN], sig2[SIG_LEN];

	snprintf(path, sizeof(path), "%s/signer_state", dir);
	ck_assert_int_eq(privval_open(&pv, path, &keys[K_VAL], why), 0);
	memset(v.block_id, 0xaa, HASH_LEN);
	ck_assert_int_eq(privval_sign_vote(&pv, gen_hash(), &v, sig1, why), 0);
	privval_close(&pv);

	ck_assert_int_eq(privval_open(&pv, path, &keys[K_VAL], why), 0);
	memset(v.block_id, 0xbb, HASH_LEN);
	ck_assert_int_eq(privval_sign_vote(&pv, gen_hash(), &v, sig2, why), TALLY_E_STATE);
	ck_assert_ptr_nonnull(strstr(why, "conflicting"));
	memset(v.block_id, 0xaa, HASH_LEN);
	ck_assert_int_eq(privval_sign_vote(&pv, gen_hash(), &v, sig2, why), 0);
	ck_assert_mem_eq(sig1, sig2, SIG_LEN);
	v.height = 4;
	ck_assert_int_eq(privval_sign_vote(&pv, gen_hash(), &v, sig2, why), TALLY_E_STATE);
	v.height = 5;
	v.type = VOTE_PRECOMMIT;
	memset(v.block_id, 0xbb, HASH_LEN);
	ck_assert_int_eq(privval_sign_vote(&pv, gen_hash(), &v, sig2, why), 0);
	ck_assert_int_eq(vote_verify(&v, keys[K_VAL].pub, gen_hash(), sig2), 0);
	privval_close(&pv);
}
END_TEST

struct hook_seen {
	int calls;
	uint64_t height;
	size_t ntx;
	uint8_t hash[HASH_LEN];
	uint8_t kind;
};

static void hook(void *ctx, const struct ledger_committed *c)
{
	struct hook_seen *h = ctx;

	h->calls++;
	h->height = c->header->height;
	h->ntx = c->ntx;
	if (c->ntx) {
		struct tx t;

		memcpy(h->hash, c->hashes[0], HASH_LEN);
		ck_assert_int_eq(tx_decode(&t, c->raw[0].bytes, c->raw[0].len), 0);
		h->kind = t.kind;
	}
}

START_TEST(test_certificate_is_real)
{
	struct ledger *l = open_at(dir, true);
	struct validator_set vals;
	struct commit_cert c;
	struct block_header h;
	struct hook_seen seen = { 0 };
	struct signed_tx s;
	uint8_t id[HASH_LEN];

	ledger_set_commit_hook(l, hook, &seen);
	make_transfer(&s, K_TENANT, K_OTHER, 0, 3);
	submit_ok(l, &s);
	lt_produce(l, T0 + SEC);
	ck_assert_int_eq(seen.calls, 1);
	ck_assert_uint_eq(seen.height, 1);
	ck_assert_uint_eq(seen.ntx, 1);
	ck_assert_mem_eq(seen.hash, s.hash, HASH_LEN);
	ck_assert_int_eq(seen.kind, TX_TRANSFER);
	ck_assert_int_eq(ledger_header(l, 1, &h), 0);
	ck_assert_int_eq(ledger_cert(l, 1, &c), 0);
	ck_assert_int_eq(ledger_valset(l, 1, &vals), 0);
	block_id(&h, id);
	ck_assert_mem_eq(c.block_id, id, HASH_LEN);
	ck_assert_uint_eq(c.n, 1);
	ck_assert_mem_eq(c.sigs[0].validator, keys[K_VAL].pub, PUBKEY_LEN);
	ck_assert_mem_eq(h.proposer, keys[K_VAL].pub, PUBKEY_LEN);
	ck_assert_int_eq(cert_verify(&c, &vals, gen_hash()), 0);
	ledger_close(l);
}
END_TEST

/* Evidence of equivocation: two conflicting precommits the validator
 * signed, submitted by another account, are committed and recorded (no
 * effect beyond the submitter's nonce); what is not evidence is refused at
 * admission with the rule it breaks; the stored chain still verifies. */
static void signed_vote(struct signed_vote *sv, int who, uint8_t type, uint64_t height,
			uint8_t id_byte)
{
	memset(sv, 0, sizeof(*sv));
	sv->v.type = type;
	sv->v.height = height;
	sv->v.round = 2;
	memset(sv->v.block_id, id_byte, HASH_LEN);
	memcpy(sv->validator, keys[who].pub, PUBKEY_LEN);
	ck_assert_int_eq(vote_sign(&sv->v, &keys[who], gen_hash(), sv->sig), 0);
}

/* An EVIDENCE of K_OTHER carrying a then b as they are (evidence_make
 * would order them). */
static void make_evidence(struct signed_tx *out, uint64_t nonce, const struct signed_vote *a,
			  const struct signed_vote *b)
{
	struct tx t;
	struct enc e;

	tx_base(&t, TX_EVIDENCE, K_OTHER, nonce);
	enc_init(&e);
	signed_vote_encode(&e, a);
	memcpy(t.u.evidence.vote_a, e.buf, e.len);
	t.u.evidence.vote_a_len = (uint32_t)e.len;
	e.len = 0;
	signed_vote_encode(&e, b);
	memcpy(t.u.evidence.vote_b, e.buf, e.len);
	t.u.evidence.vote_b_len = (uint32_t)e.len;
	enc_free(&e);
	tx_finish(&t, K_OTHER, out);
}

START_TEST(test_evidence_recorded)
{
	struct ledger *l = open_at(dir, true);
	struct signed_vote a, b, c, p;
	struct signed_tx s;
	struct ledger_tx_status st;
	struct account before, after;
	char why[WHY_MAX];
	uint64_t height;

	signed_vote(&a, K_VAL, VOTE_PRECOMMIT, 1, 0xaa);
	signed_vote(&b, K_VAL, VOTE_PRECOMMIT, 1, 0x11);
	/* Not evidence: one block twice, a prevote against a precommit, a
	 * non-validator, a forged signature, the wrong order, a height to come. */
	ck_assert_int_eq(evidence_make(&(struct tx_evidence){ 0 }, &a, &a), TALLY_E_INVALID);
	make_evidence(&s, 0, &a, &a);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_INVALID);
	ck_assert_msg(strstr(why, "do not conflict"), "%s", why);
	signed_vote(&p, K_VAL, VOTE_PREVOTE, 1, 0x11);
	ck_assert_int_eq(evidence_make(&(struct tx_evidence){ 0 }, &a, &p), TALLY_E_INVALID);
	make_evidence(&s, 0, &p, &a);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_INVALID);
	signed_vote(&c, K_TENANT, VOTE_PRECOMMIT, 1, 0xaa);
	signed_vote(&p, K_TENANT, VOTE_PRECOMMIT, 1, 0x11);
	make_evidence(&s, 0, &p, &c);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_UNAUTHORIZED);
	ck_assert_msg(strstr(why, "is not a validator"), "%s", why);
	c = a;
	c.sig[5] ^= 1;
	make_evidence(&s, 0, &b, &c);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_SIGNATURE);
	ck_assert_msg(strstr(why, "evidence"), "%s", why);
	make_evidence(&s, 0, &a, &b);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_ENCODING);
	signed_vote(&c, K_VAL, VOTE_PRECOMMIT, 9, 0xaa);
	signed_vote(&p, K_VAL, VOTE_PRECOMMIT, 9, 0x11);
	make_evidence(&s, 0, &p, &c);
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_RANGE);

	ck_assert_int_eq(ledger_account(l, keys[K_OTHER].pub, &before), 0);
	{
		struct tx t;

		tx_base(&t, TX_EVIDENCE, K_OTHER, 0);
		ck_assert_int_eq(evidence_make(&t.u.evidence, &a, &b), 0);
		tx_finish(&t, K_OTHER, &s);
	}
	/* The only validator cannot be jailed: the set would be empty. */
	ck_assert_int_eq(submit_err(l, &s, why), TALLY_E_STATE);
	ck_assert_msg(strstr(why, "validator set empty"), "%s", why);
	/* With a second validator it is judged (slashing and jailing are
	 * test_stake.c's; this is the node's admission and commit). */
	{
		struct tx t;

		tx_base(&t, TX_STAKE, K_TENANT, 0);
		t.u.stake.amount = 1;   /* K_VAL keeps more than 2/3 and signs alone */
		tx_finish(&t, K_TENANT, &s);
	}
	submit_ok(l, &s);
	lt_produce(l, T0 + SEC);
	{
		struct tx t;

		tx_base(&t, TX_EVIDENCE, K_OTHER, 0);
		ck_assert_int_eq(evidence_make(&t.u.evidence, &a, &b), 0);
		tx_finish(&t, K_OTHER, &s);
	}
	submit_ok(l, &s);
	height = lt_produce(l, T0 + 2 * SEC).height;
	ck_assert_int_eq(ledger_tx_status(l, s.hash, &st), 0);
	ck_assert_int_eq(st.status, LEDGER_TX_COMMITTED);
	ck_assert_uint_eq(st.height, height);
	ck_assert_int_eq(ledger_account(l, keys[K_OTHER].pub, &after), 0);
	ck_assert_uint_eq(after.balance, before.balance);
	ck_assert_uint_eq(after.nonce, before.nonce + 1);
	ledger_close(l);
	verify_ok(dir);
}
END_TEST

/* --- batches, the worker pool, admission during commits ------------------- */

static void batch_item(struct ledger_batch_item *it, const struct signed_tx *s)
{
	memset(it, 0, sizeof(*it));
	it->bytes = s->bytes;
	it->len = s->len;
}

/* Good and bad transactions in one batch: each gets what a submission of
 * its own would have got, in the batch's order. */
START_TEST(test_batch_answers_each)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx ok0, badsig, gap2, ok1, reuse0, cut;
	struct ledger_batch_item it[8];
	struct ledger_status st;
	char why[WHY_MAX];
	uint64_t next;

	make_transfer(&ok0, K_TENANT, K_OTHER, 0, 5);
	make_transfer(&badsig, K_OTHER, K_TENANT, 0, 7);
	badsig.bytes[badsig.len - 1] ^= 1;               /* in the signature */
	make_transfer(&gap2, K_TENANT, K_OTHER, 2, 5);
	make_transfer(&ok1, K_TENANT, K_OTHER, 1, 5);
	make_transfer(&reuse0, K_TENANT, K_OTHER, 0, 6);
	cut = ok1;
	cut.len -= 10;
	batch_item(&it[0], &ok0);
	batch_item(&it[1], &badsig);
	batch_item(&it[2], &gap2);         /* held until ok1 ... */
	batch_item(&it[3], &ok1);          /* ... which follows in the batch */
	batch_item(&it[4], &ok0);          /* the same bytes again */
	batch_item(&it[5], &reuse0);       /* nonce 0 is taken (a used nonce is a replay) */
	batch_item(&it[6], &cut);
	memset(&it[7], 0, sizeof(it[7]));  /* the caller's own refusal stays */
	it[7].rc = TALLY_E_ENCODING;
	strcpy(it[7].why, "not hex");
	ck_assert_int_eq(ledger_submit_batch(l, it, 8, NULL, why), 0);
	ck_assert_int_eq(it[0].rc, 0);
	ck_assert(!it[0].held);
	ck_assert_mem_eq(it[0].hash, ok0.hash, HASH_LEN);
	ck_assert_int_eq(it[1].rc, TALLY_E_SIGNATURE);
	ck_assert_int_eq(it[2].rc, 0);
	ck_assert(it[2].held);
	ck_assert_int_eq(it[3].rc, 0);
	ck_assert(!it[3].held);
	ck_assert_int_eq(it[4].rc, TALLY_E_REPLAY);
	ck_assert_int_eq(it[5].rc, TALLY_E_REPLAY);
	ck_assert_msg(it[6].rc != 0 && it[6].why[0], "a cut transaction: %d", it[6].rc);
	ck_assert_int_eq(it[7].rc, TALLY_E_ENCODING);
	ck_assert_str_eq(it[7].why, "not hex");
	for (int i = 1; i < 7; i++)
		if (it[i].rc)
			ck_assert_msg(it[i].why[0], "item %d has no reason", i);
	ck_assert_int_eq(ledger_next_nonce(l, keys[K_TENANT].pub, &next), 0);
	ck_assert_uint_eq(next, 3);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 3);
	ck_assert_uint_eq(lt_produce(l, T0 + SEC).ntx, 3);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + 15);
	ledger_close(l);
}
END_TEST

/* A hash handed over with the batch (the peer transport hashed the bytes
 * for its seen-set) is taken as is, not computed again: the mempool files
 * the transaction under it. A wrong one shows that it was not recomputed;
 * the transport only ever hands over tx_hash's. */
START_TEST(test_batch_takes_handed_hash)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx a, b;
	struct ledger_batch_item it[2];
	uint8_t other[HASH_LEN];
	char why[WHY_MAX];

	make_transfer(&a, K_TENANT, K_OTHER, 0, 5);
	make_transfer(&b, K_TENANT, K_OTHER, 1, 5);
	batch_item(&it[0], &a);
	memcpy(it[0].hash, a.hash, HASH_LEN);
	it[0].hashed = true;
	batch_item(&it[1], &b);
	memcpy(other, b.hash, HASH_LEN);
	other[0] ^= 1;
	memcpy(it[1].hash, other, HASH_LEN);
	it[1].hashed = true;
	ck_assert_int_eq(ledger_submit_batch(l, it, 2, NULL, why), 0);
	ck_assert_int_eq(it[0].rc, 0);
	ck_assert_int_eq(it[1].rc, 0);
	ck_assert_mem_eq(it[0].hash, a.hash, HASH_LEN);
	ck_assert_mem_eq(it[1].hash, other, HASH_LEN);
	ck_assert(ledger_tx_verified(l, a.hash));
	ck_assert(ledger_tx_verified(l, other));
	ck_assert(!ledger_tx_verified(l, b.hash));
	ledger_close(l);
}
END_TEST

/* A batch over the limit is refused whole: nothing of it is admitted. */
START_TEST(test_batch_too_long_refused)
{
	struct ledger *l = open_at(dir, true);
	struct ledger_batch_item *it = calloc(LEDGER_BATCH_MAX + 1, sizeof(*it));
	struct signed_tx s;
	struct ledger_status st;
	char why[WHY_MAX];

	ck_assert_ptr_nonnull(it);
	make_transfer(&s, K_TENANT, K_OTHER, 0, 5);
	batch_item(&it[0], &s);
	ck_assert_int_eq(ledger_submit_batch(l, it, LEDGER_BATCH_MAX + 1, NULL, why),
			 TALLY_E_TOOLONG);
	ck_assert_msg(strstr(why, "at most"), "%s", why);
	ck_assert_int_eq(it[0].rc, 0);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 0);
	/* The same transaction alone is fine. */
	ck_assert_int_eq(ledger_submit_batch(l, it, 1, NULL, why), 0);
	ck_assert_int_eq(it[0].rc, 0);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	ck_assert_uint_eq(st.mempool_size, 1);
	free(it);
	ledger_close(l);
}
END_TEST

struct squares {
	uint64_t *out;
	size_t n;
};

static void square(void *ctx, size_t i)
{
	struct squares *q = ctx;

	ck_assert_uint_lt(i, q->n);
	ck_assert_uint_eq(q->out[i], 0);         /* each item once */
	q->out[i] = (uint64_t)i * i + 1;
}

struct caller {
	struct workers *w;
	struct squares q;
};

static void *run_caller(void *arg)
{
	struct caller *c = arg;

	workers_run(c->w, c->q.n, square, &c->q);
	return NULL;
}

/* Every item runs once, whoever runs it, with several callers at once; and
 * without a pool the caller runs them all. */
START_TEST(test_workers_run_every_item_once)
{
	enum { CALLERS = 4, N = 5000 };
	struct workers *w = workers_new(3);
	struct caller c[CALLERS];
	pthread_t t[CALLERS];

	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(workers_threads(w), 3);
	for (int k = 0; k < CALLERS; k++) {
		c[k].w = k == CALLERS - 1 ? NULL : w;
		c[k].q.n = N - (size_t)k;            /* 1 item short each: no two alike */
		c[k].q.out = calloc(N, sizeof(uint64_t));
		ck_assert_ptr_nonnull(c[k].q.out);
		ck_assert_int_eq(pthread_create(&t[k], NULL, run_caller, &c[k]), 0);
	}
	for (int k = 0; k < CALLERS; k++) {
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
		for (size_t i = 0; i < c[k].q.n; i++)
			ck_assert_uint_eq(c[k].q.out[i], (uint64_t)i * i + 1);
		ck_assert_uint_eq(c[k].q.out[c[k].q.n - 1 + (k ? 1 : 0)],
				  k ? 0 : (uint64_t)(N - 1) * (N - 1) + 1);
		free(c[k].q.out);
	}
	/* Zero items, and one. */
	{
		uint64_t one = 0;
		struct squares q = { &one, 1 };

		workers_run(w, 0, square, &q);
		ck_assert_uint_eq(one, 0);
		workers_run(w, 1, square, &q);
		ck_assert_uint_eq(one, 1);
	}
	workers_free(w);
	workers_free(NULL);
}
END_TEST

enum { RACE_TXS = 400 };

struct submitter_arg {
	struct ledger *l;
	struct signed_tx *txs;
	int failed_at;                   /* -1: every one admitted */
	int rc;
	char why[WHY_MAX];
};

static void *submit_all(void *arg)
{
	struct submitter_arg *a = arg;

	a->failed_at = -1;
	for (int i = 0; i < RACE_TXS; i++) {
		uint8_t hash[HASH_LEN];

		a->rc = ledger_submit(a->l, a->txs[i].bytes, a->txs[i].len, hash, a->why);
		if (a->rc) {
			a->failed_at = i;
			break;
		}
	}
	return NULL;
}

/* Submissions while blocks commit on another thread: each one is judged
 * against the committed state plus what is pending, never against a block
 * half applied, so an account's transactions sent in nonce order are all
 * admitted, and all committed exactly once. */
START_TEST(test_admission_while_committing)
{
	struct ledger *l = open_at(dir, true);
	struct signed_tx *txs = calloc(RACE_TXS, sizeof(*txs));
	struct submitter_arg a = { .l = l, .failed_at = -1 };
	struct account acc;
	pthread_t t;
	uint64_t time_ns = T0, blocks = 0, total = 0;

	ck_assert_ptr_nonnull(txs);
	for (int i = 0; i < RACE_TXS; i++)
		make_transfer(&txs[i], K_TENANT, K_OTHER, (uint64_t)i, 1);
	a.txs = txs;
	ck_assert_int_eq(pthread_create(&t, NULL, submit_all, &a), 0);
	do {
		struct ledger_block_result r = lt_produce(l, time_ns += SEC);

		total += r.ntx;
		blocks++;
		ck_assert_int_eq(ledger_account(l, keys[K_TENANT].pub, &acc), 0);
	} while (acc.nonce < RACE_TXS && a.failed_at < 0 && blocks < 100000);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(a.failed_at < 0, "transaction %d refused: %s", a.failed_at, a.why);
	ck_assert_uint_eq(acc.nonce, RACE_TXS);
	ck_assert_uint_eq(total, RACE_TXS);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + RACE_TXS);
	ck_assert_uint_eq(total_supply(l), TENANT_FUNDS + OTHER_FUNDS + STAKE);
	ledger_close(l);
	free(txs);
	verify_ok(dir);
}
END_TEST

/* The mempool's snapshot holds the WAL's start while a block commits; the
 * writer checkpoints once it lets go, so the WAL file stops growing at
 * about STORE_CHECKPOINT_FRAMES pages whatever the number of blocks. */
START_TEST(test_wal_stays_bounded)
{
	struct ledger *l = open_at(dir, true);
	char wal[sizeof(dir) + 32];
	struct stat sb;
	uint64_t nonce = 0, most = 0;
	int blocks;

	snprintf(wal, sizeof(wal), "%s/ledger.sqlite-wal", dir);
	/* A block of five transfers writes about 19 pages: 200 of them grow a
	 * WAL nobody checkpoints to about 15 MB, near twice the bound. */
	for (blocks = 0; blocks < 200; blocks++) {
		struct signed_tx s;

		for (int i = 0; i < 5; i++) {
			make_transfer(&s, K_TENANT, K_OTHER, nonce++, 1);
			submit_ok(l, &s);
		}
		lt_produce(l, T0 + (uint64_t)(blocks + 1) * SEC);
		ck_assert_int_eq(stat(wal, &sb), 0);
		if ((uint64_t)sb.st_size > most)
			most = (uint64_t)sb.st_size;
	}
	ck_assert_msg(most <= (uint64_t)2 * STORE_CHECKPOINT_FRAMES * (4096 + 24) + 32,
		      "the WAL reached %" PRIu64 " bytes after %d blocks", most, blocks);
	ck_assert_uint_eq(balance(l, K_OTHER), OTHER_FUNDS + nonce);
	ledger_close(l);
}
END_TEST

Suite *ledger_suite(void)
{
	Suite *s = suite_create("ledger");
	TCase *tc = tcase_create("ledger");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_reopen_same_chain);
	tcase_add_test(tc, test_reopen_other_genesis_refused);
	tcase_add_test(tc, test_reopen_older_state_format_refused);
	tcase_add_test(tc, test_store_upgrade_from_v2);
	tcase_add_test(tc, test_store_upgrade_from_v3);
	tcase_add_test(tc, test_store_rollback_forgets);
	tcase_add_test(tc, test_verify_detects_every_byte);
	tcase_add_test(tc, test_verify_detects_stored_state);
	tcase_add_test(tc, test_replay_and_wrong_chain);
	tcase_add_test(tc, test_nonce_gap);
	tcase_add_test(tc, test_hold_order);
	tcase_add_test(tc, test_hold_bounds_and_replays);
	tcase_add_test(tc, test_hold_default_window);
	tcase_add_test(tc, test_hold_unknown_account);
	tcase_add_test(tc, test_hold_full_evicts_greedy);
	tcase_add_test(tc, test_api_txs_binary);
	tcase_add_test(tc, test_api_txs_binary_async);
	tcase_add_test(tc, test_hold_committed_elsewhere);
	tcase_add_test(tc, test_recheck_and_promote_from_bytes);
	tcase_add_test(tc, test_hold_gap_never_fills);
	tcase_add_test(tc, test_hold_becomes_invalid);
	tcase_add_test(tc, test_overspend_refused);
	tcase_add_test(tc, test_mempool_bound_and_roles);
	tcase_add_test(tc, test_lease_flow_balances);
	tcase_add_test(tc, test_escrow_exhaustion);
	tcase_add_test(tc, test_two_stores_identical_headers);
	tcase_add_test(tc, test_state_root_changes_with_state);
	tcase_add_test(tc, test_time_must_increase);
	tcase_add_test(tc, test_api_u64_above_int64_is_a_string);
	tcase_add_test(tc, test_apply_block_replays_and_refuses_tampering);
	tcase_add_test(tc, test_trial_commit_same_store);
	tcase_add_test(tc, test_decided_not_the_block_tried_last);
	tcase_add_test(tc, test_trial_out_of_memory_executes);
	tcase_add_test(tc, test_block_signatures_checked_ahead);
	tcase_add_test(tc, test_sigkill_mid_commit);
	tcase_add_test(tc, test_disk_full);
	tcase_add_test(tc, test_proposer_rotation);
	tcase_add_test(tc, test_signing_guard_survives_restart);
	tcase_add_test(tc, test_certificate_is_real);
	tcase_add_test(tc, test_evidence_recorded);
	tcase_add_test(tc, test_batch_answers_each);
	tcase_add_test(tc, test_batch_takes_handed_hash);
	tcase_add_test(tc, test_batch_too_long_refused);
	tcase_add_test(tc, test_workers_run_every_item_once);
	tcase_add_test(tc, test_admission_while_committing);
	tcase_add_test(tc, test_wal_stays_bounded);
	suite_add_tcase(s, tc);
	return s;
}
