/* Blocks in the node: the application side of consensus (building a block
 * from the mempool and checking a proposed one, both on a trial of the
 * state; committing a decided one) and applying a block made elsewhere. Every path runs the chain layer's own block
 * execution (lib/chain/exec.h) and checks the result with the auditor's
 * verification (lib/chain/verify.h). A block is committed as
 *   1. chain_verify_header: links, transactions, usage log, certificate;
 *   2. BEGIN IMMEDIATE; apply each transaction to the SQLite state
 *      (state_apply_tx); USAGE appends to the usage log;
 *   3. the state root, usage log and next validator set (exec_finish),
 *      compared with the header (exec_check_header);
 *      for the block this node built or checked last (the one decided,
 *      unless a later round decided another), 2 and 3 are not done again:
 *      the trial it was tried on was kept, and its writes, usage appends,
 *      bucket hashes and tree go to the store (trial_commit), the state
 *      that executing it again would make;
 *   4. chain_advance against the tip, exactly as `tally audit` does;
 *   5. write the block row (header, body, cert, next set), a txs row for
 *      each transaction (its hash and where it lies in the body) and the
 *      proposer priorities, then COMMIT.
 * Any failure rolls the SQLite transaction back and reloads the tip and the
 * state tree from the store, so memory never runs ahead of the disk; the
 * mempool changes only after a successful COMMIT.
 *
 * Signatures: a transaction in the mempool was verified when it was
 * submitted, and the ledger remembers the last LEDGER_VERIFIED_MAX it
 * verified; verification skips those (chain_verifier.tx_verified,
 * ledger_tx_verified). The other transactions of a proposed or synced block
 * are verified on the worker pool first (preverify), then found verified;
 * the same bytes arriving by gossip afterwards are not verified again.
 *
 * Which block commits is the consensus engine's decision
 * (daemon/consensus/engine.h, hosted by consensus.c), and what happens after
 * a crash is its WAL's: a block decided before the crash is committed when
 * the engine replays its height. */
#include "daemon/ledger/ledger_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/clock.h"
#include "lib/chain/evidence.h"
#include "lib/chain/exec.h"
#include "lib/chain/trial.h"
#include "lib/errors.h"

/* --- a block in the making ----------------------------------------------------- */

/* Its transactions borrow their bytes from the mempool or from the decoded
 * block being applied. No array of decoded transactions: a struct tx is
 * 3.6 KiB, and an array of them for a block of thousands was fresh memory
 * (page faults) at every commit. */
struct build {
	struct block b;
	uint8_t (*hash)[HASH_LEN];
	size_t cap;
	struct block_ctx bc;
	struct exec_result r;
};

static int build_init(struct ledger *l, struct build *bd, size_t cap, uint64_t time_ns)
{
	memset(bd, 0, sizeof(*bd));
	bd->cap = cap;
	bd->b.txs = calloc(cap ? cap : 1, sizeof(*bd->b.txs));
	bd->hash = malloc((cap ? cap : 1) * sizeof(*bd->hash));
	if (!bd->b.txs || !bd->hash)
		return TALLY_E_NOMEM;
	bd->bc.chain_id = l->chain_id;
	bd->bc.height = l->tip.height + 1;
	bd->bc.time_ns = time_ns;
	return 0;
}

static void build_free(struct build *bd)
{
	free(bd->b.txs);   /* the bytes are borrowed */
	free(bd->hash);
}

/* Records an applied transaction in the block (its txs row is written
 * with the block's row, build_commit). */
static void build_record(struct build *bd, const uint8_t *bytes, size_t len,
			 const uint8_t hash[HASH_LEN])
{
	size_t i = bd->b.ntx;

	bd->b.txs[i].bytes = bytes;
	bd->b.txs[i].len = len;
	memcpy(bd->hash[i], hash, HASH_LEN);
	bd->b.ntx++;
}

/* Block row, priorities, COMMIT; then the tip follows. */
static int build_commit(struct ledger *l, struct build *bd, const struct commit_cert *cert,
			const struct chain_verifier *next_tip)
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
		valset_encode(&ev, &bd->r.next_vals);
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
	valset_next(&l->vals, &bd->r.next_vals, &next);
	rc = store_block_put(l->st, &sb, (const uint8_t (*)[HASH_LEN])bd->hash);
	if (!rc)
		rc = ledger_put_priorities(l, &next);
	if (!rc)
		rc = ledger_put_last_set(l, &l->vals);
	if (!rc)
		rc = store_commit(l->st);
	if (rc)
		goto out;
	l->tip = *next_tip;
	l->tip_cert = *cert;
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
	char why[WHY_MAX];

	store_rollback(l->st);
	if (ledger_load_tip(l, why))
		ledger_logf(l, "cannot reload the tip after a failed block: %s (%s)", why,
			    store_errmsg(l->st));
}

static void log_dropped(void *ctx, const struct mempool_entry *e, const char *why)
{
	struct ledger *l = ctx;
	char hex[2 * HASH_LEN + 1];

	hex_encode(e->hash, HASH_LEN, hex);
	ledger_logf(l, "height %" PRIu64 ": pending %s transaction %s no longer applies and was"
		    " dropped: %s", l->tip.height, tx_kind_name(e->kind), hex, why);
	ledger_note_dropped(l, e->hash, l->tip.height, why);
}

static void after_commit(struct ledger *l, struct build *bd)
{
	struct ledger_committed c = {
		.header = &bd->b.header,
		.block_id = l->tip.last_block_id,
		.ntx = bd->b.ntx,
		.hashes = (const uint8_t (*)[HASH_LEN])bd->hash,
		.raw = bd->b.txs,
	};
	struct block_ctx next = { l->chain_id, l->tip.height + 1, bd->bc.time_ns };
	long dropped;
	int rc;

	if (l->hook)
		l->hook(l->hook_ctx, &c);
	/* Admission waits from here until the mempool stands on the new state:
	 * until then it saw the state before this block, with the block's
	 * transactions pending. */
	ledger_mp_lock(l);
	for (size_t i = 0; i < bd->b.ntx; i++)
		mempool_remove(l->mp, bd->hash[i]);
	rc = ledger_mp_rebase(l);
	if (rc)
		ledger_logf(l, "height %" PRIu64 ": the mempool's view of the state did not move"
			    " on: %s (%s)", l->tip.height, tally_strerror(rc),
			    store_errmsg(l->mp_reader));
	dropped = mempool_recheck(l->mp, &next, log_dropped, l);
	if (dropped < 0)
		ledger_logf(l, "height %" PRIu64 ": rechecking the mempool failed: %s",
			    l->tip.height, tally_strerror((int)-dropped));
	/* The block's transactions and the ones dropped have left the pool:
	 * their records in the mempool's log are what it can shed. */
	ledger_pending_compact(l);
	ledger_mp_unlock(l);
	/* The checkpoint, outside the mempool's lock: admission waits only
	 * for the recheck above, not for the WAL's pages to be copied. */
	ledger_mp_settle(l);
}

/* Steps 4 and 5 for a block whose transactions are applied, with the tip it
 * was verified against and the usage log after it that chain_verify_header
 * gave. */
static int verify_and_commit(struct ledger *l, struct build *bd, const struct chain_verifier *tip,
			     const struct commit_cert *cert, const struct merkle_frontier *usage,
			     char *why)
{
	struct chain_verifier next = *tip;
	int rc = chain_advance(&next, &bd->b, cert, usage, &bd->r.next_vals, why);

	if (rc)
		return rc;
	rc = build_commit(l, bd, cert, &next);
	if (rc)
		why_set(why, rc, "committing block %" PRIu64 ": %s (%s)", bd->bc.height,
			tally_strerror(rc), store_errmsg(l->st));
	return rc;
}

/* --- trying a block: building and checking ---------------------------------------- */

/* The kept trial (struct ledger's kept) is forgotten. */
static void kept_drop(struct ledger *l)
{
	trial_end(&l->kept);
	l->kept_valid = false;
}

/* l->kept, just tried with the outcome rc, is kept for the commit of the
 * block whose header is h when rc is 0, with r; else forgotten. */
static void kept_take(struct ledger *l, int rc, const struct block_header *h,
		      const struct exec_result *r)
{
	if (rc) {
		kept_drop(l);
		return;
	}
	l->kept_valid = true;
	l->kept_height = h->height;
	block_id(h, l->kept_id);
	l->kept_r = *r;
}

/* Steps 2 and 3 for block in when it is the one this node tried last: the
 * trial's writes go to the store and its tree becomes the state's, and
 * *r is what its execution produced (lib/chain/trial.h: the state is what
 * executing the block again would make it). *used false: no such trial,
 * or one that cannot be committed (trial_can_commit), nothing done. */
static int commit_kept(struct ledger *l, const struct block *in, struct exec_result *r,
		       bool *used, char *why)
{
	uint8_t id[HASH_LEN];
	int rc;

	*used = false;
	if (!l->kept_valid || l->kept_height != in->header.height)
		return 0;
	block_id(&in->header, id);
	if (memcmp(id, l->kept_id, HASH_LEN))
		return 0;
	/* A trial that cannot be written as it is (it ran out of memory noting
	 * its writes, or the state is not the one it was begun on) has written
	 * nothing: the block is executed instead. */
	rc = trial_can_commit(&l->kept, &l->state);
	if (rc) {
		ledger_logf(l, "block %" PRIu64 ": its trial cannot be committed (%s): executing"
			    " it again", in->header.height, tally_strerror(rc));
		return 0;
	}
	*used = true;
	rc = trial_commit(&l->kept, &l->state);
	if (rc)
		return why_set(why, rc, "block %" PRIu64 ": cannot write the state its trial"
			       " made: %s (%s)", in->header.height, tally_strerror(rc),
			       store_errmsg(l->st));
	*r = l->kept_r;
	return 0;
}

/* Mempool transactions in order, each decoded into tx (scratch) and
 * applied to the trial; one that the state refuses now is left out (the
 * mempool drops it after the next commit, when it no longer applies). */
static int build_txs(struct ledger *l, struct trial *t, struct block *b, struct tx *tx,
		     size_t *dropped)
{
	struct block_ctx bc = { l->chain_id, b->header.height, b->header.time_ns };
	const struct mempool_entry *e;
	char why[WHY_MAX], hex[2 * HASH_LEN + 1];
	int rc;

	for (e = mempool_first(l->mp); e && b->ntx < l->block_max_txs; e = mempool_next(e)) {
		rc = mempool_entry_apply(e, &t->state, &bc, tx, why);
		if (!rc) {
			b->txs[b->ntx].bytes = e->bytes;   /* borrowed */
			b->txs[b->ntx].len = e->len;
			b->ntx++;
			continue;
		}
		if (state_err_is_fatal(rc))
			return rc;
		hex_encode(e->hash, HASH_LEN, hex);
		ledger_logf(l, "height %" PRIu64 ": leaving out %s transaction %s: %s", bc.height,
			    tx_kind_name(e->kind), hex, why);
		(*dropped)++;
	}
	return 0;
}

/* With both locks: the mempool may not change while the block borrows
 * its entries. */
static int build_locked(struct ledger *l, uint64_t time_ns, const uint8_t proposer[PUBKEY_LEN],
			const struct commit_cert *prev, uint8_t **out, size_t *len, size_t *dropped,
			char *why)
{
	struct chain_verifier *tip;
	size_t cap = mempool_size(l->mp) < l->block_max_txs ? mempool_size(l->mp) :
		     l->block_max_txs;
	struct last_commit lc;
	struct exec_result r;
	struct trial *t = &l->kept;
	struct tx *tx;
	struct block b;
	struct enc e;
	int rc;

	*out = NULL;
	*len = 0;
	*dropped = 0;
	if (time_ns <= l->tip.time_ns)
		return why_set(why, TALLY_E_INVALID, "block time %" PRIu64 " ns is not after the"
			       " previous block's %" PRIu64 " ns", time_ns, l->tip.time_ns);
	memset(&b, 0, sizeof(b));
	/* The block names the certificate the engine holds for the tip. */
	rc = trial_with_last_cert(&l->tip, prev, &tip, why);
	if (rc)
		return rc;
	trial_next_header(tip, time_ns, proposer, &b.header);
	b.txs = calloc(cap ? cap : 1, sizeof(*b.txs));
	if (!b.txs) {
		free(tip);
		return TALLY_E_NOMEM;
	}
	kept_drop(l);
	rc = trial_begin(t, &l->state, &l->tip.usage);
	if (rc) {
		free(tip);
		free(b.txs);
		return why_set(why, rc, "cannot try a block: %s", tally_strerror(rc));
	}
	tx = malloc(sizeof(*tx));
	rc = tx ? build_txs(l, t, &b, tx, dropped) : TALLY_E_NOMEM;
	free(tx);
	chain_last_commit(tip, &lc);
	if (!rc)
		rc = exec_finish(&t->state, &b, &lc, &r);
	free(tip);
	if (rc) {
		kept_drop(l);
		free(b.txs);
		return why_set(why, rc, "building block %" PRIu64 ": %s (%s)", b.header.height,
			       tally_strerror(rc), store_errmsg(l->st));
	}
	exec_fill_header(&b, &r);
	enc_init(&e);
	block_encode(&e, &b);
	free(b.txs);   /* the bytes were borrowed */
	rc = enc_error(&e);
	kept_take(l, rc, &b.header, &r);
	if (rc) {
		enc_free(&e);
		return why_set(why, rc, "cannot encode block %" PRIu64, b.header.height);
	}
	*out = enc_take(&e, len);
	block_id(&b.header, l->built_id);
	l->built_dropped = *dropped;
	return 0;
}

static int build_mp_locked(struct ledger *l, uint64_t time_ns,
			   const uint8_t proposer[PUBKEY_LEN], const struct commit_cert *prev,
			   uint8_t **out, size_t *len, size_t *dropped, char *why)
{
	int rc;

	ledger_mp_lock(l);
	rc = build_locked(l, time_ns, proposer, prev, out, len, dropped, why);
	ledger_mp_unlock(l);
	return rc;
}

int ledger_build_block(struct ledger *l, uint64_t time_ns, const uint8_t proposer[PUBKEY_LEN],
		       uint8_t **block, size_t *len, size_t *dropped, char *why)
{
	size_t d;
	int rc;

	why[0] = '\0';
	ledger_lock(l);
	rc = build_mp_locked(l, time_ns, proposer, NULL, block, len, dropped ? dropped : &d, why);
	ledger_unlock(l);
	return rc;
}

/* --- signatures ahead of the chain's verification ------------------------------- */

struct preverify {
	struct ledger *l;
	const struct block *b;
	size_t *idx;                         /* transactions not verified yet */
	size_t k;                            /* how many */
	uint8_t (*hash)[HASH_LEN];           /* of every transaction */
};

/* Item i takes the k - 1 - i-th of them, so the pool works from the end of
 * the block: the peers' intake (ledger_submit_batch) checks the same
 * transactions from the front, in the order they were gossiped, at the same
 * time. Each side looks in the verified set just before it verifies one and
 * notes one as soon as it verified, so a transaction the other side did
 * meanwhile is not verified twice, and the two meet in the middle. */
static void preverify_one(void *ctx, size_t i)
{
	struct preverify *p = ctx;
	size_t at = p->idx[p->k - 1 - i];
	const struct block_tx *bt = &p->b->txs[at];
	struct tx t;

	if (ledger_verified_lately(p->l, p->hash[at]))
		return;
	if (tx_decode(&t, bt->bytes, bt->len) == 0 && strcmp(t.chain_id, p->l->chain_id) == 0 &&
	    tx_verify_all(&t, bt->bytes, bt->len, p->l->genesis_hash, NULL) == 0)
		ledger_note_verified(p->l, p->hash[at]);
}

/* The signatures of b's transactions that this node has not verified yet
 * (not in its mempool: gossip had not brought them yet, or its intake has
 * not checked them yet), checked on the worker pool, each that verifies
 * noted (ledger_note_verified). The chain's verification, on this thread,
 * then finds them verified; one that does not verify is left to it, which
 * refuses the block and says why. Without memory, it all is left to it. */
static void preverify(struct ledger *l, const struct block *b)
{
	struct preverify p = { l, b, NULL, 0, NULL };

	p.idx = malloc((b->ntx ? b->ntx : 1) * sizeof(*p.idx));
	p.hash = malloc((b->ntx ? b->ntx : 1) * sizeof(*p.hash));
	if (!p.idx || !p.hash)
		goto out;
	for (size_t i = 0; i < b->ntx; i++) {
		block_tx_hash(&b->txs[i], p.hash[i]);
		if (!ledger_tx_verified(l, p.hash[i]))
			p.idx[p.k++] = i;
	}
	if (p.k)
		workers_run(l->workers, p.k, preverify_one, &p);
out:
	free(p.idx);
	free(p.hash);
}

static int check_locked(struct ledger *l, const uint8_t *bytes, size_t len,
			const struct commit_cert *prev, char *why)
{
	struct block b;
	struct exec_result r;
	int rc = block_decode(&b, bytes, len);

	if (rc)
		return why_set(why, rc, "the block does not decode: %s", tally_strerror(rc));
	preverify(l, &b);
	kept_drop(l);
	rc = trial_check_block_kept(&l->tip, &l->state, &b, prev, &l->kept, &r, why);
	kept_take(l, rc, &b.header, &r);
	block_free(&b);
	return rc;
}

int ledger_check_block(struct ledger *l, const uint8_t *block, size_t len,
		       const struct commit_cert *prev, char *why)
{
	int rc;

	why[0] = '\0';
	ledger_lock(l);
	rc = check_locked(l, block, len, prev, why);
	ledger_unlock(l);
	return rc;
}

/* --- applying a block from elsewhere ---------------------------------------------- */

/* The chain's certificate of the tip block (c, the one the block being
 * committed names) against the set that signed it: who signed, who missed.
 * Called once that block is committed. */
static void count_votes(struct ledger *l, const struct validator_set *set,
			const struct commit_cert *c)
{
	for (size_t i = 0; i < set->n; i++) {
		const uint8_t *key = set->v[i].pubkey;
		struct ledger_vote_stat *st = NULL;
		bool signed_it = false;

		for (size_t j = 0; j < c->n && !signed_it; j++)
			signed_it = !memcmp(c->sigs[j].validator, key, PUBKEY_LEN);
		for (size_t j = 0; j < l->nvstats && !st; j++)
			if (!memcmp(l->vstats[j].validator, key, PUBKEY_LEN))
				st = &l->vstats[j];
		if (!st) {
			struct ledger_vote_stat *grown =
				realloc(l->vstats, (l->nvstats + 1) * sizeof(*grown));
			size_t at = 0;

			if (!grown)
				return;   /* figures for /metrics only: not worth failing for */
			l->vstats = grown;
			while (at < l->nvstats && memcmp(l->vstats[at].validator, key, PUBKEY_LEN) < 0)
				at++;
			memmove(&l->vstats[at + 1], &l->vstats[at],
				(l->nvstats - at) * sizeof(*grown));
			l->nvstats++;
			st = &l->vstats[at];
			memset(st, 0, sizeof(*st));
			memcpy(st->validator, key, PUBKEY_LEN);
		}
		if (signed_it)
			st->signed_blocks++;
		else
			st->missed_blocks++;
	}
}

int ledger_vote_stats(struct ledger *l, struct ledger_vote_stat *out, size_t max, size_t *n)
{
	ledger_lock(l);
	*n = l->nvstats < max ? l->nvstats : max;
	if (*n)   /* vstats is NULL until the first certificate counted */
		memcpy(out, l->vstats, *n * sizeof(*out));
	ledger_unlock(l);
	return 0;
}

/* synced: a block fetched from a peer rather than decided here, which must
 * also meet the chain's clock rule against this node's clock (a block
 * this node's consensus decided is committed whatever its own judgement
 * of its time was: more than 2/3 of the stake found it timely). */
static int apply_locked(struct ledger *l, const struct block *in, const struct commit_cert *cert,
			const struct commit_cert *prev, bool synced, char *why)
{
	struct chain_verifier tip;
	struct merkle_frontier usage;
	struct validator_set last_set;
	struct commit_cert last_cert;
	struct last_commit lc;
	bool adopt, tried;
	size_t failed_at;
	struct build bd;
	int rc;

	memset(&bd, 0, sizeof(bd));
	/* Links, signatures and the certificates first: a block that does not
	 * verify is never executed. The last block's certificate is the one
	 * this block names. */
	tip = l->tip;
	/* A block from block sync was not checked as a proposal here. */
	if (synced)
		preverify(l, in);
	if (prev)
		rc = chain_adopt_last_cert(&tip, &in->header, prev, why);
	else
		rc = 0;
	if (!rc)
		rc = chain_verify_header(&tip, in, cert, &usage, why);
	if (!rc && synced) {
		char sub[WHY_MAX] = "";

		rc = chain_check_block_time(in->header.time_ns, node_clock_ns(), l->max_future_ns,
					    sub);
		if (rc)
			why_set(why, rc, "block %" PRIu64 ": %s", in->header.height, sub);
	}
	if (rc)
		return rc;
	adopt = memcmp(tip.last_cert_hash, l->tip.last_cert_hash, HASH_LEN) != 0;
	rc = build_init(l, &bd, in->ntx, in->header.time_ns);
	if (rc)
		goto out_free;
	rc = store_begin(l->st);
	if (rc) {
		why_set(why, rc, "cannot start the block's transaction: %s", store_errmsg(l->st));
		goto out_free;
	}
	if (adopt) {
		/* The last block's certificate becomes the one this block names. */
		struct enc e;

		enc_init(&e);
		cert_encode(&e, prev);
		rc = enc_error(&e);
		if (!rc)
			rc = store_cert_put(l->st, l->tip.height, e.buf, e.len);
		enc_free(&e);
		if (rc) {
			why_set(why, rc, "cannot store the certificate of block %" PRIu64 ": %s",
				l->tip.height, store_errmsg(l->st));
			goto out_abort;
		}
	}
	chain_last_commit(&tip, &lc);
	rc = commit_kept(l, in, &bd.r, &tried, why);
	if (!tried)
		rc = exec_block(&l->state, in, &lc, NULL, NULL, &bd.r, &failed_at, why);
	kept_drop(l);   /* the state it stood on is gone either way */
	for (size_t i = 0; !rc && i < in->ntx; i++) {
		uint8_t hash[HASH_LEN];

		block_tx_hash(&in->txs[i], hash);
		build_record(&bd, in->txs[i].bytes, in->txs[i].len, hash);
	}
	if (!rc)
		rc = exec_check_header(&in->header, &bd.r, why);
	if (rc)
		goto out_abort;
	bd.b.header = in->header;
	/* Kept before the tip moves: the certificate of the last block this
	 * block names, and the set that signed it. */
	last_set = l->tip.last_vals;
	last_cert = prev ? *prev : l->tip_cert;
	rc = verify_and_commit(l, &bd, &tip, cert, &usage, why);
	if (rc)
		goto out_abort;
	if (tried)
		l->ncommitted_tried++;   /* counted once committed, as ncommitted is */
	if (last_set.n && last_cert.n)
		count_votes(l, &last_set, &last_cert);
	for (size_t i = 0; i < bd.r.downtime.n; i++) {
		char hex[2 * PUBKEY_LEN + 1];

		hex_encode(bd.r.downtime.pub[i], PUBKEY_LEN, hex);
		ledger_logf(l, "height %" PRIu64 ": validator %s jailed for downtime (missed the"
			    " liveness window of commits in a row); it may UNJAIL after the"
			    " jail term", in->header.height, hex);
	}
	after_commit(l, &bd);
	goto out_free;
out_abort:
	build_abort(l);
out_free:
	build_free(&bd);
	return rc;
}

/* A block and its certificate, decoded and committed; the last commit's
 * figures kept for ledger_produce_block and the devnet's log. */
static int commit_bytes(struct ledger *l, const uint8_t *block, size_t block_len,
			const struct commit_cert *cert, const struct commit_cert *prev, bool synced,
			char *why)
{
	struct block b;
	int rc;

	memset(&b, 0, sizeof(b));
	rc = block_decode(&b, block, block_len);
	if (rc)
		return why_set(why, rc, "the block does not decode: %s", tally_strerror(rc));
	rc = apply_locked(l, &b, cert, prev, synced, why);
	if (!rc) {
		l->last.height = l->tip.height;
		memcpy(l->last.id, l->tip.last_block_id, HASH_LEN);
		l->last.ntx = b.ntx;
		l->last.ndropped = memcmp(l->last.id, l->built_id, HASH_LEN) ? 0 : l->built_dropped;
		l->ncommitted++;
	}
	block_free(&b);
	return rc;
}

int ledger_apply_synced_block(struct ledger *l, const uint8_t *block, size_t block_len,
			      const uint8_t *cert, size_t cert_len, const uint8_t *prev_cert,
			      size_t prev_len, char *why)
{
	struct commit_cert c, p;
	int rc;

	why[0] = '\0';
	rc = cert_decode(&c, cert, cert_len);
	if (rc)
		return why_set(why, rc, "the certificate does not decode: %s", tally_strerror(rc));
	if (prev_cert && (rc = cert_decode(&p, prev_cert, prev_len)))
		return why_set(why, rc, "the previous block's certificate does not decode: %s",
			       tally_strerror(rc));
	ledger_lock(l);
	rc = commit_bytes(l, block, block_len, &c, prev_cert ? &p : NULL, true, why);
	/* Block sync moved the tip: the engine leaves that height. */
	if (!rc && l->cs && !l->in_engine) {
		l->in_engine = true;
		engine_on_committed(l->cs);
		l->in_engine = false;
	}
	ledger_unlock(l);
	return rc;
}

int ledger_apply_block(struct ledger *l, const uint8_t *block, size_t block_len,
		       const uint8_t *cert, size_t cert_len, char *why)
{
	return ledger_apply_synced_block(l, block, block_len, cert, cert_len, NULL, 0, why);
}

/* --- the application the consensus engine drives ------------------------------------- */

static int app_tip(void *ctx, struct engine_tip *t)
{
	struct ledger *l = ctx;

	t->height = l->tip.height;
	t->time_ns = l->tip.time_ns;
	t->vals = l->vals;
	t->last_cert = l->tip_cert;
	t->signers = l->tip.last_vals;
	return 0;
}

static int app_build(void *ctx, uint64_t height, uint64_t time_ns,
		     const uint8_t proposer[PUBKEY_LEN], const struct commit_cert *prev,
		     uint8_t **block, size_t *len, char *why)
{
	struct ledger *l = ctx;
	size_t dropped;

	if (height != l->tip.height + 1)
		return why_set(why, TALLY_E_HEIGHT, "asked for block %" PRIu64 " after block %"
			       PRIu64, height, l->tip.height);
	return build_mp_locked(l, time_ns, proposer, prev, block, len, &dropped, why);
}

static int app_check(void *ctx, const uint8_t *block, size_t len, const struct commit_cert *prev,
		     char *why)
{
	return check_locked(ctx, block, len, prev, why);
}

static int app_commit(void *ctx, const uint8_t *block, size_t len, const struct commit_cert *cert,
		      const struct commit_cert *prev, char *why)
{
	return commit_bytes(ctx, block, len, cert, prev, false, why);
}

static bool app_has_txs(void *ctx)
{
	struct ledger *l = ctx;

	return mempool_size(l->mp) > 0;
}

static void app_evidence(void *ctx, const struct cs_evidence *ev)
{
	struct ledger *l = ctx;

	/* The engine logged it; the node (daemon/driver.c) submits an EVIDENCE,
	 * which the chain judges (docs/FORMATS.md section 10.9). */
	if (l->evidence)
		l->evidence(l->evidence_ctx, ev);
}

static void app_log(void *ctx, const char *line)
{
	ledger_logf(ctx, "%s", line);
}

struct engine_app ledger_engine_app(struct ledger *l)
{
	struct engine_app app = {
		.ctx = l,
		.tip = app_tip,
		.build = app_build,
		.check = app_check,
		.commit = app_commit,
		.has_txs = app_has_txs,
		.evidence = app_evidence,
		.log = app_log,
	};

	return app;
}
