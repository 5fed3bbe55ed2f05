/* The ledger engine (see ledger.h).
 *
 * Producing a block (ledger_produce_block) and applying one made elsewhere
 * (ledger_apply_block) share one path:
 *   1. BEGIN IMMEDIATE;
 *   2. apply each transaction to the state in the store (state_apply_tx);
 *      its row goes into txs, USAGE appends to the usage log;
 *   3. recompute the dirty state-root buckets, the usage-log root and the
 *      next validator set; fill the header;
 *   4. certify: produced blocks run the consensus round state machine with a
 *      loopback transport (the devnet validator proposes, prevotes and
 *      precommits; its precommit is the certificate); applied blocks check
 *      the given certificate against the current set;
 *   5. write the block row (header, body, cert, next set) and the proposer
 *      priorities, then COMMIT.
 * Any failure rolls the SQLite transaction back and rebuilds the in-memory
 * state tree from the store, so memory never runs ahead of the disk; the
 * mempool is changed only after a successful COMMIT.
 *
 * Signatures: a transaction in the mempool was verified when it was
 * submitted; block production uses the decoded entry and never verifies it
 * again. An applied block's transactions are verified unless the same hash
 * is in the mempool.
 *
 * If the process dies after the validator recorded a signature but before
 * the COMMIT, the block is absent on restart and the signing guard refuses
 * to sign another block at that (height, round): production resumes at the
 * next round, as a Tendermint validator would after a timeout. */
#include "daemon/ledger/ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/ledger/consensus.h"
#include "daemon/ledger/mempool.h"
#include "daemon/ledger/state.h"
#include "lib/chain.h"
#include "lib/chainfile.h"
#include "lib/errors.h"

#define LEDGER_DB "ledger.sqlite"
#define LEDGER_SIGNER_STATE "signer_state"
#define LOOP_QUEUE_MAX 16

/* The devnet transport: messages this node sends come back to it. */
struct loop_msg {
	bool is_vote;
	struct proposal p;
	struct vote v;
	uint8_t who[PUBKEY_LEN];
	uint8_t sig[SIG_LEN];
};

struct ledger {
	pthread_mutex_t mu;
	struct store *st;
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t genesis_hash[HASH_LEN];
	uint64_t genesis_time_ns;
	const struct tally_key *key;
	bool has_pv;
	struct privval pv;
	struct consensus cs;
	struct mempool *mp;
	struct state_tree tree;
	size_t block_max_txs;
	void (*log)(void *ctx, const char *line);
	void *log_ctx;
	ledger_hook_fn hook;
	void *hook_ctx;

	/* The tip. */
	uint64_t height;
	uint64_t time_ns;
	uint8_t last_id[HASH_LEN];
	uint8_t last_cert_hash[HASH_LEN];
	uint64_t usage_size;
	struct validator_set vals;           /* S_{height + 1}, with priorities */

	/* Consensus loopback. */
	struct loop_msg queue[LOOP_QUEUE_MAX];
	size_t nqueue;
	uint8_t building_id[HASH_LEN];
};

static void logf_(struct ledger *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void logf_(struct ledger *l, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (l->log)
		l->log(l->log_ctx, line);
	else
		fprintf(stderr, "tallyd: ledger: %s\n", line);
}

static void lock(struct ledger *l)
{
	pthread_mutex_lock(&l->mu);
}

static void unlock(struct ledger *l)
{
	pthread_mutex_unlock(&l->mu);
}

/* --- loopback transport ----------------------------------------------------- */

static void loop_send_proposal(void *ctx, const struct proposal *p, const uint8_t sig[SIG_LEN])
{
	struct ledger *l = ctx;
	struct loop_msg *m;

	if (l->nqueue == LOOP_QUEUE_MAX)
		return;
	m = &l->queue[l->nqueue++];
	memset(m, 0, sizeof(*m));
	m->p = *p;
	memcpy(m->sig, sig, SIG_LEN);
}

static void loop_send_vote(void *ctx, const struct vote *v, const uint8_t who[PUBKEY_LEN],
			   const uint8_t sig[SIG_LEN])
{
	struct ledger *l = ctx;
	struct loop_msg *m;

	if (l->nqueue == LOOP_QUEUE_MAX)
		return;
	m = &l->queue[l->nqueue++];
	memset(m, 0, sizeof(*m));
	m->is_vote = true;
	m->v = *v;
	memcpy(m->who, who, PUBKEY_LEN);
	memcpy(m->sig, sig, SIG_LEN);
}

/* This node prevotes only for the block it built itself. */
static int loop_block_valid(void *ctx, const uint8_t block_id[HASH_LEN])
{
	struct ledger *l = ctx;

	return memcmp(block_id, l->building_id, HASH_LEN) ? TALLY_E_INVALID : 0;
}

static int loop_drain(struct ledger *l)
{
	size_t i = 0;
	int rc = 0;

	/* Handlers may enqueue further messages; process in order. */
	while (i < l->nqueue && !rc) {
		struct loop_msg m = l->queue[i++];

		rc = m.is_vote ? cs_on_vote(&l->cs, &m.v, m.who, m.sig)
			       : cs_on_proposal(&l->cs, &m.p, m.sig);
	}
	l->nqueue = 0;
	return rc;
}

/* --- open ------------------------------------------------------------------- */

static int valset_from_state_cb(void *ctx, const uint8_t pub[PUBKEY_LEN],
				const struct validator_entry *v)
{
	struct validator_set *s = ctx;

	if (v->jailed || v->stake == 0)
		return 0;
	if (s->n == VALIDATORS_MAX)
		return TALLY_E_TOOLONG;
	memcpy(s->v[s->n].pubkey, pub, PUBKEY_LEN);
	s->v[s->n].stake = v->stake;
	s->v[s->n].priority = 0;
	s->n++;
	return 0;
}

/* The staked, unjailed validators in pubkey order. */
static int valset_from_state(struct store *st, struct validator_set *out)
{
	memset(out, 0, sizeof(*out));
	return store_validator_each(st, valset_from_state_cb, out);
}

static int put_set(struct ledger *l, const char *key, const struct validator_set *s)
{
	struct enc e;
	int rc;

	enc_init(&e);
	priorities_encode(&e, s);
	rc = enc_error(&e);
	if (!rc)
		rc = store_meta_put(l->st, key, e.buf, e.len);
	enc_free(&e);
	return rc;
}

static int create_store(struct ledger *l, const struct genesis *g, char *why)
{
	uint8_t ver[4] = { STORE_SCHEMA_VERSION, 0, 0, 0 };
	struct validator_set s1 = g->validators;
	int rc = store_begin(l->st);

	if (rc)
		return why_set(why, rc, "cannot start the genesis transaction: %s",
			       store_errmsg(l->st));
	for (size_t i = 0; i < s1.n; i++)
		s1.v[i].priority = 0;
	rc = store_meta_put(l->st, "chain_id", g->chain_id, strlen(g->chain_id));
	if (!rc)
		rc = store_meta_put(l->st, "genesis_hash", l->genesis_hash, HASH_LEN);
	if (!rc)
		rc = store_meta_put(l->st, "schema_version", ver, sizeof(ver));
	if (!rc)
		rc = state_load_genesis(l->st, g);
	if (!rc)
		rc = state_tree_update(&l->tree, l->st);
	if (!rc)
		rc = put_set(l, "priorities", &s1);
	if (!rc)
		rc = put_set(l, "genesis_set", &s1);
	if (!rc)
		rc = store_commit(l->st);
	if (rc) {
		store_rollback(l->st);
		return why_set(why, rc, "cannot write the genesis state: %s", store_errmsg(l->st));
	}
	return 0;
}

static int check_store_genesis(struct ledger *l, const struct genesis *g, uint8_t *cid,
			       size_t cid_len, char *why)
{
	uint8_t *gh = NULL, *ver = NULL;
	size_t ghl, verl;
	int rc;

	if (cid_len != strlen(g->chain_id) || memcmp(cid, g->chain_id, cid_len))
		return why_set(why, TALLY_E_CHAIN_ID, "the store belongs to chain '%.*s', not '%s'",
			       (int)(cid_len > CHAIN_ID_MAX ? CHAIN_ID_MAX : cid_len), cid,
			       g->chain_id);
	rc = store_meta_get(l->st, "genesis_hash", &gh, &ghl);
	if (!rc && (ghl != HASH_LEN || memcmp(gh, l->genesis_hash, HASH_LEN)))
		rc = why_set(why, TALLY_E_INVALID,
			     "the store was created from another genesis file");
	else if (rc)
		why_set(why, rc, "the store has no genesis hash");
	if (!rc) {
		rc = store_meta_get(l->st, "schema_version", &ver, &verl);
		if (!rc && (verl != 4 || ver[0] != STORE_SCHEMA_VERSION || ver[1] || ver[2] || ver[3]))
			rc = why_set(why, TALLY_E_VERSION, "the store's schema version is unknown");
		else if (rc)
			why_set(why, rc, "the store has no schema version");
	}
	free(gh);
	free(ver);
	return rc;
}

/* Tip, usage size, priorities and the state tree from the store. */
static int load_tip(struct ledger *l, char *why)
{
	struct stored_block sb;
	struct block_header h;
	struct commit_cert c;
	uint8_t *pr = NULL;
	size_t prl;
	uint64_t height;
	int rc = store_tip_height(l->st, &height);

	if (rc)
		return why_set(why, rc, "cannot read the chain tip: %s", store_errmsg(l->st));
	l->height = height;
	l->time_ns = l->genesis_time_ns;
	memcpy(l->last_id, l->genesis_hash, HASH_LEN);
	memset(l->last_cert_hash, 0, HASH_LEN);
	l->usage_size = 0;
	if (height) {
		rc = store_block_get(l->st, height, &sb);
		if (rc)
			return why_set(why, rc, "cannot read block %" PRIu64, height);
		rc = header_decode(&h, sb.header, sb.header_len);
		if (!rc)
			rc = cert_decode(&c, sb.cert, sb.cert_len);
		if (!rc) {
			l->time_ns = h.time_ns;
			block_id(&h, l->last_id);
			cert_hash(&c, l->last_cert_hash);
			l->usage_size = h.usage_size;
		}
		stored_block_free(&sb);
		if (rc)
			return why_set(why, TALLY_E_STORE, "stored block %" PRIu64 " does not decode",
				       height);
	}
	rc = store_meta_get(l->st, "priorities", &pr, &prl);
	if (!rc)
		rc = priorities_decode(&l->vals, pr, prl);
	free(pr);
	if (rc)
		return why_set(why, TALLY_E_STORE, "the stored validator priorities are unreadable");
	rc = state_tree_load(&l->tree, l->st);
	if (rc)
		return why_set(why, rc, "cannot load the state-root buckets");
	return 0;
}

static int open_store(struct ledger *l, const struct ledger_config *cfg, char *why)
{
	char path[4096];
	uint8_t *cid = NULL;
	size_t cid_len;
	int rc;

	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
		return why_set(why, TALLY_E_IO, "cannot create %s: %s", cfg->data_dir,
			       strerror(errno));
	if (snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, LEDGER_DB) >= (int)sizeof(path))
		return why_set(why, TALLY_E_INVALID, "data directory path too long");
	rc = store_open(&l->st, path, why);
	if (rc)
		return rc;
	rc = store_meta_get(l->st, "chain_id", &cid, &cid_len);
	if (rc == TALLY_E_NOTFOUND)
		rc = create_store(l, cfg->genesis, why);
	else if (!rc)
		rc = check_store_genesis(l, cfg->genesis, cid, cid_len, why);
	else
		why_set(why, rc, "cannot read %s: %s", path, store_errmsg(l->st));
	free(cid);
	if (!rc)
		rc = load_tip(l, why);
	return rc;
}

int ledger_open(struct ledger **out, const struct ledger_config *cfg, char *why)
{
	struct cs_transport tr = {
		.send_proposal = loop_send_proposal,
		.send_vote = loop_send_vote,
	};
	pthread_mutexattr_t attr;
	struct ledger *l;
	char path[4096];
	int rc;

	*out = NULL;
	why[0] = '\0';
	l = calloc(1, sizeof(*l));
	if (!l)
		return TALLY_E_NOMEM;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&l->mu, &attr);
	pthread_mutexattr_destroy(&attr);
	snprintf(l->chain_id, sizeof(l->chain_id), "%s", cfg->genesis->chain_id);
	genesis_hash(cfg->genesis, l->genesis_hash);
	l->genesis_time_ns = cfg->genesis->genesis_time_ns;
	l->key = cfg->validator_key;
	l->log = cfg->log;
	l->log_ctx = cfg->log_ctx;
	l->block_max_txs = cfg->block_max_txs && cfg->block_max_txs < BLOCK_MAX_TXS ?
			   cfg->block_max_txs : BLOCK_MAX_TXS;
	rc = state_tree_init(&l->tree);
	if (rc)
		goto err;
	rc = open_store(l, cfg, why);
	if (rc)
		goto err;
	l->mp = mempool_new(cfg->mempool_max ? cfg->mempool_max : LEDGER_MEMPOOL_DEFAULT);
	if (!l->mp) {
		rc = TALLY_E_NOMEM;
		goto err;
	}
	if (l->key) {
		snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, LEDGER_SIGNER_STATE);
		rc = privval_open(&l->pv, path, l->key, why);
		if (rc)
			goto err;
		l->has_pv = true;
	}
	tr.ctx = l;
	cs_init(&l->cs, l->chain_id, l->has_pv ? &l->pv : NULL, &tr);
	l->cs.block_valid = loop_block_valid;
	l->cs.app_ctx = l;
	*out = l;
	return 0;
err:
	ledger_close(l);
	return rc;
}

void ledger_close(struct ledger *l)
{
	if (!l)
		return;
	if (l->has_pv)
		privval_close(&l->pv);
	mempool_free(l->mp);
	store_close(l->st);
	state_tree_free(&l->tree);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void ledger_set_commit_hook(struct ledger *l, ledger_hook_fn fn, void *ctx)
{
	lock(l);
	l->hook = fn;
	l->hook_ctx = ctx;
	unlock(l);
}

/* --- submit ----------------------------------------------------------------- */

int ledger_submit(struct ledger *l, const uint8_t *bytes, size_t len, uint8_t hash[HASH_LEN],
		  char *why)
{
	struct timespec now;
	struct tx *t = malloc(sizeof(*t));
	int rc;

	why[0] = '\0';
	if (!t)
		return TALLY_E_NOMEM;
	clock_gettime(CLOCK_REALTIME, &now);
	rc = tx_check(t, bytes, len, l->chain_id, (uint64_t)now.tv_sec, why);
	if (rc)
		goto out;
	tx_hash(bytes, len, hash);
	lock(l);
	rc = mempool_add(l->mp, l->st, t, bytes, len, hash, why);
	unlock(l);
out:
	if (rc && !why[0])
		why_set(why, rc, "%s", tally_strerror(rc));
	free(t);
	return rc;
}

/* --- building a block --------------------------------------------------------- */

/* A block in the making: txs borrow their bytes from the mempool or from
 * the decoded block being applied. */
struct build {
	struct block b;
	struct tx *dtx;
	uint8_t (*hash)[HASH_LEN];
	size_t cap;
	uint8_t (*dropped)[HASH_LEN];
	size_t ndropped;
	struct validator_set next_stakes;
	struct apply_ctx ac;
};

static int build_init(struct build *bd, size_t cap)
{
	memset(bd, 0, sizeof(*bd));
	bd->cap = cap;
	bd->b.txs = calloc(cap ? cap : 1, sizeof(*bd->b.txs));
	bd->dtx = malloc((cap ? cap : 1) * sizeof(*bd->dtx));
	bd->hash = malloc((cap ? cap : 1) * sizeof(*bd->hash));
	bd->dropped = malloc((cap ? cap : 1) * sizeof(*bd->dropped));
	if (!bd->b.txs || !bd->dtx || !bd->hash || !bd->dropped)
		return TALLY_E_NOMEM;
	return 0;
}

static void build_free(struct build *bd)
{
	free(bd->b.txs);   /* the bytes are borrowed */
	free(bd->dtx);
	free(bd->hash);
	free(bd->dropped);
}

static void build_start(struct ledger *l, struct build *bd, uint64_t time_ns)
{
	struct block_header *h = &bd->b.header;

	h->version = BLOCK_VERSION;
	snprintf(h->chain_id, sizeof(h->chain_id), "%s", l->chain_id);
	h->height = l->height + 1;
	h->time_ns = time_ns;
	memcpy(h->prev_block_id, l->last_id, HASH_LEN);
	memcpy(h->last_commit_hash, l->last_cert_hash, HASH_LEN);
	bd->ac.store = l->st;
	bd->ac.chain_id = l->chain_id;
	bd->ac.height = h->height;
	bd->ac.time_ns = time_ns;
	bd->ac.usage_size = l->usage_size;
}

/* Applies one transaction and records it in the block. */
static int build_add(struct build *bd, const struct tx *t, const uint8_t *bytes, size_t len,
		     const uint8_t hash[HASH_LEN], char *why)
{
	size_t i = bd->b.ntx;
	int rc = state_apply_tx(&bd->ac, t, bytes, len, hash, why);

	if (rc)
		return rc;
	rc = store_tx_put(bd->ac.store, hash, bd->ac.height, (uint32_t)i, t->kind, t->signer,
			  bytes, len);
	if (rc)
		return rc;
	bd->b.txs[i].bytes = (uint8_t *)bytes;
	bd->b.txs[i].len = len;
	bd->dtx[i] = *t;
	memcpy(bd->hash[i], hash, HASH_LEN);
	bd->b.ntx++;
	return 0;
}

/* Roots and validator sets once every transaction is applied. */
static int build_finish(struct ledger *l, struct build *bd)
{
	struct block_header *h = &bd->b.header;
	int rc;

	block_txs_root(&bd->b, h->txs_root);
	h->usage_size = bd->ac.usage_size;
	rc = merkle_root(store_merkle(l->st), h->usage_size, h->usage_root);
	if (!rc)
		rc = state_tree_update(&l->tree, l->st);
	if (rc)
		return rc;
	state_tree_root(&l->tree, h->state_root);
	valset_hash(&l->vals, h->validators_hash);
	rc = valset_from_state(l->st, &bd->next_stakes);
	if (!rc && bd->next_stakes.n == 0)
		rc = TALLY_E_VALSET;
	if (!rc)
		valset_hash(&bd->next_stakes, h->next_validators_hash);
	return rc;
}

/* Block row, priorities, COMMIT; then memory and mempool follow. */
static int build_commit(struct ledger *l, struct build *bd, const struct commit_cert *cert)
{
	const struct block_header *h = &bd->b.header;
	struct stored_block sb = { .height = h->height };
	struct validator_set next;
	struct enc eh, eb, ec, ev;
	int rc;

	enc_init(&eh);
	enc_init(&eb);
	enc_init(&ec);
	enc_init(&ev);
	header_encode(&eh, h);
	block_encode(&eb, &bd->b);
	cert_encode(&ec, cert);
	if (memcmp(h->next_validators_hash, h->validators_hash, HASH_LEN))
		chainfile_valset_encode(&ev, &bd->next_stakes);
	rc = enc_error(&eh) ? enc_error(&eh) : enc_error(&eb) ? enc_error(&eb) :
	     enc_error(&ec) ? enc_error(&ec) : enc_error(&ev);
	if (rc)
		goto out;
	block_id(h, sb.id);
	sb.header = eh.buf;
	sb.header_len = eh.len;
	sb.body = eb.buf;
	sb.body_len = eb.len;
	sb.cert = ec.buf;
	sb.cert_len = ec.len;
	sb.next_vals = ev.len ? ev.buf : NULL;
	sb.next_vals_len = ev.len;
	valset_next(&l->vals, &bd->next_stakes, &next);
	rc = store_block_put(l->st, &sb);
	if (!rc)
		rc = put_set(l, "priorities", &next);
	if (!rc)
		rc = store_commit(l->st);
	if (rc)
		goto out;
	l->height = h->height;
	l->time_ns = h->time_ns;
	memcpy(l->last_id, sb.id, HASH_LEN);
	cert_hash(cert, l->last_cert_hash);
	l->usage_size = h->usage_size;
	l->vals = next;
out:
	enc_free(&eh);
	enc_free(&eb);
	enc_free(&ec);
	enc_free(&ev);
	return rc;
}

/* After a failed block: nothing of it may remain, on disk or in memory. */
static void build_abort(struct ledger *l)
{
	store_rollback(l->st);
	if (state_tree_load(&l->tree, l->st))
		logf_(l, "cannot reload the state tree after a failed block: %s",
		      store_errmsg(l->st));
}

static void after_commit(struct ledger *l, struct build *bd)
{
	struct ledger_committed c = {
		.header = &bd->b.header,
		.block_id = l->last_id,
		.ntx = bd->b.ntx,
		.txs = bd->dtx,
		.hashes = (const uint8_t (*)[HASH_LEN])bd->hash,
		.raw = bd->b.txs,
	};
	long dropped;

	/* Hook first: it gets the bytes, which still live in the mempool. */
	if (l->hook)
		l->hook(l->hook_ctx, &c);
	for (size_t i = 0; i < bd->b.ntx; i++)
		mempool_remove(l->mp, bd->hash[i]);
	for (size_t i = 0; i < bd->ndropped; i++)
		mempool_remove(l->mp, bd->dropped[i]);
	dropped = mempool_recheck(l->mp, l->st);
	if (dropped > 0)
		logf_(l, "height %" PRIu64 ": %ld pending transactions no longer apply and were"
		      " dropped", l->height, dropped);
	else if (dropped < 0)
		logf_(l, "height %" PRIu64 ": rechecking the mempool failed: %s", l->height,
		      tally_strerror((int)-dropped));
}

/* --- producing ---------------------------------------------------------------- */

static int certify(struct ledger *l, struct build *bd, struct commit_cert *cert, char *why)
{
	int rc;

	block_id(&bd->b.header, l->building_id);
	l->nqueue = 0;
	rc = cs_propose(&l->cs, l->building_id);
	if (!rc)
		rc = loop_drain(l);
	if (rc)
		return why_set(why, rc, "consensus at height %" PRIu64 ": %s",
			       bd->b.header.height, l->cs.why[0] ? l->cs.why : tally_strerror(rc));
	if (!cs_decided(&l->cs, cert))
		return why_set(why, TALLY_E_QUORUM, "no commit at height %" PRIu64 ": this node's"
			       " validator holds 2/3 of the stake or less, and votes from peers are"
			       " not wired yet", bd->b.header.height);
	return 0;
}

/* The first round this validator may still sign at for the next height. */
static uint32_t start_round(const struct ledger *l)
{
	if (l->pv.any && l->pv.height == l->height + 1)
		return l->pv.round + 1;
	return 0;
}

static int produce_txs(struct ledger *l, struct build *bd)
{
	const struct mempool_entry *e;
	char why[WHY_MAX], hex[2 * HASH_LEN + 1];
	int rc;

	for (e = mempool_first(l->mp); e && bd->b.ntx < l->block_max_txs; e = mempool_next(e)) {
		rc = build_add(bd, &e->tx, e->bytes, e->len, e->hash, why);
		if (!rc)
			continue;
		if (state_err_is_fatal(rc))
			return rc;
		hex_encode(e->hash, HASH_LEN, hex);
		logf_(l, "height %" PRIu64 ": dropping %s transaction %s: %s", bd->ac.height,
		      tx_kind_name(e->tx.kind), hex, why);
		memcpy(bd->dropped[bd->ndropped++], e->hash, HASH_LEN);
	}
	return 0;
}

static int produce_locked(struct ledger *l, uint64_t time_ns, struct ledger_block_result *res,
			  char *why)
{
	size_t cap = mempool_size(l->mp) < l->block_max_txs ? mempool_size(l->mp) :
		     l->block_max_txs;
	struct commit_cert cert;
	struct build bd;
	int rc;

	if (!l->has_pv)
		return why_set(why, TALLY_E_UNAUTHORIZED, "this node has no validator key");
	if (time_ns <= l->time_ns)
		return why_set(why, TALLY_E_INVALID, "block time %" PRIu64 " ns is not after the"
			       " previous block's %" PRIu64 " ns", time_ns, l->time_ns);
	cs_start(&l->cs, l->height + 1, start_round(l), &l->vals);
	if (!cs_is_proposer(&l->cs))
		return why_set(why, TALLY_E_UNAUTHORIZED, "this node is not the proposer at"
			       " height %" PRIu64 " round %u", l->height + 1, l->cs.round);
	rc = build_init(&bd, cap);
	if (rc)
		goto out_free;
	build_start(l, &bd, time_ns);
	memcpy(bd.b.header.proposer, cs_proposer(&l->cs), PUBKEY_LEN);
	rc = store_begin(l->st);
	if (rc) {
		why_set(why, rc, "cannot start the block's transaction: %s", store_errmsg(l->st));
		goto out_free;
	}
	rc = produce_txs(l, &bd);
	if (!rc)
		rc = build_finish(l, &bd);
	if (rc) {
		why_set(why, rc, "building block %" PRIu64 ": %s (%s)", bd.ac.height,
			tally_strerror(rc), store_errmsg(l->st));
		goto out_abort;
	}
	rc = certify(l, &bd, &cert, why);
	if (rc)
		goto out_abort;
	rc = build_commit(l, &bd, &cert);
	if (rc) {
		why_set(why, rc, "committing block %" PRIu64 ": %s (%s)", bd.ac.height,
			tally_strerror(rc), store_errmsg(l->st));
		goto out_abort;
	}
	if (res) {
		res->height = l->height;
		memcpy(res->id, l->last_id, HASH_LEN);
		res->ntx = bd.b.ntx;
		res->ndropped = bd.ndropped;
	}
	after_commit(l, &bd);
	goto out_free;
out_abort:
	build_abort(l);
out_free:
	build_free(&bd);
	return rc;
}

int ledger_produce_block(struct ledger *l, uint64_t time_ns, struct ledger_block_result *res,
			 char *why)
{
	int rc;

	why[0] = '\0';
	lock(l);
	rc = produce_locked(l, time_ns, res, why);
	unlock(l);
	return rc;
}

/* --- applying a block from elsewhere ---------------------------------------------- */

/* Which header field differs, as the chain verifier would name it. */
static int header_mismatch(const struct block_header *want, const struct block_header *got,
			   char *why)
{
	uint64_t hgt = want->height;

	if (memcmp(want->txs_root, got->txs_root, HASH_LEN))
		return why_set(why, TALLY_E_TXROOT, "block %" PRIu64 ": transactions root mismatch", hgt);
	if (want->usage_size != got->usage_size || memcmp(want->usage_root, got->usage_root, HASH_LEN))
		return why_set(why, TALLY_E_USAGEROOT, "block %" PRIu64 ": usage log mismatch", hgt);
	if (memcmp(want->state_root, got->state_root, HASH_LEN))
		return why_set(why, TALLY_E_STATEROOT, "block %" PRIu64 ": state root mismatch", hgt);
	if (memcmp(want->validators_hash, got->validators_hash, HASH_LEN) ||
	    memcmp(want->next_validators_hash, got->next_validators_hash, HASH_LEN))
		return why_set(why, TALLY_E_VALSET, "block %" PRIu64 ": validator set mismatch", hgt);
	if (memcmp(want->last_commit_hash, got->last_commit_hash, HASH_LEN))
		return why_set(why, TALLY_E_CERT, "block %" PRIu64 ": last commit hash mismatch", hgt);
	return why_set(why, TALLY_E_INVALID, "block %" PRIu64 ": header differs", hgt);
}

static int apply_precheck(struct ledger *l, const struct block *in, const struct commit_cert *cert,
			  char *why)
{
	const struct block_header *h = &in->header;
	uint8_t id[HASH_LEN];
	int rc;

	if (strcmp(h->chain_id, l->chain_id))
		return why_set(why, TALLY_E_CHAIN_ID, "block is for chain '%s'", h->chain_id);
	if (h->height != l->height + 1)
		return why_set(why, TALLY_E_HEIGHT, "block height %" PRIu64 " is not the next (%"
			       PRIu64 ")", h->height, l->height + 1);
	if (memcmp(h->prev_block_id, l->last_id, HASH_LEN))
		return why_set(why, TALLY_E_LINK, "block %" PRIu64 " does not link to the tip",
			       h->height);
	if (h->time_ns <= l->time_ns)
		return why_set(why, TALLY_E_INVALID, "block %" PRIu64 " time is not after the tip's",
			       h->height);
	if (!valset_find(&l->vals, h->proposer))
		return why_set(why, TALLY_E_UNAUTHORIZED, "block %" PRIu64 " proposer is not a"
			       " validator", h->height);
	if (in->ntx > BLOCK_MAX_TXS)
		return why_set(why, TALLY_E_TOOLONG, "block %" PRIu64 " has too many transactions",
			       h->height);
	block_id(h, id);
	if (cert->height != h->height || memcmp(cert->block_id, id, HASH_LEN))
		return why_set(why, TALLY_E_CERT, "the certificate is for another block");
	rc = cert_verify(cert, &l->vals, l->chain_id);
	if (rc)
		return why_set(why, rc, "block %" PRIu64 " certificate: %s", h->height,
			       tally_strerror(rc));
	return 0;
}

static int apply_txs(struct ledger *l, struct build *bd, const struct block *in, char *why)
{
	struct tx *t = malloc(sizeof(*t));
	char sub[WHY_MAX];
	int rc = t ? 0 : TALLY_E_NOMEM;

	for (size_t i = 0; i < in->ntx && !rc; i++) {
		const uint8_t *p = in->txs[i].bytes;
		size_t n = in->txs[i].len;
		uint8_t hash[HASH_LEN];
		const struct mempool_entry *e;

		tx_hash(p, n, hash);
		e = mempool_find(l->mp, hash);
		if (e) {
			*t = e->tx;   /* verified when it was submitted */
		} else {
			rc = tx_check(t, p, n, l->chain_id, in->header.time_ns / 1000000000ull, sub);
			if (rc) {
				why_set(why, rc, "block %" PRIu64 " transaction %zu: %s",
					in->header.height, i, sub);
				break;
			}
		}
		rc = build_add(bd, t, p, n, hash, sub);
		if (rc)
			why_set(why, rc, "block %" PRIu64 " transaction %zu does not apply: %s",
				in->header.height, i, sub[0] ? sub : tally_strerror(rc));
	}
	free(t);
	return rc;
}

static int apply_locked(struct ledger *l, const struct block *in, const struct commit_cert *cert,
			char *why)
{
	struct build bd;
	struct enc a, b;
	int rc = apply_precheck(l, in, cert, why);

	if (rc)
		return rc;
	rc = build_init(&bd, in->ntx);
	if (rc)
		goto out_free;
	build_start(l, &bd, in->header.time_ns);
	memcpy(bd.b.header.proposer, in->header.proposer, PUBKEY_LEN);
	rc = store_begin(l->st);
	if (rc) {
		why_set(why, rc, "cannot start the block's transaction: %s", store_errmsg(l->st));
		goto out_free;
	}
	rc = apply_txs(l, &bd, in, why);
	if (!rc) {
		rc = build_finish(l, &bd);
		if (rc)
			why_set(why, rc, "applying block %" PRIu64 ": %s", in->header.height,
				tally_strerror(rc));
	}
	if (rc)
		goto out_abort;
	enc_init(&a);
	enc_init(&b);
	header_encode(&a, &bd.b.header);
	header_encode(&b, &in->header);
	rc = enc_error(&a) || enc_error(&b) ? TALLY_E_NOMEM :
	     (a.len != b.len || memcmp(a.buf, b.buf, a.len)) ?
	     header_mismatch(&bd.b.header, &in->header, why) : 0;
	enc_free(&a);
	enc_free(&b);
	if (rc)
		goto out_abort;
	rc = build_commit(l, &bd, cert);
	if (rc) {
		why_set(why, rc, "committing block %" PRIu64 ": %s", in->header.height,
			tally_strerror(rc));
		goto out_abort;
	}
	after_commit(l, &bd);
	goto out_free;
out_abort:
	build_abort(l);
out_free:
	build_free(&bd);
	return rc;
}

int ledger_apply_block(struct ledger *l, const uint8_t *block, size_t block_len,
		       const uint8_t *cert, size_t cert_len, char *why)
{
	struct commit_cert c;
	struct block b;
	int rc;

	why[0] = '\0';
	memset(&b, 0, sizeof(b));
	rc = block_decode(&b, block, block_len);
	if (rc)
		return why_set(why, rc, "the block does not decode: %s", tally_strerror(rc));
	rc = cert_decode(&c, cert, cert_len);
	if (rc) {
		block_free(&b);
		return why_set(why, rc, "the certificate does not decode: %s", tally_strerror(rc));
	}
	lock(l);
	rc = apply_locked(l, &b, &c, why);
	unlock(l);
	block_free(&b);
	return rc;
}

/* --- reads -------------------------------------------------------------------- */

int ledger_status(struct ledger *l, struct ledger_status *st)
{
	int rc;

	memset(st, 0, sizeof(*st));
	lock(l);
	snprintf(st->chain_id, sizeof(st->chain_id), "%s", l->chain_id);
	memcpy(st->genesis_hash, l->genesis_hash, HASH_LEN);
	st->height = l->height;
	memcpy(st->last_block_id, l->last_id, HASH_LEN);
	st->time_ns = l->time_ns;
	state_tree_root(&l->tree, st->state_root);
	st->usage_size = l->usage_size;
	rc = merkle_root(store_merkle(l->st), l->usage_size, st->usage_root);
	st->mempool_size = mempool_size(l->mp);
	unlock(l);
	return rc;
}

int ledger_account(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct account *a)
{
	int rc;

	lock(l);
	rc = store_account_get(l->st, pub, a);
	unlock(l);
	return rc;
}

int ledger_next_nonce(struct ledger *l, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce)
{
	struct account a;
	int rc = 0;

	lock(l);
	if (!mempool_next_nonce(l->mp, pub, nonce)) {
		rc = store_account_get(l->st, pub, &a);
		if (rc == TALLY_E_NOTFOUND)
			rc = 0;
		*nonce = a.nonce;
	}
	unlock(l);
	return rc;
}

int ledger_validator(struct ledger *l, const uint8_t pub[PUBKEY_LEN], struct validator_entry *v)
{
	int rc;

	lock(l);
	rc = store_validator_get(l->st, pub, v);
	unlock(l);
	return rc;
}

int ledger_lease(struct ledger *l, const uint8_t id[LEASE_ID_LEN], struct lease *out)
{
	int rc;

	lock(l);
	rc = store_lease_get(l->st, id, out);
	unlock(l);
	return rc;
}

struct lease_list {
	struct lease *v;
	size_t n, cap;
};

static int lease_list_add(void *ctx, const struct lease *le)
{
	struct lease_list *ll = ctx;

	if (ll->n == ll->cap) {
		size_t cap = ll->cap ? ll->cap * 2 : 16;
		struct lease *v = realloc(ll->v, cap * sizeof(*v));

		if (!v)
			return TALLY_E_NOMEM;
		ll->v = v;
		ll->cap = cap;
	}
	ll->v[ll->n++] = *le;
	return 0;
}

int ledger_leases(struct ledger *l, const struct lease_filter *f, struct lease **out, size_t *n)
{
	struct lease_list ll = { 0 };
	int rc;

	lock(l);
	rc = store_lease_each(l->st, f, lease_list_add, &ll);
	unlock(l);
	if (rc) {
		free(ll.v);
		ll.v = NULL;
		ll.n = 0;
	}
	*out = ll.v;
	*n = ll.n;
	return rc;
}

struct usage_list {
	struct ledger *l;
	struct ledger_usage *v;
	size_t n, cap;
};

static int usage_list_add(void *ctx, uint64_t index, uint64_t seq, const uint8_t tx_hash[HASH_LEN])
{
	struct usage_list *ul = ctx;
	struct ledger_usage *u;

	if (ul->n == ul->cap) {
		size_t cap = ul->cap ? ul->cap * 2 : 16;
		struct ledger_usage *v = realloc(ul->v, cap * sizeof(*v));

		if (!v)
			return TALLY_E_NOMEM;
		ul->v = v;
		ul->cap = cap;
	}
	u = &ul->v[ul->n];
	memset(u, 0, sizeof(*u));
	u->index = index;
	u->seq = seq;
	memcpy(u->tx_hash, tx_hash, HASH_LEN);
	ul->n++;
	return 0;
}

void ledger_usage_free(struct ledger_usage *u, size_t n)
{
	for (size_t i = 0; u && i < n; i++)
		free(u[i].tx);
	free(u);
}

int ledger_lease_usage(struct ledger *l, const uint8_t id[LEASE_ID_LEN],
		       struct ledger_usage **out, size_t *n)
{
	struct usage_list ul = { .l = l };
	int rc;

	lock(l);
	rc = store_usage_each(l->st, id, usage_list_add, &ul);
	/* Fetch the bytes after the iteration: one statement at a time. */
	for (size_t i = 0; i < ul.n && !rc; i++)
		rc = store_tx_get(l->st, ul.v[i].tx_hash, &ul.v[i].tx, &ul.v[i].tx_len,
				  &ul.v[i].height, NULL);
	unlock(l);
	if (rc) {
		ledger_usage_free(ul.v, ul.n);
		ul.v = NULL;
		ul.n = 0;
	}
	*out = ul.v;
	*n = ul.n;
	return rc;
}

int ledger_block_raw(struct ledger *l, uint64_t height, struct stored_block *out)
{
	int rc;

	lock(l);
	rc = store_block_get(l->st, height, out);
	unlock(l);
	return rc;
}

/* The stored parts of a block that ledger_block, ledger_header and
 * ledger_cert decode. */
enum block_part { PART_BODY, PART_HEADER, PART_CERT };

/* Reads the block at height and decodes one part of it into out (a struct
 * block, block_header or commit_cert, by part); a part that does not decode
 * is TALLY_E_STORE. */
static int decode_block_part(struct ledger *l, uint64_t height, enum block_part part, void *out)
{
	struct stored_block sb;
	int rc = ledger_block_raw(l, height, &sb);

	if (rc)
		return rc;
	switch (part) {
	case PART_BODY:
		rc = block_decode(out, sb.body, sb.body_len);
		break;
	case PART_HEADER:
		rc = header_decode(out, sb.header, sb.header_len);
		break;
	case PART_CERT:
		rc = cert_decode(out, sb.cert, sb.cert_len);
		break;
	}
	stored_block_free(&sb);
	return rc ? TALLY_E_STORE : 0;
}

int ledger_block(struct ledger *l, uint64_t height, struct block *out)
{
	memset(out, 0, sizeof(*out));
	return decode_block_part(l, height, PART_BODY, out);
}

int ledger_header(struct ledger *l, uint64_t height, struct block_header *out)
{
	return decode_block_part(l, height, PART_HEADER, out);
}

int ledger_cert(struct ledger *l, uint64_t height, struct commit_cert *out)
{
	return decode_block_part(l, height, PART_CERT, out);
}

static int valset_at(struct store *st, const struct validator_set *genesis_set, uint64_t height,
		     struct validator_set *out)
{
	/* The newest next_vals at or below height - 1 names the set of `height`. */
	*out = *genesis_set;
	for (uint64_t h = 1; h < height; h++) {
		struct stored_block sb;
		struct dec d;
		int rc = store_block_get(st, h, &sb);

		if (rc)
			return rc;
		if (sb.next_vals) {
			dec_init(&d, sb.next_vals, sb.next_vals_len);
			rc = chainfile_valset_decode(&d, out);
			if (!rc)
				rc = dec_finish(&d);
		}
		stored_block_free(&sb);
		if (rc)
			return TALLY_E_STORE;
	}
	return 0;
}

int ledger_valset(struct ledger *l, uint64_t height, struct validator_set *out)
{
	struct validator_set g;
	uint8_t *pr = NULL;
	size_t prl;
	int rc;

	if (height == 0)
		return TALLY_E_INVALID;
	lock(l);
	if (height > l->height + 1) {
		rc = TALLY_E_NOTFOUND;
	} else if (height == l->height + 1) {
		*out = l->vals;
		rc = 0;
	} else {
		/* From the genesis set, following each block's next_vals. */
		rc = store_meta_get(l->st, "genesis_set", &pr, &prl);
		if (!rc)
			rc = priorities_decode(&g, pr, prl);
		if (!rc)
			rc = valset_at(l->st, &g, height, out);
	}
	unlock(l);
	free(pr);
	for (size_t i = 0; !rc && i < out->n; i++)
		out->v[i].priority = 0;
	return rc;
}

int ledger_usage_root(struct ledger *l, uint64_t size, uint8_t root[HASH_LEN])
{
	int rc;

	lock(l);
	rc = size > l->usage_size ? TALLY_E_PROOF_RANGE :
	     merkle_root(store_merkle(l->st), size, root);
	unlock(l);
	return rc;
}

int ledger_usage_inclusion(struct ledger *l, uint64_t index, uint64_t size,
			   uint8_t leaf_hash[HASH_LEN], uint8_t proof[][HASH_LEN], size_t *n)
{
	uint8_t txh[HASH_LEN], lease_id[LEASE_ID_LEN];
	uint8_t *bytes = NULL;
	size_t len;
	int rc;

	lock(l);
	if (size > l->usage_size) {
		rc = TALLY_E_PROOF_RANGE;
		goto out;
	}
	if (index >= size) {
		rc = TALLY_E_PROOF_INDEX;
		goto out;
	}
	rc = store_usage_at(l->st, index, txh, lease_id, NULL);
	if (!rc)
		rc = store_tx_get(l->st, txh, &bytes, &len, NULL, NULL);
	if (!rc) {
		merkle_leaf_hash(bytes, len, leaf_hash);
		rc = merkle_inclusion_proof(store_merkle(l->st), index, size, proof, n);
	}
out:
	unlock(l);
	free(bytes);
	return rc;
}

int ledger_usage_consistency(struct ledger *l, uint64_t old_size, uint64_t new_size,
			     uint8_t proof[][HASH_LEN], size_t *n)
{
	int rc;

	lock(l);
	rc = new_size > l->usage_size ? TALLY_E_PROOF_RANGE :
	     merkle_consistency_proof(store_merkle(l->st), old_size, new_size, proof, n);
	unlock(l);
	return rc;
}

int ledger_tx(struct ledger *l, const uint8_t hash[HASH_LEN], uint8_t **bytes, size_t *len,
	      uint64_t *height, uint32_t *index)
{
	int rc;

	lock(l);
	rc = store_tx_get(l->st, hash, bytes, len, height, index);
	unlock(l);
	return rc;
}

int ledger_state_roots(struct ledger *l, uint8_t incremental[HASH_LEN],
		       uint8_t from_scratch[HASH_LEN])
{
	int rc;

	lock(l);
	state_tree_root(&l->tree, incremental);
	rc = state_root_recompute(l->st, from_scratch);
	unlock(l);
	return rc;
}

/* --- verifying a stored chain ---------------------------------------------------- */

static int verify_one(struct store *st, struct chain_verifier *v, uint64_t h, char *why)
{
	struct validator_set next, *nextp = NULL;
	struct stored_block sb;
	struct block_header hdr;
	struct commit_cert cert;
	struct block b;
	struct enc e;
	int rc = store_block_get(st, h, &sb);

	memset(&b, 0, sizeof(b));
	if (rc)
		return why_set(why, rc, "block %" PRIu64 " cannot be read", h);
	rc = header_decode(&hdr, sb.header, sb.header_len);
	if (rc) {
		why_set(why, rc, "block %" PRIu64 ": stored header does not decode", h);
		goto out;
	}
	rc = block_decode(&b, sb.body, sb.body_len);
	if (rc) {
		why_set(why, rc, "block %" PRIu64 ": stored body does not decode", h);
		goto out;
	}
	enc_init(&e);
	header_encode(&e, &b.header);
	if (e.len != sb.header_len || memcmp(e.buf, sb.header, e.len))
		rc = why_set(why, TALLY_E_LINK, "block %" PRIu64 ": stored header differs from the"
			     " header in the stored body", h);
	enc_free(&e);
	if (rc)
		goto out;
	rc = cert_decode(&cert, sb.cert, sb.cert_len);
	if (rc) {
		why_set(why, rc, "block %" PRIu64 ": stored certificate does not decode", h);
		goto out;
	}
	if (sb.next_vals) {
		struct dec d;

		dec_init(&d, sb.next_vals, sb.next_vals_len);
		rc = chainfile_valset_decode(&d, &next);
		if (!rc)
			rc = dec_finish(&d);
		if (rc) {
			why_set(why, rc, "block %" PRIu64 ": stored next validator set does not"
				" decode", h);
			goto out;
		}
		nextp = &next;
	}
	rc = chain_verify_block(v, &b, &cert, nextp, why);
out:
	block_free(&b);
	stored_block_free(&sb);
	return rc;
}

int ledger_verify_store(const char *data_dir, const struct genesis *g, uint64_t *height,
			char *why)
{
	struct chain_verifier v;
	struct store *st = NULL;
	char path[4096];
	uint8_t *gh = NULL, want[HASH_LEN];
	size_t ghl;
	uint64_t tip;
	int rc;

	why[0] = '\0';
	*height = 0;
	snprintf(path, sizeof(path), "%s/%s", data_dir, LEDGER_DB);
	rc = store_open(&st, path, why);
	if (rc)
		return rc;
	genesis_hash(g, want);
	rc = store_meta_get(st, "genesis_hash", &gh, &ghl);
	if (!rc && (ghl != HASH_LEN || memcmp(gh, want, HASH_LEN)))
		rc = why_set(why, TALLY_E_INVALID, "the store was made from another genesis");
	if (!rc)
		rc = chain_verifier_from_genesis(&v, g);
	if (!rc)
		rc = store_tip_height(st, &tip);
	for (uint64_t h = 1; !rc && h <= tip; h++) {
		rc = verify_one(st, &v, h, why);
		if (!rc)
			*height = h;
	}
	if (rc && !why[0])
		why_set(why, rc, "%s", tally_strerror(rc));
	free(gh);
	store_close(st);
	return rc;
}
