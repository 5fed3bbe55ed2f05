/* The ledger engine: opening a data directory, admitting transactions and
 * the chain's status (see ledger.h). Blocks are in execute.c, the API's
 * reads in reads.c, verifying a stored chain in verify_store.c. */
#include "daemon/ledger/ledger_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/clock.h"
#include "daemon/consensus/proposer.h"
#include "lib/chain/evidence.h"
#include "lib/dirlock.h"
#include "lib/errors.h"

void ledger_logf(struct ledger *l, const char *fmt, ...)
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

void ledger_note_dropped(struct ledger *l, const uint8_t hash[HASH_LEN], uint64_t height,
			 const char *why)
{
	struct dropped_tx *d;

	if (!l->dropped)
		return;
	d = &l->dropped[l->dropped_next++ % LEDGER_DROPPED_MAX];
	memcpy(d->hash, hash, HASH_LEN);
	d->height = height;
	snprintf(d->why, sizeof(d->why), "%s", why);
}

int ledger_tx_status(struct ledger *l, const uint8_t hash[HASH_LEN],
		     struct ledger_tx_status *st)
{
	uint32_t index;
	int rc;

	memset(st, 0, sizeof(*st));
	ledger_lock(l);
	rc = store_tx_get(l->st, hash, NULL, NULL, &st->height, &index);
	if (rc == 0) {
		st->status = LEDGER_TX_COMMITTED;
	} else if (rc == TALLY_E_NOTFOUND) {
		rc = 0;
		ledger_mp_lock(l);
		if (mempool_find(l->mp, hash)) {
			st->status = LEDGER_TX_PENDING;
		} else if (mempool_is_held(l->mp, hash)) {
			st->status = LEDGER_TX_HELD;
		} else {
			st->status = LEDGER_TX_UNKNOWN;
			/* The newest drop of this hash wins; slots not written yet
			 * (fewer drops than the ring holds) are no drops. */
			size_t used = l->dropped_next < LEDGER_DROPPED_MAX ? l->dropped_next :
				      LEDGER_DROPPED_MAX;

			for (size_t i = 0; l->dropped && i < used; i++) {
				size_t k = (l->dropped_next + LEDGER_DROPPED_MAX - 1 - i) %
					   LEDGER_DROPPED_MAX;
				if (memcmp(l->dropped[k].hash, hash, HASH_LEN))
					continue;
				st->status = LEDGER_TX_DROPPED;
				st->height = l->dropped[k].height;
				snprintf(st->why, sizeof(st->why), "%s", l->dropped[k].why);
				break;
			}
		}
		ledger_mp_unlock(l);
	}
	ledger_unlock(l);
	return rc;
}

void ledger_lock(struct ledger *l)
{
	pthread_mutex_lock(&l->mu);
}

void ledger_unlock(struct ledger *l)
{
	pthread_mutex_unlock(&l->mu);
}

void ledger_mp_lock(struct ledger *l)
{
	pthread_mutex_lock(&l->mp_mu);
}

void ledger_mp_unlock(struct ledger *l)
{
	pthread_mutex_unlock(&l->mp_mu);
}

int ledger_mp_rebase(struct ledger *l)
{
	/* No snapshot until ledger_mp_settle: the mempool reads the committed
	 * state as it is, which nothing writes before then. */
	int rc = store_snapshot_release(l->mp_reader);

	l->mp_base.usage_size = l->state.usage_size;
	l->mp_tip_height = l->tip.height;
	l->mp_tip_time_ns = l->tip.time_ns;
	return rc;
}

void ledger_mp_settle(struct ledger *l)
{
	/* With no snapshot held the checkpoint can take the whole WAL, and the
	 * WAL start over at the next write; admission goes on meanwhile. */
	int rc = store_checkpoint(l->st);

	/* The writer's message, read by the thread that owns the writer. */
	if (rc)
		ledger_logf(l, "height %" PRIu64 ": checkpointing the WAL failed: %s (%s)",
			    l->tip.height, tally_strerror(rc), store_errmsg(l->st));
	ledger_mp_lock(l);
	rc = store_snapshot_renew(l->mp_reader);
	/* The reader's, under the lock admission uses it under. */
	if (rc)
		ledger_logf(l, "height %" PRIu64 ": the mempool's view of the state did not move"
			    " on: %s (%s)", l->tip.height, tally_strerror(rc),
			    store_errmsg(l->mp_reader));
	ledger_mp_unlock(l);
}

/* --- open ------------------------------------------------------------------- */

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

int ledger_put_priorities(struct ledger *l, const struct validator_set *s)
{
	return put_set(l, "priorities", s);
}

int ledger_put_last_set(struct ledger *l, const struct validator_set *s)
{
	return put_set(l, "last_set", s);
}

/* The set that signed the tip block: kept since consensus adopts
 * certificates (chain_adopt_last_cert); recomputed for older stores. */
static int load_last_set(struct ledger *l, struct validator_set *out)
{
	uint8_t *p = NULL;
	size_t n;
	int rc = store_meta_get(l->st, "last_set", &p, &n);

	if (!rc)
		rc = priorities_decode(out, p, n);
	free(p);
	if (rc == TALLY_E_NOTFOUND)
		rc = ledger_valset(l, l->tip.height, out);
	for (size_t i = 0; !rc && i < out->n; i++)
		out->v[i].priority = 0;
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
		rc = state_load_genesis(&l->state, g);
	if (!rc)
		rc = state_root_update(&l->state);
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
			rc = why_set(why, TALLY_E_VERSION, "the store's schema version %u is not this"
				     " tallyd's (%u): it was made by another version; start from an"
				     " empty data directory", verl == 4 ? ver[0] : 0,
				     STORE_SCHEMA_VERSION);
		else if (rc)
			why_set(why, rc, "the store has no schema version");
	}
	free(gh);
	free(ver);
	return rc;
}

int ledger_load_tip(struct ledger *l, char *why)
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
	if (height) {
		rc = store_block_get(l->st, height, &sb);
		if (rc)
			return why_set(why, rc, "cannot read block %" PRIu64, height);
		rc = header_decode(&h, sb.header, sb.header_len);
		if (!rc)
			rc = cert_decode(&c, sb.cert, sb.cert_len);
		if (!rc) {
			l->tip.height = height;
			l->tip.time_ns = h.time_ns;
			block_id(&h, l->tip.last_block_id);
			cert_hash(&c, l->tip.last_cert_hash);
			l->tip.last_cert = c;
			l->tip_cert = c;
			rc = merkle_frontier_load(store_merkle(l->st), h.usage_size, &l->tip.usage);
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
	l->tip.vals = l->vals;
	for (size_t i = 0; i < l->tip.vals.n; i++)
		l->tip.vals.v[i].priority = 0;
	if (height && load_last_set(l, &l->tip.last_vals))
		return why_set(why, TALLY_E_STORE, "the validator set of block %" PRIu64
			       " is unreadable", height);
	rc = state_reload(&l->state, l->tip.usage.size);
	if (rc)
		return why_set(why, rc, "cannot load the state-root buckets");
	return 0;
}

/* The first entry of one kind in the state, decoded with this tallyd's
 * rules (first_entry_check). */
struct first_entry {
	uint8_t type;                /* STATE_KEY_LEASE or STATE_KEY_PROVIDER */
	bool found;
	int rc;
	uint8_t version;             /* the value's first byte */
	char id[17];                 /* the key's id, short */
};

static int first_entry_cb(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			  size_t vlen)
{
	struct first_entry *f = ctx;
	struct provider_entry p;
	struct lease l;

	f->found = true;
	f->version = vlen ? val[0] : 0;
	if (klen == STATE_KEY_LEN)
		hex_encode(key + 1, 8, f->id);
	f->rc = f->type == STATE_KEY_LEASE ? lease_decode(&l, val, vlen)
					   : provider_value_decode(&p, val, vlen);
	/* One is enough (every entry of a kind is of one format): stop the
	 * scan with a code the caller tells from a failure by f->found. */
	return TALLY_E_EXISTS;
}

/* A store an earlier tallyd wrote may hold state entries of a format this
 * one does not read (docs/FORMATS.md section 9: a lease state of version
 * 2, a provider entry of version 1). Such a chain cannot go on under this
 * tallyd's rules, and a node running on it would fail each read of them
 * (its leases and registry answered with 500s, its announcement never
 * sent): refused at open, naming what was found. */
static int check_state_format(struct ledger *l, const char *path, char *why)
{
	static const struct { uint8_t type; const char *what; } kinds[] = {
		{ STATE_KEY_LEASE, "lease %s is a lease state of version %u" },
		{ STATE_KEY_PROVIDER, "provider %s's registry entry is of version %u" },
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		struct first_entry f = { .type = kinds[i].type };
		char found[96];
		int rc = l->state.be.scan_type(l->state.be.ctx, kinds[i].type, first_entry_cb, &f);

		if (rc && !(f.found && rc == TALLY_E_EXISTS))
			return why_set(why, rc, "cannot read the state in %s: %s", path,
				       tally_strerror(rc));
		if (!f.found || !f.rc)
			continue;
		snprintf(found, sizeof(found), kinds[i].what, f.id, f.version);
		if (f.rc == TALLY_E_VERSION)
			return why_set(why, f.rc, "%s: %s, which this tallyd does not read"
				       " (docs/FORMATS.md section 9): an earlier tallyd began this"
				       " chain; run that one, or begin a new chain", path, found);
		return why_set(why, TALLY_E_STORE, "%s is damaged: %s, and does not decode (%s)"
			       STORE_WHAT_TO_DO, path, found, tally_strerror(f.rc));
	}
	return 0;
}

static int open_store(struct ledger *l, const struct ledger_config *cfg, char *why)
{
	struct state_backend be;
	char path[4096];
	uint8_t *cid = NULL;
	size_t cid_len;
	int rc;

	if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST)
		return why_set(why, TALLY_E_IO, "cannot create %s: %s", cfg->data_dir,
			       strerror(errno));
	/* One node per data directory: a second one on the same store, WAL and
	 * signing guard would sign with the same key twice. */
	{
		char comm[16];
		pid_t pid;

		rc = dir_lock(cfg->data_dir, &l->dir_fd, &pid, comm, why);
		if (rc == TALLY_E_STATE)
			return why_set(why, rc, "the data directory %s is in use by %s (pid %d):"
				       " one node runs on a data directory at a time", cfg->data_dir,
				       comm[0] ? comm : "another process", (int)pid);
		if (rc)
			return rc;
	}
	if (snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, LEDGER_DB) >= (int)sizeof(path))
		return why_set(why, TALLY_E_INVALID, "data directory path too long");
	rc = store_open(&l->st, path, true, why);
	if (rc)
		return rc;
	if (store_upgraded_from(l->st))
		ledger_logf(l, "upgraded %s from schema version %u to %u (docs/OPERATING.md,"
			    " \"Upgrades\")", path, store_upgraded_from(l->st), STORE_SCHEMA_VERSION);
	be = store_state_backend(l->st);
	rc = state_open(&l->state, &be, 0);
	if (rc)
		return why_set(why, rc, "cannot load the state: %s", tally_strerror(rc));
	rc = store_meta_get(l->st, "chain_id", &cid, &cid_len);
	if (rc == TALLY_E_NOTFOUND)
		rc = create_store(l, cfg->genesis, why);
	else if (!rc)
		rc = check_store_genesis(l, cfg->genesis, cid, cid_len, why);
	else
		why_set(why, rc, "cannot read %s: %s", path, store_errmsg(l->st));
	free(cid);
	if (!rc)
		rc = check_state_format(l, path, why);
	if (!rc)
		rc = ledger_load_tip(l, why);
	if (rc && store_corrupt(l->st))
		why_set(why, rc, "%s is damaged (%s)" STORE_WHAT_TO_DO, path, store_errmsg(l->st));
	if (rc)
		return rc;
	/* The mempool's view of the committed state (ledger_impl.h). */
	rc = store_open_reader(&l->mp_reader, path, why);
	if (rc)
		return rc;
	l->mp_base.be = store_state_backend(l->mp_reader);
	l->mp_base.usage_size = l->state.usage_size;
	l->mp_tip_height = l->tip.height;
	l->mp_tip_time_ns = l->tip.time_ns;
	return 0;
}

/* A transaction joined the mempool's queue (submitted, or held until its
 * gap filled): peers hear of it. */
static void entered_mempool(void *ctx, const struct mempool_entry *e)
{
	struct ledger *l = ctx;

	if (l->admit)
		l->admit(l->admit_ctx, e->bytes, e->len, e->hash, l->admit_origin);
	/* An engine waits between heights only with an empty mempool: the
	 * first one in is the one that can find it idle. */
	if (l->txs_waiting && mempool_size(l->mp) == 1)
		l->txs_waiting(l->txs_waiting_ctx);
}

static void held_dropped(void *ctx, const uint8_t hash[HASH_LEN], const char *why)
{
	struct ledger *l = ctx;
	char hex[2 * HASH_LEN + 1];

	hex_encode(hash, HASH_LEN, hex);
	ledger_logf(l, "held transaction %s dropped: %s", hex, why);
	ledger_note_dropped(l, hash, l->mp_tip_height, why);
}

/* The mempool says it verified a transaction's signature at admission. */
/* The verified set alone: no mempool lock, which a block's commit holds
 * for a while (submissions check signatures without it). */
bool ledger_verified_lately(struct ledger *l, const uint8_t hash[HASH_LEN])
{
	bool found;

	if (!l->verified)
		return false;
	pthread_mutex_lock(&l->verified_mu);
	found = seen_has(l->verified, hash);
	pthread_mutex_unlock(&l->verified_mu);
	return found;
}

bool ledger_tx_verified(struct ledger *l, const uint8_t hash[HASH_LEN])
{
	bool found;

	if (ledger_verified_lately(l, hash))
		return true;
	ledger_mp_lock(l);
	found = mempool_find(l->mp, hash) || mempool_is_held(l->mp, hash);
	ledger_mp_unlock(l);
	return found;
}

void ledger_note_verified(struct ledger *l, const uint8_t hash[HASH_LEN])
{
	if (!l->verified)
		return;
	pthread_mutex_lock(&l->verified_mu);
	seen_add(l->verified, hash);
	pthread_mutex_unlock(&l->verified_mu);
}

static bool verified_at_admission(void *ctx, const uint8_t hash[HASH_LEN])
{
	return ledger_tx_verified(ctx, hash);
}

/* A missing signer state is a new validator's, unless the store shows this
 * key signed: its precommit is in the certificate of the ledger's last
 * block (the file was deleted, or lost while the store was kept). Such a
 * validator does not know what it signed at the next height, and could
 * sign twice: as a damaged file, it is refused until restored or repaired.
 * TALLY_E_ENCODING with why then, else 0 (a certificate that cannot be
 * read leaves the checks of the store to its own readers). */
static int signer_state_lost(struct ledger *l, const char *path, char *why)
{
	struct stored_block sb;
	struct commit_cert *c;
	int rc = 0;

	if (l->pv.any || !l->tip.height || store_block_get(l->st, l->tip.height, &sb))
		return 0;
	c = malloc(sizeof(*c));
	if (c && !cert_decode(c, sb.cert, sb.cert_len))
		for (size_t i = 0; i < c->n && !rc; i++)
			if (!memcmp(c->sigs[i].validator, l->key->pub, PUBKEY_LEN))
				rc = why_set(why, TALLY_E_ENCODING, "%s is missing, but this"
					     " validator signed block %" PRIu64 " (its precommit"
					     " is in the block's certificate): refusing to sign;"
					     " restore it or run tallyd --repair-signer-state"
					     " (docs/OPERATING.md)", path, l->tip.height);
	free(c);
	stored_block_free(&sb);
	return rc;
}

/* The signing guard, checked against the store: it cannot have signed
 * above the tip + 1 unless the store lost committed blocks, and a damaged
 * or lost file is repaired only when the operator asks. */
static int open_signer_state(struct ledger *l, const struct ledger_config *cfg,
			     const char *path, char *why)
{
	int rc = privval_open(&l->pv, path, l->key, why);

	if (!rc && (rc = signer_state_lost(l, path, why)))
		privval_close(&l->pv);
	if (rc == TALLY_E_ENCODING && cfg->repair_signer_state) {
		/* The fault without its advice, which was to do just this. */
		char *advice = strstr(why, ": refusing to sign");
		bool had = access(path, F_OK) == 0;

		if (advice)
			*advice = '\0';
		ledger_logf(l, "%s; repairing it (--repair-signer-state)", why);
		rc = privval_repair(path, l->tip.height + 1, why);
		if (!rc)
			rc = privval_open(&l->pv, path, l->key, why);
		if (!rc)
			ledger_logf(l, "signer_state repaired: signing resumes at height %" PRIu64
				    " round %u%s%s%s", l->tip.height + 1, PRIVVAL_REPAIR_ROUND + 1,
				    had ? " (the damaged file is " : "", had ? path : "",
				    had ? ".damaged)" : "");
	}
	if (rc)
		return rc;
	if (l->pv.any && l->pv.height > l->tip.height + 1) {
		rc = why_set(why, TALLY_E_STORE, "%s says this validator signed at height %" PRIu64
			     " but the ledger in %s ends at %" PRIu64 ": the store lost committed"
			     " blocks; restore the data directory", path, l->pv.height,
			     cfg->data_dir, l->tip.height);
		privval_close(&l->pv);
	}
	return rc;
}

/* --- the mempool's log (pending.h) ---------------------------------------------- */

/* With mp_mu held: records the pool just took go to the log. A failure is
 * logged once, not per transaction, and refuses no one: the node goes on
 * as it would without the log, and the next commit rewrites it. */
static void pending_write(struct ledger *l, const uint8_t *recs, size_t n)
{
	char why[WHY_MAX];

	if (!l->pending || pending_append(l->pending, recs, n, why) == 0)
		return;
	if (!l->pending_failed)
		ledger_logf(l, "mempool: %s: transactions accepted now are lost if the node is"
			    " killed before they commit, until the log is rewritten after the next"
			    " block", why);
	l->pending_failed = true;
}

/* hash: the transaction's tx_hash, which the record's check is made of. */
static void pending_write_one(struct ledger *l, const uint8_t *bytes, size_t len,
			      const uint8_t hash[HASH_LEN])
{
	uint8_t rec[PENDING_RECORD_MAX];

	pending_write(l, rec, pending_frame_hashed(rec, bytes, len, hash));
}

static int pool_bytes(void *ctx, const uint8_t *bytes, size_t len)
{
	(void)bytes;
	*(uint64_t *)ctx += 4 + len + PENDING_CHECK_LEN;
	return 0;
}

static int pool_rewrite_one(void *ctx, const uint8_t *bytes, size_t len)
{
	struct ledger *l = ctx;
	char why[WHY_MAX];

	return pending_rewrite_add(l->pending, bytes, len, why);
}

/* With mp_mu held: the log holds the pool again, queued transactions in
 * order, then held ones. */
static int pending_rewrite(struct ledger *l, char *why)
{
	int rc = pending_rewrite_begin(l->pending, why);

	/* A record the walk could not add marks the rewrite failed
	 * (pending_rewrite_add), so the commit below refuses it and the log
	 * never holds part of the pool. */
	if (!rc)
		(void)mempool_each(l->mp, pool_rewrite_one, l);
	if (!rc)
		rc = pending_rewrite_commit(l->pending, why);
	return rc;
}

#define PENDING_SLACK (1u << 20)          /* bytes the log may exceed the pool by */

void ledger_pending_compact(struct ledger *l)
{
	uint64_t size, pool = 0;
	char why[WHY_MAX];
	int rc;

	if (!l->pending)
		return;
	size = pending_size(l->pending);
	if (!mempool_size(l->mp) && !mempool_held(l->mp)) {
		if (size == 0 && !l->pending_failed)
			return;
		rc = pending_truncate(l->pending, why);
	} else {
		if (!l->pending_failed && size <= PENDING_SLACK)
			return;
		mempool_each(l->mp, pool_bytes, &pool);
		if (!l->pending_failed && size <= 4 * pool + PENDING_SLACK)
			return;
		rc = pending_rewrite(l, why);
	}
	if (rc) {
		if (!l->pending_failed)
			ledger_logf(l, "mempool: %s: accepted transactions may be lost if the node"
				    " is killed before they commit; tried again after the next block",
				    why[0] ? why : tally_strerror(rc));
		l->pending_failed = true;
		return;
	}
	if (l->pending_failed)
		ledger_logf(l, "mempool: %s/%s holds the pending transactions again", l->data_dir,
			    PENDING_FILE);
	l->pending_failed = false;
}

static int submit_check(struct ledger *l, const uint8_t *bytes, size_t len, uint64_t now_ns,
			const struct ledger_admission *adm, struct tx *t, bool hashed,
			uint8_t hash[HASH_LEN], char *why);
static int submit_add_locked(struct ledger *l, uint64_t now_ns, const struct tx *t,
			     const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
			     const uint8_t *origin, bool *held, char *why);

/* What the last run accepted and no block committed (DATA_DIR/mempool.log),
 * submitted again in the order it was accepted, each with every check of
 * a submission: the strict decode, the signature, the chain's rules
 * against the committed state and the transactions before it, nonce order
 * (a nonce ahead is held again). A record a block committed meanwhile, a
 * repeated one, one expired since, is refused and dropped.
 *
 * Two gates of a client's submission are not asked again. The node's own
 * admission (struct ledger_admission: the keeper's room for a LEASE_OPEN
 * addressed to this node) took the transaction once; the keeper is not
 * running yet, and it checks the room again before it makes the VM
 * (start_lease in daemon/keeper/keeper.c), closing the lease as rejected,
 * deposit returned, when it no longer fits; a LEASE_OPEN gossiped from a peer
 * enters without it too. The disk's reserve keeps room for what was
 * admitted, which these were.
 *
 * Then the log is rewritten from the pool: the refused records and a torn
 * tail go. An unreadable log refuses the open (its transactions would be
 * lost by the rewrite); a failed rewrite is logged, and the next commit
 * tries again. */
static int restore_pending(struct ledger *l, char *why)
{
	uint64_t now_ns = node_clock_ns();
	size_t n, restored = 0, refused = 0;
	struct tx *t = malloc(sizeof(*t));
	char line[WHY_MAX] = "";
	int rc;

	if (!t)
		return TALLY_E_NOMEM;
	rc = pending_open_to_restore(&l->pending, l->data_dir, PENDING_FILE, why);
	if (rc) {
		free(t);
		return rc;
	}
	n = pending_count(l->pending);
	for (size_t i = 0; i < n; i++) {
		uint8_t hash[HASH_LEN];
		size_t len;
		const uint8_t *bytes = pending_record(l->pending, i, &len);

		rc = submit_check(l, bytes, len, now_ns, NULL, t, false, hash, line);
		if (!rc) {
			ledger_mp_lock(l);
			rc = submit_add_locked(l, now_ns, t, bytes, len, hash, NULL, NULL, line);
			ledger_mp_unlock(l);
		}
		if (rc)
			refused++;
		else
			restored++;
	}
	free(t);
	if (n || pending_cut_bytes(l->pending)) {
		ledger_logf(l, "mempool: %zu pending transactions restored from %s, %zu no longer"
			    " applied", restored, PENDING_FILE, refused);
		if (pending_cut_bytes(l->pending))
			ledger_logf(l, "mempool: %s ended in %" PRIu64 " bytes that are no whole"
				    " record (a write the last run did not finish, or damage):"
				    " dropped", PENDING_FILE, pending_cut_bytes(l->pending));
	}
	pending_forget_read(l->pending);
	ledger_mp_lock(l);
	rc = mempool_size(l->mp) || mempool_held(l->mp) ? pending_rewrite(l, line) :
	     pending_truncate(l->pending, line);
	if (rc) {
		ledger_logf(l, "mempool: %s: accepted transactions may be lost if the node is"
			    " killed before they commit; tried again after the next block",
			    line[0] ? line : tally_strerror(rc));
		l->pending_failed = true;
	}
	ledger_mp_unlock(l);
	return 0;
}

int ledger_open(struct ledger **out, const struct ledger_config *cfg, char *why)
{
	pthread_mutexattr_t attr;
	struct ledger *l;
	char path[4096];
	int rc;

	*out = NULL;
	why[0] = '\0';
	l = calloc(1, sizeof(*l));
	if (!l)
		return TALLY_E_NOMEM;
	l->dir_fd = -1;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&l->mu, &attr);
	pthread_mutex_init(&l->mp_mu, &attr);
	pthread_mutexattr_destroy(&attr);
	pthread_mutex_init(&l->verified_mu, NULL);
	/* Without it (no memory) every signature is verified: slower, not wrong. */
	l->verified = seen_new(LEDGER_VERIFIED_MAX);
	snprintf(l->chain_id, sizeof(l->chain_id), "%s", cfg->genesis->chain_id);
	snprintf(l->data_dir, sizeof(l->data_dir), "%s", cfg->data_dir);
	l->min_free_bytes = cfg->min_free_bytes;
	genesis_hash(cfg->genesis, l->genesis_hash);
	l->key = cfg->validator_key;
	l->log = cfg->log;
	l->log_ctx = cfg->log_ctx;
	l->block_max_txs = cfg->block_max_txs && cfg->block_max_txs < BLOCK_MAX_TXS ?
			   cfg->block_max_txs : BLOCK_MAX_TXS;
	l->dropped = calloc(LEDGER_DROPPED_MAX, sizeof(*l->dropped));
	if (!l->dropped) {
		rc = TALLY_E_NOMEM;
		goto err;
	}
	rc = chain_verifier_from_genesis(&l->tip, cfg->genesis);
	if (rc) {
		why_set(why, rc, "the genesis does not verify: %s", tally_strerror(rc));
		goto err;
	}
	l->tip.tx_verified = verified_at_admission;
	l->tip.tx_verified_ctx = l;
	rc = open_store(l, cfg, why);
	if (rc)
		goto err;
	l->mp = mempool_new(cfg->mempool_max ? cfg->mempool_max : LEDGER_MEMPOOL_DEFAULT,
			    &l->mp_base);
	if (!l->mp) {
		rc = TALLY_E_NOMEM;
		goto err;
	}
	if (cfg->hold)
		mempool_set_hold(l->mp, cfg->hold);
	/* None started: a batch is checked on the caller's thread alone. */
	l->workers = workers_new(0);
	mempool_set_hooks(l->mp, entered_mempool, held_dropped, l);
	if (l->key) {
		snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, LEDGER_SIGNER_STATE);
		rc = open_signer_state(l, cfg, path, why);
		if (rc)
			goto err;
		l->has_pv = true;
	}
	l->evidence = cfg->evidence;
	l->max_future_ns = cfg->max_future_ns ? cfg->max_future_ns : CHAIN_MAX_FUTURE_NS;
	l->evidence_ctx = cfg->evidence_ctx;
	l->txs_waiting = cfg->txs_waiting;
	l->txs_waiting_ctx = cfg->txs_waiting_ctx;
	rc = ledger_consensus_open(l, cfg, why);
	if (rc)
		goto err;
	rc = restore_pending(l, why);
	if (rc)
		goto err;
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
	ledger_consensus_close(l);
	if (l->has_pv)
		privval_close(&l->pv);
	workers_free(l->workers);
	seen_free(l->verified);
	pending_close(l->pending);
	mempool_free(l->mp);
	free(l->dropped);
	free(l->vstats);
	trial_end(&l->kept);
	state_close(&l->state);
	store_close(l->mp_reader);
	store_close(l->st);
	if (l->dir_fd >= 0)
		close(l->dir_fd);   /* the data directory's lock goes with it */
	pthread_mutex_destroy(&l->mp_mu);
	pthread_mutex_destroy(&l->verified_mu);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

void ledger_set_commit_hook(struct ledger *l, ledger_hook_fn fn, void *ctx)
{
	ledger_lock(l);
	l->hook = fn;
	l->hook_ctx = ctx;
	ledger_unlock(l);
}

void ledger_set_admit_hook(struct ledger *l, ledger_admit_fn fn, void *ctx)
{
	ledger_lock(l);
	l->admit = fn;
	l->admit_ctx = ctx;
	ledger_unlock(l);
}

int ledger_pending_each(struct ledger *l,
			int (*fn)(void *ctx, const uint8_t *bytes, size_t len,
				  const uint8_t hash[HASH_LEN]),
			void *ctx)
{
	int rc = 0;

	ledger_mp_lock(l);
	for (const struct mempool_entry *e = mempool_first(l->mp); e && !rc; e = mempool_next(e))
		rc = fn(ctx, e->bytes, e->len, e->hash);
	ledger_mp_unlock(l);
	return rc;
}

/* --- submit ----------------------------------------------------------------- */

int ledger_submit(struct ledger *l, const uint8_t *bytes, size_t len, uint8_t hash[HASH_LEN],
		  char *why)
{
	return ledger_submit_admitted(l, bytes, len, NULL, hash, NULL, why);
}

/* New work waits while data_dir is short of its reserve: what was admitted
 * can still be committed with what is left, and reads go on. */
static int check_free_space(const struct ledger *l, char *why)
{
	struct statvfs sv;
	uint64_t free_bytes;

	if (!l->min_free_bytes || statvfs(l->data_dir, &sv) != 0)
		return 0;
	free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	if (free_bytes >= l->min_free_bytes)
		return 0;
	return why_set(why, TALLY_E_DISKFULL, "the node's disk is nearly full (%" PRIu64 " MiB"
		       " free in %s, %" PRIu64 " MiB kept in reserve): it takes no new transactions"
		       " until space is freed; reads go on", free_bytes >> 20, l->data_dir,
		       l->min_free_bytes >> 20);
}

/* What a submission needs no lock for: the strict decode, the signature
 * (tx_check), an EVIDENCE's own signatures, the hash (unless hashed: the
 * caller's) and the node's own admission. */
static int submit_check(struct ledger *l, const uint8_t *bytes, size_t len, uint64_t now_ns,
			const struct ledger_admission *adm, struct tx *t, bool hashed,
			uint8_t hash[HASH_LEN], char *why)
{
	uint64_t now_s = now_ns / 1000000000ull;
	int rc;

	/* The same bytes verified here before (in a proposed block, or
	 * submitted by another peer) carry the same signatures. */
	if (!hashed)
		tx_hash(bytes, len, hash);
	if (ledger_verified_lately(l, hash)) {
		rc = tx_check_unsigned(t, bytes, len, l->chain_id, now_s, why);
	} else {
		rc = tx_check(t, bytes, len, l->chain_id, l->genesis_hash, now_s, why);
		/* The signatures an EVIDENCE carries besides its signer's. */
		if (!rc && t->kind == TX_EVIDENCE)
			rc = evidence_verify(&t->u.evidence, l->genesis_hash, why);
		if (!rc)
			ledger_note_verified(l, hash);
	}
	if (rc)
		return rc;
	if (adm && adm->admit)
		rc = adm->admit(adm->ctx, t, hash, why);
	return rc;
}

/* With mp_mu held: into the mempool, applied as the next block would
 * apply it at the node's time (never before the tip's: the next block
 * cannot be). The tip is the one the mempool's base is at: a block being
 * committed meanwhile is not there yet for it, and its transactions are
 * still pending. */
static int submit_add_locked(struct ledger *l, uint64_t now_ns, const struct tx *t,
			     const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
			     const uint8_t *origin, bool *held, char *why)
{
	struct block_ctx bc = { l->chain_id, l->mp_tip_height + 1, now_ns };
	int rc;

	if (bc.time_ns <= l->mp_tip_time_ns)
		bc.time_ns = l->mp_tip_time_ns + 1;
	l->admit_origin = origin;
	rc = mempool_add(l->mp, &bc, t, bytes, len, hash, held, why);
	l->admit_origin = NULL;
	return rc;
}

int ledger_submit_admitted(struct ledger *l, const uint8_t *bytes, size_t len,
			   const struct ledger_admission *adm, uint8_t hash[HASH_LEN], bool *held,
			   char *why)
{
	uint64_t now_ns = node_clock_ns();
	struct tx t;
	int rc;

	why[0] = '\0';
	if ((rc = check_free_space(l, why)) ||
	    (rc = submit_check(l, bytes, len, now_ns, adm, &t, false, hash, why)))
		goto out;
	ledger_mp_lock(l);
	rc = submit_add_locked(l, now_ns, &t, bytes, len, hash, NULL, held, why);
	/* Under the same hold of the lock: the log's order is the pool's. */
	if (!rc)
		pending_write_one(l, bytes, len, hash);
	ledger_mp_unlock(l);
	if (rc && adm && adm->undo)
		adm->undo(adm->ctx, hash);
out:
	if (rc && !why[0])
		why_set(why, rc, "%s", tally_strerror(rc));
	return rc;
}

/* A batch on the worker threads: item i's checks, into its own slots. The
 * decoded transaction is not kept (a struct tx is kilobytes, so n of them
 * cost more in memory traffic and page faults than decoding again): the
 * admission under the lock decodes each one again into one scratch. */
struct batch_job {
	struct ledger *l;
	struct ledger_batch_item *items;
	bool *checked;                       /* passed submit_check */
	const struct ledger_admission *adm;
	uint64_t now_ns;
};

static void batch_check_one(void *ctx, size_t i)
{
	struct batch_job *j = ctx;
	struct ledger_batch_item *it = &j->items[i];
	struct tx t;

	if (!it->bytes)
		return;
	it->held = false;
	it->why[0] = '\0';
	it->rc = submit_check(j->l, it->bytes, it->len, j->now_ns, j->adm, &t, it->hashed, it->hash,
			      it->why);
	j->checked[i] = it->rc == 0;
}

/* With mp_mu held: the batch's transactions the pool took, into its log
 * with one write (one per transaction without the memory for that). */
static void batch_write_pending(struct ledger *l, const struct ledger_batch_item *items,
				size_t n, const bool *checked)
{
	size_t total = 0, at = 0;
	uint8_t *recs;

	if (!l->pending)
		return;
	for (size_t i = 0; i < n; i++)
		if (checked[i] && !items[i].rc)
			total += 4 + items[i].len + PENDING_CHECK_LEN;
	recs = malloc(total ? total : 1);
	for (size_t i = 0; i < n; i++) {
		if (!checked[i] || items[i].rc)
			continue;
		/* Checked: its hash is filled in (submit_check). */
		if (recs)
			at += pending_frame_hashed(recs + at, items[i].bytes, items[i].len,
						   items[i].hash);
		else
			pending_write_one(l, items[i].bytes, items[i].len, items[i].hash);
	}
	if (recs)
		pending_write(l, recs, at);
	free(recs);
}

int ledger_submit_batch(struct ledger *l, struct ledger_batch_item *items, size_t n,
			const struct ledger_admission *adm, char *why)
{
	struct batch_job j = { l, items, NULL, adm, node_clock_ns() };
	struct tx t;
	int rc;

	why[0] = '\0';
	if (n > LEDGER_BATCH_MAX)
		return why_set(why, TALLY_E_TOOLONG, "a batch holds at most %d transactions, not"
			       " %zu", LEDGER_BATCH_MAX, n);
	if ((rc = check_free_space(l, why)))
		return rc;
	j.checked = calloc(n ? n : 1, sizeof(*j.checked));
	if (!j.checked)
		return why_set(why, TALLY_E_NOMEM, "no memory for a batch of %zu", n);
	workers_run(l->workers, n, batch_check_one, &j);
	ledger_mp_lock(l);
	for (size_t i = 0; i < n; i++) {
		struct ledger_batch_item *it = &items[i];

		if (!j.checked[i])
			continue;
		it->rc = mempool_tx_decode(&t, it->bytes, it->len, it->why);
		if (!it->rc)
			it->rc = submit_add_locked(l, j.now_ns, &t, it->bytes, it->len, it->hash,
						   it->origin, &it->held, it->why);
	}
	batch_write_pending(l, items, n, j.checked);
	ledger_mp_unlock(l);
	for (size_t i = 0; i < n; i++) {
		struct ledger_batch_item *it = &items[i];

		if (!it->bytes || !it->rc)
			continue;
		if (j.checked[i] && adm && adm->undo)
			adm->undo(adm->ctx, it->hash);
		if (!it->why[0])
			why_set(it->why, it->rc, "%s", tally_strerror(it->rc));
	}
	free(j.checked);
	return 0;
}

int ledger_status(struct ledger *l, struct ledger_status *st)
{
	memset(st, 0, sizeof(*st));
	ledger_lock(l);
	snprintf(st->chain_id, sizeof(st->chain_id), "%s", l->chain_id);
	memcpy(st->genesis_hash, l->genesis_hash, HASH_LEN);
	st->height = l->tip.height;
	memcpy(st->last_block_id, l->tip.last_block_id, HASH_LEN);
	st->time_ns = l->tip.time_ns;
	state_root(&l->state, st->state_root);
	st->usage_size = l->tip.usage.size;
	merkle_frontier_root(&l->tip.usage, st->usage_root);
	st->committed = l->ncommitted;
	st->committed_from_trial = l->ncommitted_tried;
	ledger_mp_lock(l);
	st->mempool_size = mempool_size(l->mp);
	st->mempool_held = mempool_held(l->mp);
	st->held_dropped = mempool_held_dropped(l->mp);
	ledger_mp_unlock(l);
	ledger_unlock(l);
	return 0;
}

int ledger_next_nonce(struct ledger *l, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce)
{
	int rc;

	ledger_mp_lock(l);
	rc = mempool_next_nonce(l->mp, pub, nonce);
	ledger_mp_unlock(l);
	return rc;
}
