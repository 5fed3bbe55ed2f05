/* The lease auditor (see lib/chain/audit.h for what it checks and why). */
#include "lib/chain/audit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/replay.h"
#include "lib/chain/tx.h"
#include "lib/errors.h"

#define NS_PER_S 1000000000u

struct auditor {
	/* The chain: replayed from genesis (every rule, every state root), or
	 * only verified from a checkpoint, whose state the auditor lacks. */
	bool full;
	struct replay rp;            /* full */
	struct chain_verifier cv;    /* from a checkpoint */
	struct chain_verifier *v;    /* &rp.v or &cv */
	/* chain verification checked every signature of the block being scanned */
	bool block_verified;
	bool chain_broken;           /* a block failed: later ones are not verified */
	uint64_t failed_height;      /* where, when it did */
	uint8_t lease_id[LEASE_ID_LEN];
	char lease_hex[17];          /* short id for messages */

	bool have_settled;
	struct lease settled;
	bool have_match;             /* recomputed state at the claim's point */
	struct lease match;
	const struct state_proof *claim_proof;   /* the claim proven at claim_height */
	uint64_t claim_height;
	bool claim_seen;             /* the block at claim_height came */

	uint64_t usage_index;        /* next usage-log index */
	struct merkle_store *store;  /* usage leaves from the starting point on */
	int store_err;

	bool opened;
	bool missing_open_reported;
	bool replay_broken;
	struct lease lease;
	uint64_t refund;
	unsigned __int128 mem_mib_ns;
	/* Once the replay broke: the settlement carry of the records charged
	 * for the report only, from the lease's at the break on. */
	struct settle_carry report_carry;

	bool have_prev;              /* highest-seq record seen so far */
	uint64_t prev_seq;
	uint8_t prev_hash[HASH_LEN];
	uint64_t prev_end_ns;

	uint64_t blocks_seen;
	struct audit_result res;     /* records and errors accumulate here */
	size_t rec_cap, err_cap;
	int nomem;
};

__attribute__((format(printf, 6, 7)))
static void add_error(struct auditor *a, int code, uint64_t height, bool has_seq, uint64_t seq,
		      const char *fmt, ...)
{
	struct audit_result *r = &a->res;
	va_list ap;

	if (r->nerrors == AUDIT_ERRORS_MAX) {
		r->errors_dropped++;
		return;
	}
	if (r->nerrors == a->err_cap) {
		size_t cap = a->err_cap ? a->err_cap * 2 : 8;
		struct audit_error *e = realloc(r->errors, cap * sizeof(*e));
		if (!e) {
			a->nomem = 1;
			r->errors_dropped++;
			return;
		}
		r->errors = e;
		a->err_cap = cap;
	}
	struct audit_error *e = &r->errors[r->nerrors++];
	e->code = code;
	e->height = height;
	e->has_seq = has_seq;
	e->seq = seq;
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
}

static struct audit_record *add_record(struct auditor *a)
{
	struct audit_result *r = &a->res;

	if (r->nrecords == a->rec_cap) {
		size_t cap = a->rec_cap ? a->rec_cap * 2 : 16;
		struct audit_record *p = realloc(r->records, cap * sizeof(*p));
		if (!p) {
			a->nomem = 1;
			return NULL;
		}
		r->records = p;
		a->rec_cap = cap;
	}
	struct audit_record *rec = &r->records[r->nrecords++];
	memset(rec, 0, sizeof(*rec));
	return rec;
}

int auditor_new(struct auditor **out, const struct genesis *g,
		const struct chain_checkpoint *cp, const uint8_t pinned[HASH_LEN],
		const uint8_t lease_id[LEASE_ID_LEN], const struct lease *settled, char *why)
{
	struct auditor *a = calloc(1, sizeof(*a));
	int rc;

	*out = NULL;
	if (!a) {
		snprintf(why, WHY_MAX, "out of memory");
		return TALLY_E_NOMEM;
	}
	if (!g) {
		snprintf(why, WHY_MAX, "no genesis: every signature is bound to the genesis hash");
		rc = TALLY_E_INVALID;
		goto err;
	}
	if (cp) {
		char sub[WHY_MAX];

		rc = chain_verifier_from_checkpoint(&a->cv, cp, pinned, g, sub);
		if (rc) {
			why_set(why, 0, "checkpoint at height %" PRIu64 " does not verify: %s",
				cp->header.height, sub[0] ? sub : tally_strerror(rc));
			goto err;
		}
		a->v = &a->cv;
	} else {
		rc = replay_init(&a->rp, g, why);
		if (rc)
			goto err;
		a->full = true;
		a->v = &a->rp.v;
	}
	a->store = merkle_mem_store_new();
	if (!a->store) {
		rc = TALLY_E_NOMEM;
		snprintf(why, WHY_MAX, "out of memory");
		goto err;
	}
	a->usage_index = a->v->usage.size;
	a->store_err = merkle_store_seed(a->store, &a->v->usage);
	memcpy(a->lease_id, lease_id, LEASE_ID_LEN);
	hex_encode(lease_id, 8, a->lease_hex);
	if (settled) {
		a->have_settled = true;
		a->settled = *settled;
	}
	*out = a;
	return 0;
err:
	auditor_free(a);
	return rc;
}

void auditor_free(struct auditor *a)
{
	if (!a)
		return;
	if (a->store)
		merkle_mem_store_free(a->store);
	if (a->full)
		replay_free(&a->rp);
	audit_result_free(&a->res);
	free(a);
}

void audit_result_free(struct audit_result *r)
{
	free(r->records);
	free(r->errors);
	memset(r, 0, sizeof(*r));
}

/* The point the claimed settlement describes: the final state for a closed
 * lease, else the state after the record the claim has reached. */
static void note_state(struct auditor *a)
{
	const struct lease *s = &a->settled;

	if (!a->have_settled || a->claim_proof || s->state == LEASE_CLOSED)
		return;
	if (a->lease.state == s->state && a->lease.next_seq == s->next_seq) {
		a->match = a->lease;
		a->have_match = true;
	}
}

static bool opened_or_report(struct auditor *a, uint64_t height, const char *what)
{
	if (a->opened)
		return true;
	if (!a->missing_open_reported)
		add_error(a, TALLY_E_NOTFOUND, height, false, 0,
			  "block %" PRIu64 ": %s of lease %s comes before its LEASE_OPEN in the "
			  "audited blocks (audit from genesis or an earlier checkpoint)",
			  height, what, a->lease_hex);
	a->missing_open_reported = true;
	a->replay_broken = true;
	return false;
}

/* A verified block had every signature checked by chain verification;
 * only blocks beyond the verified chain need their own check here. */
static bool tx_signature_bad(const struct auditor *a, const struct tx *t, const uint8_t *p,
			     size_t n)
{
	return !a->block_verified && tx_verify(t, p, n, a->v->genesis_hash) != 0;
}

/* A lease rule refused a transaction. When the chain replay already failed
 * at this very block it said so, naming the transaction and the rule: the
 * lease's own replay stops without saying it twice. */
static bool refusal_is_new(const struct auditor *a, uint64_t height)
{
	return !(a->full && a->chain_broken && a->failed_height == height);
}

static void on_open(struct auditor *a, const struct tx *t, const uint8_t *p, size_t n,
		    const struct block_header *h)
{
	char why[WHY_MAX];
	int rc;

	if (a->opened) {
		add_error(a, TALLY_E_REPLAY, h->height, false, 0,
			  "block %" PRIu64 ": the LEASE_OPEN of lease %s appears a second time",
			  h->height, a->lease_hex);
		return;
	}
	if (tx_signature_bad(a, t, p, n))
		add_error(a, TALLY_E_SIGNATURE, h->height, false, 0,
			  "block %" PRIu64 ": the tenant's signature on the contract of lease %s "
			  "does not verify", h->height, a->lease_hex);
	/* The contract's rules at the block's time, as the chain applies them. */
	rc = tx_check_rules_at_block(t, a->v->chain_id, h->time_ns, why);
	if (!rc)
		rc = lease_open(&a->lease, a->lease_id, &t->u.open, h->height, why);
	if (rc) {
		if (refusal_is_new(a, h->height))
			add_error(a, rc, h->height, false, 0,
				  "block %" PRIu64 ": lease %s does not open: %s", h->height,
				  a->lease_hex, why);
		a->replay_broken = true;
		lease_open(&a->lease, a->lease_id, &t->u.open, h->height, why);
	}
	a->opened = true;
	note_state(a);
}

static void on_start(struct auditor *a, const struct tx *t, const uint8_t *p, size_t n,
		     const struct block_header *h)
{
	char why[WHY_MAX];
	int rc;

	if (!opened_or_report(a, h->height, "the LEASE_START"))
		return;
	if (tx_signature_bad(a, t, p, n))
		add_error(a, TALLY_E_SIGNATURE, h->height, false, 0,
			  "block %" PRIu64 ": the signature on LEASE_START of lease %s "
			  "does not verify", h->height, a->lease_hex);
	if (a->replay_broken)
		return;
	rc = lease_start(&a->lease, t->signer, h->time_ns, why);
	if (rc) {
		if (refusal_is_new(a, h->height))
			add_error(a, rc, h->height, false, 0,
				  "block %" PRIu64 ": LEASE_START of lease %s refused: %s",
				  h->height, a->lease_hex, why);
		a->replay_broken = true;
		return;
	}
	note_state(a);
}

static void on_close(struct auditor *a, const struct tx *t, const uint8_t *p, size_t n,
		     const struct block_header *h)
{
	char why[WHY_MAX];
	uint64_t refund = 0;
	int rc;

	if (!opened_or_report(a, h->height, "the LEASE_CLOSE"))
		return;
	if (tx_signature_bad(a, t, p, n))
		add_error(a, TALLY_E_SIGNATURE, h->height, false, 0,
			  "block %" PRIu64 ": the signature on LEASE_CLOSE of lease %s does not verify",
			  h->height, a->lease_hex);
	if (a->replay_broken)
		return;
	rc = lease_close(&a->lease, t->signer, t->u.close.reason, h->height, h->time_ns, &refund,
			 why);
	if (rc) {
		if (refusal_is_new(a, h->height))
			add_error(a, rc, h->height, false, 0,
				  "block %" PRIu64 ": LEASE_CLOSE of lease %s refused: %s",
				  h->height, a->lease_hex, why);
		a->replay_broken = true;
		return;
	}
	a->refund = refund;
	note_state(a);
}

/* The hash chain of the lease's records, checked against the highest-seq
 * record seen so far, so that a dropped, swapped or repeated record yields
 * one error where it happens and not a cascade after it. Returns true when
 * the record links. */
static bool check_link(struct auditor *a, const struct audit_record *r)
{
	static const uint8_t zero[HASH_LEN];
	const struct usage_record *u = &r->rec;

	if (!a->have_prev) {
		if (u->seq != 0) {
			add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
				  "usage record seq %" PRIu64 " (block %" PRIu64 "): the lease's "
				  "first record has seq %" PRIu64 ": records 0..%" PRIu64 " are missing",
				  u->seq, r->height, u->seq, u->seq - 1);
			return false;
		}
		if (memcmp(u->prev_hash, zero, HASH_LEN)) {
			add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
				  "usage record seq 0 (block %" PRIu64 "): prev_hash is not zero",
				  r->height);
			return false;
		}
		return true;
	}
	if (u->seq <= a->prev_seq) {
		for (size_t i = 0; i + 1 < a->res.nrecords; i++) {
			const struct audit_record *o = &a->res.records[i];
			if (o->rec.seq != u->seq)
				continue;
			add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
				  "usage record seq %" PRIu64 " (block %" PRIu64 "): duplicate: "
				  "%s record with seq %" PRIu64 " was committed in block %" PRIu64,
				  u->seq, r->height,
				  memcmp(o->hash, r->hash, HASH_LEN) ? "a different" : "the same",
				  u->seq, o->height);
			return false;
		}
		add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
			  "usage record seq %" PRIu64 " (block %" PRIu64 "): out of order: it "
			  "comes after record seq %" PRIu64, u->seq, r->height, a->prev_seq);
		return false;
	}
	if (u->seq != a->prev_seq + 1) {
		uint64_t from = a->prev_seq + 1, to = u->seq - 1;
		if (from == to)
			add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
				  "usage record seq %" PRIu64 " (block %" PRIu64 "): gap: record "
				  "seq %" PRIu64 " is missing", u->seq, r->height, from);
		else
			add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
				  "usage record seq %" PRIu64 " (block %" PRIu64 "): gap: records "
				  "seq %" PRIu64 "..%" PRIu64 " are missing", u->seq, r->height, from, to);
		return false;
	}
	if (memcmp(u->prev_hash, a->prev_hash, HASH_LEN)) {
		add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
			  "usage record seq %" PRIu64 " (block %" PRIu64 "): prev_hash is not the "
			  "hash of record seq %" PRIu64, u->seq, r->height, a->prev_seq);
		return false;
	}
	if (u->start_ns != a->prev_end_ns) {
		add_error(a, TALLY_E_USAGECHAIN, r->height, true, u->seq,
			  "usage record seq %" PRIu64 " (block %" PRIu64 "): starts at %" PRIu64
			  " ns, not where record seq %" PRIu64 " ended (%" PRIu64 " ns)",
			  u->seq, r->height, u->start_ns, a->prev_seq, a->prev_end_ns);
		return false;
	}
	return true;
}

static void replay_usage(struct auditor *a, struct audit_record *r,
			 const uint8_t signer[PUBKEY_LEN])
{
	char why[WHY_MAX];
	uint64_t span;
	int rc;

	if (!a->opened || a->replay_broken) {
		if (a->opened)
			settle_usage(&a->lease.contract, &a->report_carry, &r->rec, &r->charge,
				     &a->report_carry);
		return;
	}
	uint64_t refund = 0;

	rc = lease_apply_usage(&a->lease, signer, &r->rec, r->hash, r->height, r->time_ns,
			       &r->charge, &r->paid, &refund, why);
	if (rc) {
		/* The rule's own error (the chain's), whatever it is. */
		if (refusal_is_new(a, r->height))
			add_error(a, rc, r->height, true, r->rec.seq, "usage record seq %" PRIu64
				  " (block %" PRIu64 "): refused by the contract rules: %s",
				  r->rec.seq, r->height, why);
		a->replay_broken = true;
		return;
	}
	a->report_carry = a->lease.carry;
	if (a->lease.state == LEASE_CLOSED)      /* the escrow ran out, or the last record */
		a->refund = refund;
	span = r->rec.end_ns - r->rec.start_ns;
	a->mem_mib_ns += (unsigned __int128)r->rec.mem_mib * span;
	note_state(a);
}

static void on_usage(struct auditor *a, const struct tx *t, const uint8_t *p, size_t n,
		     const struct block_header *h, uint64_t index, const uint8_t hash[HASH_LEN],
		     const uint8_t leaf[HASH_LEN])
{
	struct audit_record *r = add_record(a);
	uint64_t height = h->height;

	if (!r)
		return;
	r->height = height;
	r->time_ns = h->time_ns;
	r->index = index;
	memcpy(r->hash, hash, HASH_LEN);
	memcpy(r->leaf_hash, leaf, HASH_LEN);
	r->rec = t->u.usage;
	r->signature_ok = !tx_signature_bad(a, t, p, n);
	if (!r->signature_ok)
		add_error(a, TALLY_E_SIGNATURE, height, true, r->rec.seq,
			  "usage record seq %" PRIu64 " (block %" PRIu64 "): the provider's "
			  "signature does not verify", r->rec.seq, height);
	opened_or_report(a, height, "a usage record");
	bool linked = check_link(a, r);
	if (!a->have_prev || r->rec.seq > a->prev_seq) {
		a->have_prev = true;
		a->prev_seq = r->rec.seq;
		memcpy(a->prev_hash, r->hash, HASH_LEN);
		a->prev_end_ns = r->rec.end_ns;
	}
	if (!linked)
		a->replay_broken = true;
	replay_usage(a, r, t->signer);
}

/* A transaction that mentions the lease id but does not decode may be a
 * damaged record of this lease: name it rather than skip it silently. */
static void on_undecodable(struct auditor *a, const uint8_t *p, size_t n, uint64_t height,
			   size_t i, int rc)
{
	if (!memmem(p, n, a->lease_id, LEASE_ID_LEN))
		return;
	add_error(a, rc, height, false, 0,
		  "block %" PRIu64 ": transaction %zu concerns lease %s but does not decode: %s",
		  height, i, a->lease_hex, tally_strerror(rc));
	a->replay_broken = true;
}

static void scan_txs(struct auditor *a, const struct block *b)
{
	const struct block_header *h = &b->header;
	uint8_t hash[HASH_LEN], leaf[HASH_LEN];
	struct tx t;

	for (size_t i = 0; i < b->ntx && !a->nomem; i++) {
		const uint8_t *p = b->txs[i].bytes;
		size_t n = b->txs[i].len;
		int rc = tx_decode(&t, p, n);

		if (rc) {
			on_undecodable(a, p, n, h->height, i, rc);
			continue;
		}
		block_tx_hash(&b->txs[i], hash);
		uint64_t index = a->usage_index;
		if (tx_enters_usage_log(&t)) {
			block_tx_leaf(&b->txs[i], leaf);
			a->usage_index++;
			if (!a->store_err)
				a->store_err = merkle_append(a->store, index, leaf);
		}
		switch (t.kind) {
		case TX_LEASE_OPEN:
			if (!memcmp(hash, a->lease_id, LEASE_ID_LEN))
				on_open(a, &t, p, n, h);
			break;
		case TX_LEASE_START:
			if (!memcmp(t.u.start.lease_id, a->lease_id, LEASE_ID_LEN))
				on_start(a, &t, p, n, h);
			break;
		case TX_USAGE:
			if (!memcmp(t.u.usage.lease_id, a->lease_id, LEASE_ID_LEN))
				on_usage(a, &t, p, n, h, index, hash, leaf);
			break;
		case TX_LEASE_CLOSE:
			if (!memcmp(t.u.close.lease_id, a->lease_id, LEASE_ID_LEN))
				on_close(a, &t, p, n, h);
			break;
		default:
			break;
		}
	}
}

int auditor_set_claim(struct auditor *a, uint64_t height, const struct state_proof *proof,
		      char *why)
{
	struct lease l;
	int rc = state_proof_lease_value(proof, a->lease_id, &l, why);

	if (rc)
		return rc;
	a->have_settled = true;
	a->settled = l;
	a->claim_proof = proof;
	a->claim_height = height;
	return 0;
}

/* The block the claim names: its proof must lead to this block's state
 * root, and the lease recomputed so far is what the claim is compared
 * with. */
static void check_claim(struct auditor *a, const struct block_header *h)
{
	char why[WHY_MAX];
	struct lease proven;
	int rc;

	a->claim_seen = true;
	if (a->chain_broken) {
		add_error(a, TALLY_E_STATEROOT, h->height, false, 0,
			  "block %" PRIu64 ": the state claimed for lease %s at this block is not"
			  " proven: the chain verifies only to block %" PRIu64, h->height,
			  a->lease_hex, a->v->height);
		return;
	}
	rc = state_proof_lease(a->claim_proof, a->lease_id, h->state_root, &proven, why);
	if (rc) {
		add_error(a, rc, h->height, false, 0,
			  "block %" PRIu64 ": lease %s: the claimed state (%s, charged %" PRIu64
			  ", escrow %" PRIu64 ") is not what the chain committed: %s", h->height,
			  a->lease_hex, lease_state_name(a->settled.state), a->settled.charged,
			  a->settled.escrow, why);
		return;
	}
	if (a->opened && !a->replay_broken) {
		a->match = a->lease;
		a->have_match = true;
	}
}

int auditor_add_block(struct auditor *a, const struct block *b, const struct commit_cert *cert,
		      const struct validator_set *next_vals)
{
	char why[WHY_MAX];

	a->blocks_seen++;
	a->block_verified = false;
	if (!a->chain_broken) {
		int rc = a->full ? replay_block(&a->rp, b, cert, next_vals, NULL, why)
				 : chain_verify_block(&a->cv, b, cert, next_vals, why);
		a->block_verified = rc == 0;
		if (rc) {
			add_error(a, rc, b->header.height, false, 0, "%s",
				  why[0] ? why : tally_strerror(rc));
			a->chain_broken = true;
			a->failed_height = b->header.height;
			/* A block whose transactions do not apply had its
			 * signatures and certificate checked all the same. */
			a->block_verified = a->full && a->rp.signed_ok;
		}
	}
	scan_txs(a, b);
	if (a->claim_proof && b->header.height == a->claim_height)
		check_claim(a, &b->header);
	return a->nomem ? TALLY_E_NOMEM : 0;
}

/* --- finish -------------------------------------------------------------- */

static int own_proof(void *ctx, uint64_t index, uint64_t size, uint8_t proof[][HASH_LEN],
		     size_t *n, char *why)
{
	struct auditor *a = ctx;
	int rc;

	if (a->store_err) {
		snprintf(why, WHY_MAX, "the usage log could not be rebuilt: %s",
			 tally_strerror(a->store_err));
		return a->store_err;
	}
	rc = merkle_inclusion_proof(a->store, index, size, proof, n);
	if (rc)
		snprintf(why, WHY_MAX, "no proof from the blocks given: %s", tally_strerror(rc));
	return rc;
}

/* "seq 2, 3, 5" for up to eight records, then "and N more". */
static void append_seq(char *list, size_t cap, uint64_t count, uint64_t seq)
{
	size_t used = strlen(list);

	if (count > 8) {
		if (count == 9)
			snprintf(list + used, cap - used, ", ...");
		return;
	}
	snprintf(list + used, cap - used, "%s%" PRIu64, count > 1 ? ", " : "", seq);
}

static void prove_records(struct auditor *a, audit_proof_fn fn, void *ctx)
{
	uint8_t proof[MERKLE_MAX_PROOF][HASH_LEN], root[HASH_LEN];
	uint64_t size = a->v->usage.size, first = 0, nunproven = 0;
	char why[WHY_MAX], list[200] = "";

	merkle_frontier_root(&a->v->usage, root);
	for (size_t i = 0; i < a->res.nrecords; i++) {
		struct audit_record *r = &a->res.records[i];
		size_t n = 0;
		int rc;

		if (r->height > a->v->height || r->index >= size) {
			if (!nunproven++)
				first = r->rec.seq;
			append_seq(list, sizeof(list), nunproven, r->rec.seq);
			continue;
		}
		why[0] = 0;
		rc = fn(ctx, r->index, size, proof, &n, why);
		if (rc) {
			add_error(a, TALLY_E_PROOF_ROOT, r->height, true, r->rec.seq,
				  "usage record seq %" PRIu64 " (block %" PRIu64 "): no inclusion "
				  "proof for log index %" PRIu64 ": %s", r->rec.seq, r->height,
				  r->index, why[0] ? why : tally_strerror(rc));
			continue;
		}
		/* The leaf hash comes from the record's own bytes, which the
		 * auditor holds: a proof fetched from a node proves nothing
		 * about a leaf the node chose. */
		rc = merkle_inclusion_verify(r->index, size, r->leaf_hash, proof, n, root);
		if (rc) {
			add_error(a, rc, r->height, true, r->rec.seq,
				  "usage record seq %" PRIu64 " (block %" PRIu64 "): inclusion "
				  "proof at log index %" PRIu64 " against block %" PRIu64 " fails: %s",
				  r->rec.seq, r->height, r->index, a->v->height, tally_strerror(rc));
			continue;
		}
		r->proven = true;
	}
	if (nunproven)
		add_error(a, TALLY_E_PROOF_INDEX, a->v->height + 1, true, first,
			  "%" PRIu64 " usage record(s) (seq %s) lie in blocks after the last "
			  "verified block %" PRIu64 " and are not proven",
			  nunproven, list, a->v->height);
}

#define CMP_FIELD(field, label) do { \
		if (s->field != l->field) \
			add_error(a, TALLY_E_BILL, height, false, 0, \
				  "settlement of lease %s: %s is %" PRIu64 " on the node, the " \
				  "chain's records give %" PRIu64, a->lease_hex, label, \
				  (uint64_t)s->field, (uint64_t)l->field); \
	} while (0)

static void compare_settlement(struct auditor *a)
{
	const struct lease *s = &a->settled, *l;
	uint64_t height;

	if (!a->have_settled || !a->opened || a->replay_broken)
		return;
	if (a->claim_proof) {
		if (!a->have_match)
			return;      /* check_claim or auditor_finish said why */
		l = &a->match;
	} else if (s->state == LEASE_CLOSED) {
		l = &a->lease;
	} else if (a->have_match) {
		l = &a->match;
	} else {
		add_error(a, TALLY_E_BILL, 0, false, 0,
			  "settlement of lease %s: the node says it is %s with %" PRIu64 " records; "
			  "the chain has it %s with %" PRIu64, a->lease_hex,
			  lease_state_name(s->state), s->next_seq,
			  lease_state_name(a->lease.state), a->lease.next_seq);
		return;
	}
	height = a->claim_proof ? a->claim_height : l->closed_height;
	a->res.compared = true;
	size_t before = a->res.nerrors + a->res.errors_dropped;
	if (s->state != l->state || s->close_reason != l->close_reason) {
		add_error(a, TALLY_E_BILL, height, false, 0,
			  "settlement of lease %s: the node says %s (%s), the chain gives %s (%s)",
			  a->lease_hex, lease_state_name(s->state),
			  lease_close_reason_name(s->close_reason), lease_state_name(l->state),
			  lease_close_reason_name(l->close_reason));
	}
	CMP_FIELD(next_seq, "the number of records");
	CMP_FIELD(charged, "the amount charged");
	CMP_FIELD(sla_credits, "the SLA credit");
	CMP_FIELD(escrow, "the escrow");
	CMP_FIELD(cpu_ns, "cpu_ns");
	CMP_FIELD(run_delay_ns, "run_delay_ns");
	CMP_FIELD(gpu_ns, "gpu_ns");
	/* What the lease owes below a micro-unit is billed by its next
	 * records: a claim that differs here bills them differently. */
	CMP_FIELD(carry.cpu, "carry_cpu");
	CMP_FIELD(carry.mem, "carry_mem");
	CMP_FIELD(carry.gpu, "carry_gpu");
	CMP_FIELD(carry.credit, "carry_credit");
	if (s->state == LEASE_CLOSED && s->contract.deposit - s->charged != a->refund)
		add_error(a, TALLY_E_BILL, height, false, 0,
			  "settlement of lease %s: the node refunded %" PRIu64 ", the chain's "
			  "records give %" PRIu64, a->lease_hex,
			  s->contract.deposit - s->charged, a->refund);
	if (a->claim_proof && a->res.nerrors + a->res.errors_dropped == before &&
	    !lease_same(s, l))
		add_error(a, TALLY_E_BILL, height, false, 0,
			  "settlement of lease %s: the state the chain committed at block %" PRIu64
			  " is not the one its records give", a->lease_hex, height);
}

int auditor_finish(struct auditor *a, audit_proof_fn proof_fn, void *proof_ctx,
		   struct audit_result *out)
{
	struct audit_result *r = &a->res;

	prove_records(a, proof_fn ? proof_fn : own_proof, proof_fn ? proof_ctx : a);
	if (a->claim_proof && !a->claim_seen)
		add_error(a, TALLY_E_HEIGHT, a->claim_height, false, 0,
			  "block %" PRIu64 ": the state claimed for lease %s is of a block the audit"
			  " was not given (it verified up to block %" PRIu64 ")",
			  a->claim_height, a->lease_hex, a->v->height);
	if (!a->opened && !a->missing_open_reported)
		add_error(a, TALLY_E_NOTFOUND, 0, false, 0,
			  "lease %s: its LEASE_OPEN is in none of the %" PRIu64 " blocks audited",
			  a->lease_hex, a->blocks_seen);
	compare_settlement(a);
	memcpy(r->genesis_hash, a->v->genesis_hash, HASH_LEN);
	r->replayed_state = a->full && !a->chain_broken;
	r->verified_height = a->v->height;
	memcpy(r->verified_block_id, a->v->last_block_id, HASH_LEN);
	r->blocks_seen = a->blocks_seen;
	r->usage_size = a->v->usage.size;
	merkle_frontier_root(&a->v->usage, r->usage_root);
	r->lease_found = a->opened;
	r->replayed = a->opened && !a->replay_broken;
	r->lease = a->lease;
	r->refund = a->refund;
	r->mem_mib_s = (uint64_t)(a->mem_mib_ns / NS_PER_S);
	r->verified = r->nerrors == 0 && r->errors_dropped == 0 && !a->nomem;
	*out = *r;
	memset(r, 0, sizeof(*r));
	a->rec_cap = a->err_cap = 0;
	return a->nomem ? TALLY_E_NOMEM : 0;
}

int audit_run(const struct audit_input *in, struct audit_result *out, char *why)
{
	struct auditor *a;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = auditor_new(&a, in->genesis, in->checkpoint, in->pinned_id, in->lease_id,
			 in->settled, why);
	if (rc)
		return rc;
	if (in->settled_proof) {
		rc = auditor_set_claim(a, in->settled_height, in->settled_proof, why);
		if (rc) {
			auditor_free(a);
			return rc;
		}
	}
	for (size_t i = 0; i < in->nblocks && !rc; i++)
		rc = auditor_add_block(a, in->blocks[i].block, in->blocks[i].cert,
				       in->blocks[i].next_vals);
	if (!rc)
		rc = auditor_finish(a, in->proof_fn, in->proof_ctx, out);
	if (rc)
		snprintf(why, WHY_MAX, "audit: %s", tally_strerror(rc));
	auditor_free(a);
	return rc;
}
