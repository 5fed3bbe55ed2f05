/* Blocks in the node: building one from the mempool and committing it, and
 * applying one made elsewhere. Both run the chain layer's own block
 * execution (lib/chain/exec.h) on the SQLite state and check the result
 * with the auditor's verification (lib/chain/verify.h):
 *   1. BEGIN IMMEDIATE;
 *   2. apply each transaction to the state (state_apply_tx); its row goes
 *      into txs, USAGE appends to the usage log;
 *   3. the state root, usage log and next validator set (exec_finish);
 *   4. certify: a block this node builds runs the consensus round state
 *      machine with a loopback transport (the devnet validator proposes,
 *      prevotes and precommits; its precommit is the certificate); a block
 *      from elsewhere brings its certificate;
 *   5. chain_verify_header + chain_advance against the tip, exactly as
 *      `tally audit` checks the block;
 *   6. write the block row (header, body, cert, next set) and the proposer
 *      priorities, then COMMIT.
 * Any failure rolls the SQLite transaction back and reloads the tip and the
 * state tree from the store, so memory never runs ahead of the disk; the
 * mempool changes only after a successful COMMIT.
 *
 * Signatures: a transaction in the mempool was verified when it was
 * submitted; verification skips it (chain_verifier.tx_verified). Every other
 * transaction of an applied block is verified.
 *
 * If the process dies after the validator recorded a signature but before
 * the COMMIT, the block is absent on restart and the signing guard refuses
 * to sign another block at that (height, round): production resumes at the
 * next round, as a Tendermint validator would after a timeout. */
#include "daemon/ledger/ledger_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/chainfile.h"
#include "lib/chain/exec.h"
#include "lib/errors.h"

/* --- loopback transport ----------------------------------------------------- */

static struct loop_msg *loop_slot(struct ledger *l)
{
	struct loop_msg *m;

	if (l->nqueue == LOOP_QUEUE_MAX)
		return NULL;
	m = &l->queue[l->nqueue++];
	memset(m, 0, sizeof(*m));
	return m;
}

static void loop_send_proposal(void *ctx, const struct proposal *p, const uint8_t sig[SIG_LEN])
{
	struct loop_msg *m = loop_slot(ctx);

	if (!m)
		return;
	m->p = *p;
	memcpy(m->sig, sig, SIG_LEN);
}

static void loop_send_vote(void *ctx, const struct vote *v, const uint8_t who[PUBKEY_LEN],
			   const uint8_t sig[SIG_LEN])
{
	struct loop_msg *m = loop_slot(ctx);

	if (!m)
		return;
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

void ledger_consensus_init(struct ledger *l)
{
	struct cs_transport tr = {
		.ctx = l,
		.send_proposal = loop_send_proposal,
		.send_vote = loop_send_vote,
	};

	cs_init(&l->cs, l->genesis_hash, l->has_pv ? &l->pv : NULL, &tr);
	l->cs.block_valid = loop_block_valid;
	l->cs.app_ctx = l;
}

/* --- a block in the making ----------------------------------------------------- */

/* Its transactions borrow their bytes from the mempool or from the decoded
 * block being applied. */
struct build {
	struct block b;
	struct tx *dtx;
	uint8_t (*hash)[HASH_LEN];
	size_t cap;
	uint8_t (*dropped)[HASH_LEN];
	size_t ndropped;
	struct block_ctx bc;
	struct exec_result r;
};

static int build_init(struct ledger *l, struct build *bd, size_t cap, uint64_t time_ns)
{
	struct block_header *h = &bd->b.header;

	memset(bd, 0, sizeof(*bd));
	bd->cap = cap;
	bd->b.txs = calloc(cap ? cap : 1, sizeof(*bd->b.txs));
	bd->dtx = malloc((cap ? cap : 1) * sizeof(*bd->dtx));
	bd->hash = malloc((cap ? cap : 1) * sizeof(*bd->hash));
	bd->dropped = malloc((cap ? cap : 1) * sizeof(*bd->dropped));
	if (!bd->b.txs || !bd->dtx || !bd->hash || !bd->dropped)
		return TALLY_E_NOMEM;
	h->version = BLOCK_VERSION;
	snprintf(h->chain_id, sizeof(h->chain_id), "%s", l->chain_id);
	h->height = l->tip.height + 1;
	h->time_ns = time_ns;
	memcpy(h->prev_block_id, l->tip.last_block_id, HASH_LEN);
	memcpy(h->last_commit_hash, l->tip.last_cert_hash, HASH_LEN);
	valset_hash(&l->tip.vals, h->validators_hash);
	bd->bc.chain_id = l->chain_id;
	bd->bc.height = h->height;
	bd->bc.time_ns = time_ns;
	return 0;
}

static void build_free(struct build *bd)
{
	free(bd->b.txs);   /* the bytes are borrowed */
	free(bd->dtx);
	free(bd->hash);
	free(bd->dropped);
}

/* Records an applied transaction in the block and in the txs table. */
static int build_record(struct ledger *l, struct build *bd, const struct tx *t,
			const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN])
{
	size_t i = bd->b.ntx;
	int rc = store_tx_put(l->st, hash, bd->bc.height, (uint32_t)i, t->kind, t->signer,
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
	rc = store_block_put(l->st, &sb);
	if (!rc)
		rc = ledger_put_priorities(l, &next);
	if (!rc)
		rc = store_commit(l->st);
	if (rc)
		goto out;
	l->tip = *next_tip;
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
		    " dropped: %s", l->tip.height, tx_kind_name(e->tx.kind), hex, why);
	ledger_note_dropped(l, e->hash, l->tip.height, why);
}

static void after_commit(struct ledger *l, struct build *bd)
{
	struct ledger_committed c = {
		.header = &bd->b.header,
		.block_id = l->tip.last_block_id,
		.ntx = bd->b.ntx,
		.txs = bd->dtx,
		.hashes = (const uint8_t (*)[HASH_LEN])bd->hash,
		.raw = bd->b.txs,
	};
	struct block_ctx next = { l->chain_id, l->tip.height + 1, bd->bc.time_ns };
	long dropped;

	/* Hook first: it gets the bytes, which still live in the mempool. */
	if (l->hook)
		l->hook(l->hook_ctx, &c);
	for (size_t i = 0; i < bd->b.ntx; i++)
		mempool_remove(l->mp, bd->hash[i]);
	for (size_t i = 0; i < bd->ndropped; i++)
		mempool_remove(l->mp, bd->dropped[i]);
	dropped = mempool_recheck(l->mp, &next, log_dropped, l);
	if (dropped < 0)
		ledger_logf(l, "height %" PRIu64 ": rechecking the mempool failed: %s",
			    l->tip.height, tally_strerror((int)-dropped));
}

/* Steps 5 and 6 for a block whose transactions are applied and whose
 * certificate is known: the auditor's checks (unless chain_verify_header
 * already ran and gave the usage log after the block), then the commit. */
static int verify_and_commit(struct ledger *l, struct build *bd, const struct commit_cert *cert,
			     const struct merkle_frontier *verified_usage, char *why)
{
	struct chain_verifier next = l->tip;
	struct merkle_frontier usage;
	int rc = 0;

	if (verified_usage)
		usage = *verified_usage;
	else
		rc = chain_verify_header(&l->tip, &bd->b, cert, &usage, why);
	if (!rc)
		rc = chain_advance(&next, &bd->b, cert, &usage, &bd->r.next_vals, why);
	if (rc)
		return rc;
	rc = build_commit(l, bd, cert, &next);
	if (rc)
		why_set(why, rc, "committing block %" PRIu64 ": %s (%s)", bd->bc.height,
			tally_strerror(rc), store_errmsg(l->st));
	return rc;
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
	if (l->pv.any && l->pv.height == l->tip.height + 1)
		return l->pv.round + 1;
	return 0;
}

/* Mempool transactions in order; one that the state refuses now is left
 * out (and dropped from the pool after the commit). */
static int produce_txs(struct ledger *l, struct build *bd)
{
	const struct mempool_entry *e;
	char why[WHY_MAX], hex[2 * HASH_LEN + 1];
	int rc;

	for (e = mempool_first(l->mp); e && bd->b.ntx < l->block_max_txs; e = mempool_next(e)) {
		rc = state_apply_tx(&l->state, &bd->bc, &e->tx, e->bytes, e->len, e->hash, NULL,
				    why);
		if (!rc)
			rc = build_record(l, bd, &e->tx, e->bytes, e->len, e->hash);
		if (!rc)
			continue;
		if (state_err_is_fatal(rc))
			return rc;
		hex_encode(e->hash, HASH_LEN, hex);
		ledger_logf(l, "height %" PRIu64 ": dropping %s transaction %s: %s", bd->bc.height,
			    tx_kind_name(e->tx.kind), hex, why);
		ledger_note_dropped(l, e->hash, bd->bc.height, why);
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

	memset(&bd, 0, sizeof(bd));
	if (!l->has_pv)
		return why_set(why, TALLY_E_UNAUTHORIZED, "this node has no validator key");
	if (time_ns <= l->tip.time_ns)
		return why_set(why, TALLY_E_INVALID, "block time %" PRIu64 " ns is not after the"
			       " previous block's %" PRIu64 " ns", time_ns, l->tip.time_ns);
	cs_start(&l->cs, l->tip.height + 1, start_round(l), &l->vals);
	if (!cs_is_proposer(&l->cs))
		return why_set(why, TALLY_E_UNAUTHORIZED, "this node is not the proposer at"
			       " height %" PRIu64 " round %u", l->tip.height + 1, l->cs.round);
	rc = build_init(l, &bd, cap, time_ns);
	if (rc)
		goto out_free;
	memcpy(bd.b.header.proposer, cs_proposer(&l->cs), PUBKEY_LEN);
	rc = store_begin(l->st);
	if (rc) {
		why_set(why, rc, "cannot start the block's transaction: %s", store_errmsg(l->st));
		goto out_free;
	}
	rc = produce_txs(l, &bd);
	if (!rc)
		rc = exec_finish(&l->state, &bd.b, &bd.r);
	if (rc) {
		why_set(why, rc, "building block %" PRIu64 ": %s (%s)", bd.bc.height,
			tally_strerror(rc), store_errmsg(l->st));
		goto out_abort;
	}
	exec_fill_header(&bd.b.header, &bd.r);
	rc = certify(l, &bd, &cert, why);
	if (!rc)
		rc = verify_and_commit(l, &bd, &cert, NULL, why);
	if (rc)
		goto out_abort;
	if (res) {
		res->height = l->tip.height;
		memcpy(res->id, l->tip.last_block_id, HASH_LEN);
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
	ledger_lock(l);
	rc = produce_locked(l, time_ns, res, why);
	ledger_unlock(l);
	return rc;
}

/* --- applying a block from elsewhere ---------------------------------------------- */

static int apply_locked(struct ledger *l, const struct block *in, const struct commit_cert *cert,
			char *why)
{
	struct merkle_frontier usage;
	size_t failed_at;
	struct build bd;
	int rc;

	memset(&bd, 0, sizeof(bd));
	/* Links, signatures and the certificate first: a block that does not
	 * verify is never executed. */
	rc = chain_verify_header(&l->tip, in, cert, &usage, why);
	if (rc)
		return rc;
	rc = build_init(l, &bd, in->ntx, in->header.time_ns);
	if (rc)
		goto out_free;
	rc = store_begin(l->st);
	if (rc) {
		why_set(why, rc, "cannot start the block's transaction: %s", store_errmsg(l->st));
		goto out_free;
	}
	rc = exec_block(&l->state, in, NULL, NULL, &bd.r, &failed_at, why);
	for (size_t i = 0; !rc && i < in->ntx; i++) {
		uint8_t hash[HASH_LEN];

		rc = tx_decode(&bd.dtx[i], in->txs[i].bytes, in->txs[i].len);
		tx_hash(in->txs[i].bytes, in->txs[i].len, hash);
		if (!rc)
			rc = build_record(l, &bd, &bd.dtx[i], in->txs[i].bytes, in->txs[i].len,
					  hash);
	}
	if (!rc)
		rc = exec_check_header(&in->header, &bd.r, why);
	if (rc)
		goto out_abort;
	bd.b.header = in->header;
	rc = verify_and_commit(l, &bd, cert, &usage, why);
	if (rc)
		goto out_abort;
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
	ledger_lock(l);
	rc = apply_locked(l, &b, &c, why);
	ledger_unlock(l);
	block_free(&b);
	return rc;
}
