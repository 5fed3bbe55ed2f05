/* The mempool (see mempool.h).
 *
 * A uthash table indexes the entries by tx hash, hashed with the
 * per-process keyed hash (lib/table.h): a submitter can grind transaction
 * hashes, so their bytes alone must not choose the bucket. A doubly linked
 * list keeps arrival order.
 *
 * Held transactions live apart from the queue: in a table by (signer,
 * nonce), which finds the one that follows a queued transaction, in a table
 * by hash, and in a list in arrival order, which the expiry walks. Each
 * account that holds some has a held_acct: its held transactions in a heap
 * by nonce, and itself in the pool's heap of accounts by how many they
 * hold (lib/maxheap.h), so that a full hold finds the account holding most
 * and its highest nonce in O(1), and every change costs O(log n).
 *
 * Neither keeps the decoded transaction: a transaction applied again is
 * decoded into the pool's one scratch struct tx (the caller's lock covers
 * it), so an entry costs its bytes and a few fields, not kilobytes. */
#include "daemon/ledger/mempool.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/memstate.h"
#include "lib/errors.h"
#include "lib/maxheap.h"
#include "lib/table.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* An account's held transactions (while it has at least one). */
struct held_acct {
	uint8_t signer[PUBKEY_LEN];
	struct maxheap nonces;           /* its held_tx by nonce */
	struct maxheap_node by_count;    /* in the pool's accts; key: nonces.n */
	int oom;
	UT_hash_handle hh;               /* by signer */
};

struct held_tx {
	struct held_tx *next, *prev;     /* arrival order */
	struct held_acct *acct;
	struct maxheap_node by_nonce;    /* in acct->nonces; key: nonce */
	uint8_t key[PUBKEY_LEN + 8];     /* signer || nonce (big-endian) */
	uint8_t hash[HASH_LEN];
	uint8_t signer[PUBKEY_LEN];
	uint64_t nonce;
	uint8_t *bytes;                  /* as signed; they passed tx_check() */
	size_t len;
	uint64_t since_ns;               /* block time when it arrived */
	int oom;
	UT_hash_handle hh;               /* by key */
	UT_hash_handle hh_hash;          /* by hash */
};

struct mempool {
	size_t max;
	/* Read without the caller's lock by mempool_size (the consensus
	 * engine asks whether a block is worth making). */
	_Atomic size_t n;
	struct mempool_hold hold;
	struct held_tx *held_by_key, *held_by_hash, *held_head, *held_tail;
	size_t nheld;
	struct held_acct *held_accts;    /* by signer */
	struct maxheap accts;            /* held_acct by how many they hold */
	uint64_t held_dropped;
	void (*entered)(void *ctx, const struct mempool_entry *e);
	void (*on_held_dropped)(void *ctx, const uint8_t hash[HASH_LEN], const char *why);
	void *hook_ctx;
	struct mempool_entry *head, *tail;
	struct mempool_entry *by_hash;   /* uthash table, keyed by tx hash */
	struct state *committed;
	struct memstate *pending;        /* the check state's entries */
	struct state check;              /* committed + pending */
	struct tx *scratch;              /* a transaction decoded to apply it again */
};

/* A check state with nothing pending. */
static int check_reset(struct mempool *m)
{
	struct state_backend below = m->committed->be, be;
	struct memstate *ms = memstate_new_overlay(&below);

	if (!ms)
		return TALLY_E_NOMEM;
	memstate_free(m->pending);
	m->pending = ms;
	be = memstate_backend(ms);
	state_open_scratch(&m->check, &be, m->committed->usage_size);
	return 0;
}

struct mempool *mempool_new(size_t max, struct state *committed)
{
	struct mempool *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->max = max;
	m->committed = committed;
	m->scratch = malloc(sizeof(*m->scratch));
	m->hold = (struct mempool_hold){ MEMPOOL_HOLD_AHEAD, MEMPOOL_HOLD_MAX,
					 MEMPOOL_HOLD_TIMEOUT_NS };
	if (!m->scratch || check_reset(m)) {
		mempool_free(m);
		return NULL;
	}
	return m;
}

void mempool_free(struct mempool *m)
{
	struct mempool_entry *e, *next;

	if (!m)
		return;
	/* The tables live in the entries' handles: clear them before they go. */
	HASH_CLEAR(hh, m->by_hash);
	HASH_CLEAR(hh, m->held_by_key);
	HASH_CLEAR(hh_hash, m->held_by_hash);
	for (struct held_acct *a = m->held_accts, *an; a; a = an) {
		an = a->hh.next;
		HASH_DELETE(hh, m->held_accts, a);
		maxheap_free(&a->nonces);
		free(a);
	}
	maxheap_free(&m->accts);
	for (struct held_tx *h = m->held_head, *hn; h; h = hn) {
		hn = h->next;
		free(h->bytes);
		free(h);
	}
	for (e = m->head; e; e = next) {
		next = e->next;
		free(e->bytes);
		free(e);
	}
	memstate_free(m->pending);
	free(m->scratch);
	free(m);
}

void mempool_set_hold(struct mempool *m, const struct mempool_hold *h)
{
	m->hold = *h;
}

void mempool_set_hooks(struct mempool *m,
		       void (*entered)(void *ctx, const struct mempool_entry *e),
		       void (*held_dropped)(void *ctx, const uint8_t hash[HASH_LEN], const char *why),
		       void *ctx)
{
	m->entered = entered;
	m->on_held_dropped = held_dropped;
	m->hook_ctx = ctx;
}

size_t mempool_size(const struct mempool *m)
{
	return m->n;
}

size_t mempool_held(const struct mempool *m)
{
	return m->nheld;
}

uint64_t mempool_held_dropped(const struct mempool *m)
{
	return m->held_dropped;
}

static struct held_tx *held_find_hash(const struct mempool *m, const uint8_t hash[HASH_LEN])
{
	struct held_tx *h;

	HASH_FIND(hh_hash, m->held_by_hash, hash, HASH_LEN, h);
	return h;
}

bool mempool_is_held(const struct mempool *m, const uint8_t hash[HASH_LEN])
{
	return held_find_hash(m, hash) != NULL;
}

static void held_key(uint8_t key[PUBKEY_LEN + 8], const uint8_t pub[PUBKEY_LEN], uint64_t nonce)
{
	memcpy(key, pub, PUBKEY_LEN);
	for (int i = 0; i < 8; i++)
		key[PUBKEY_LEN + i] = (uint8_t)(nonce >> (56 - 8 * i));
}

static struct held_tx *held_find(const struct mempool *m, const uint8_t pub[PUBKEY_LEN],
				 uint64_t nonce)
{
	uint8_t key[PUBKEY_LEN + 8];
	struct held_tx *h;

	held_key(key, pub, nonce);
	HASH_FIND(hh, m->held_by_key, key, sizeof(key), h);
	return h;
}

static struct held_acct *acct_find(const struct mempool *m, const uint8_t pub[PUBKEY_LEN])
{
	struct held_acct *a;

	HASH_FIND(hh, m->held_accts, pub, PUBKEY_LEN, a);
	return a;
}

/* Forgets a, which holds nothing (any more). */
static void acct_free(struct mempool *m, struct held_acct *a)
{
	maxheap_remove(&m->accts, &a->by_count);
	HASH_DELETE(hh, m->held_accts, a);
	maxheap_free(&a->nonces);
	free(a);
}

/* Files h under its signer's held_acct, made when it is the first: 0 or
 * TALLY_E_NOMEM, with nothing changed. */
static int acct_put(struct mempool *m, struct held_tx *h)
{
	struct held_acct *a = acct_find(m, h->signer);
	int rc;

	if (!a) {
		if (!(a = calloc(1, sizeof(*a))))
			return TALLY_E_NOMEM;
		memcpy(a->signer, h->signer, PUBKEY_LEN);
		HASH_ADD(hh, m->held_accts, signer, PUBKEY_LEN, a);
		if (a->oom) {
			free(a);
			return TALLY_E_NOMEM;
		}
		if (maxheap_push(&m->accts, &a->by_count)) {
			HASH_DELETE(hh, m->held_accts, a);
			free(a);
			return TALLY_E_NOMEM;
		}
	}
	h->by_nonce.key = h->nonce;
	if ((rc = maxheap_push(&a->nonces, &h->by_nonce))) {
		if (!a->nonces.n)
			acct_free(m, a);
		return rc;
	}
	h->acct = a;
	a->by_count.key = a->nonces.n;
	maxheap_update(&m->accts, &a->by_count);
	return 0;
}

/* Takes h out of its account's heap (and the account out of the pool's,
 * when that was its last). */
static void acct_take(struct mempool *m, struct held_tx *h)
{
	struct held_acct *a = h->acct;

	maxheap_remove(&a->nonces, &h->by_nonce);
	if (!a->nonces.n) {
		acct_free(m, a);
		return;
	}
	a->by_count.key = a->nonces.n;
	maxheap_update(&m->accts, &a->by_count);
}

/* Takes h out of the held set; the caller frees it or queues its bytes. */
static void held_unlink(struct mempool *m, struct held_tx *h)
{
	if (h->prev)
		h->prev->next = h->next;
	else
		m->held_head = h->next;
	if (h->next)
		h->next->prev = h->prev;
	else
		m->held_tail = h->prev;
	HASH_DELETE(hh, m->held_by_key, h);
	HASH_DELETE(hh_hash, m->held_by_hash, h);
	m->nheld--;
	acct_take(m, h);
}

static void held_drop(struct mempool *m, struct held_tx *h, const char *why)
{
	held_unlink(m, h);
	m->held_dropped++;
	if (m->on_held_dropped)
		m->on_held_dropped(m->hook_ctx, h->hash, why);
	free(h->bytes);
	free(h);
}

const struct mempool_entry *mempool_first(const struct mempool *m)
{
	return m->head;
}

const struct mempool_entry *mempool_next(const struct mempool_entry *e)
{
	return e->next;
}

int mempool_each(const struct mempool *m,
		 int (*fn)(void *ctx, const uint8_t *bytes, size_t len), void *ctx)
{
	int rc = 0;

	for (const struct mempool_entry *e = m->head; e && !rc; e = e->next)
		rc = fn(ctx, e->bytes, e->len);
	for (const struct held_tx *h = m->held_head; h && !rc; h = h->next)
		rc = fn(ctx, h->bytes, h->len);
	return rc;
}

int mempool_tx_decode(struct tx *t, const uint8_t *bytes, size_t len, char *why)
{
	int rc = tx_decode(t, bytes, len);

	if (rc)
		return why_set(why, rc, "its bytes no longer decode: %s", tally_strerror(rc));
	return 0;
}

int mempool_entry_apply(const struct mempool_entry *e, struct state *s,
			const struct block_ctx *bc, struct tx *scratch, char *why)
{
	int rc = mempool_tx_decode(scratch, e->bytes, e->len, why);

	if (rc)
		return rc;
	return state_apply_tx(s, bc, scratch, e->bytes, e->len, e->hash, NULL, why);
}

const struct mempool_entry *mempool_find(const struct mempool *m, const uint8_t hash[HASH_LEN])
{
	struct mempool_entry *e;

	HASH_FIND(hh, m->by_hash, hash, HASH_LEN, e);
	return e;
}

int mempool_next_nonce(struct mempool *m, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce)
{
	struct account a;
	int rc = state_account_get(&m->check, pub, &a);

	*nonce = a.nonce;
	return rc == TALLY_E_NOTFOUND ? 0 : rc;
}

static void unlink_entry(struct mempool *m, struct mempool_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		m->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		m->tail = e->prev;
	if (!e->oom)
		HASH_DELETE(hh, m->by_hash, e);
	m->n--;
	free(e->bytes);
	free(e);
}

/* Applies t and queues it with its bytes, which are taken over (freed on
 * failure). t may be the pool's scratch: it is not read after the apply. */
static int queue_tx(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		    uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], char *why)
{
	struct mempool_entry *e;
	int rc;

	if (m->n >= m->max) {
		free(bytes);
		return why_set(why, TALLY_E_CAPACITY, "the mempool is full (%zu transactions);"
			       " try again after the next block", m->n);
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		free(bytes);
		return TALLY_E_NOMEM;
	}
	/* A refused transaction writes nothing, so the check state stays as
	 * it was; after a store failure it is unknown, so it is rebuilt. */
	rc = state_apply_tx(&m->check, bc, t, bytes, len, hash, NULL, why);
	if (rc) {
		free(bytes);
		free(e);
		if (state_err_is_fatal(rc))
			mempool_recheck(m, bc, NULL, NULL);
		return rc;
	}
	memcpy(e->hash, hash, HASH_LEN);
	e->kind = t->kind;
	memcpy(e->signer, t->signer, PUBKEY_LEN);
	e->nonce = t->nonce;
	e->bytes = bytes;
	e->len = len;
	e->prev = m->tail;
	if (m->tail)
		m->tail->next = e;
	else
		m->head = e;
	m->tail = e;
	m->n++;
	e->oom = 0;
	HASH_ADD(hh, m->by_hash, hash, HASH_LEN, e);
	if (e->oom) {
		unlink_entry(m, e);
		return TALLY_E_NOMEM;
	}
	if (m->entered)
		m->entered(m->hook_ctx, e);
	return 0;
}

/* The held transactions of pub that follow its next nonce, in order, until
 * a gap; one that no longer applies is dropped, and its successors wait
 * (for their own expiry, or for another transaction with its nonce). */
static void promote(struct mempool *m, const struct block_ctx *bc, const uint8_t pub[PUBKEY_LEN])
{
	char why[WHY_MAX], line[WHY_MAX + 64];
	uint64_t next;
	struct held_tx *h;

	while (mempool_next_nonce(m, pub, &next) == 0 && (h = held_find(m, pub, next))) {
		uint8_t hash[HASH_LEN];
		uint8_t *bytes = h->bytes;
		size_t len = h->len;
		int rc;

		memcpy(hash, h->hash, HASH_LEN);
		held_unlink(m, h);
		free(h);
		rc = mempool_tx_decode(m->scratch, bytes, len, why);
		if (rc)
			free(bytes);
		else
			rc = queue_tx(m, bc, m->scratch, bytes, len, hash, why);
		if (rc == 0)
			continue;
		snprintf(line, sizeof(line), "held until its nonce's turn, then refused: %s", why);
		m->held_dropped++;
		if (m->on_held_dropped)
			m->on_held_dropped(m->hook_ctx, hash, line);
		break;
	}
}

/* Whether the chain knows the account a was read for (from the check
 * state, so pending transactions count): it has a balance, has used a
 * nonce, or has a validator entry (a genesis validator may have stake and
 * nothing else; a provider's entry came with a nonce). A key that has none
 * of these has nothing on the chain, and costs nothing to make: holding
 * its early transactions would let anyone fill the hold with fresh keys. */
static int account_known(struct mempool *m, const uint8_t pub[PUBKEY_LEN],
			 const struct account *a, bool *known)
{
	struct validator_entry v;
	int rc;

	*known = a->balance > 0 || a->nonce > 0;
	if (*known)
		return 0;
	rc = state_validator_get(&m->check, pub, &v);
	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	*known = rc == 0;
	return 0;
}

/* The hold is full: t may take the place of the highest nonce held by the
 * account that holds most, when t's account holds fewer (so no few
 * accounts keep the others out: they lose their furthest transactions
 * first, those that wait longest); 0 when it did, TALLY_E_CAPACITY with
 * why when not. */
static int hold_evict(struct mempool *m, const struct tx *t, char *why)
{
	char line[WHY_MAX];
	struct held_acct *mine = acct_find(m, t->signer), *most;
	struct maxheap_node *top = maxheap_top(&m->accts);
	size_t have = mine ? mine->nonces.n : 0;
	struct held_tx *victim;

	/* One drop makes room unless the pool is fuller than that (the queue
	 * grew past it meanwhile). */
	if (!top || m->nheld > m->hold.max || m->n + m->nheld > m->max)
		return why_set(why, TALLY_E_CAPACITY, "nonce %" PRIu64 " leaves a gap and the"
			       " node holds no more early transactions (%zu held, %zu pending);"
			       " send the missing ones first", t->nonce, m->nheld, m->n);
	most = container_of(top, struct held_acct, by_count);
	if (most->nonces.n <= have)
		return why_set(why, TALLY_E_CAPACITY, "nonce %" PRIu64 " leaves a gap and the"
			       " node holds no more early transactions (%zu held, %zu pending;"
			       " this account holds %zu of them, and no account more); send the"
			       " missing ones first", t->nonce, m->nheld, m->n, have);
	victim = container_of(maxheap_top(&most->nonces), struct held_tx, by_nonce);
	snprintf(line, sizeof(line), "held for nonce %" PRIu64 ", evicted: the node's held"
		 " transactions were full (%zu) and this account held %zu of them, the most"
		 " of any, so its highest nonce made room for another account's",
		 victim->nonce, m->nheld, most->nonces.n);
	held_drop(m, victim, line);
	return 0;
}

static int hold_tx(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		   const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], char *why)
{
	struct held_tx *h;
	int rc;

	if ((m->nheld >= m->hold.max || m->n + m->nheld >= m->max) &&
	    (rc = hold_evict(m, t, why)))
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h || !(h->bytes = malloc(len))) {
		free(h);
		return TALLY_E_NOMEM;
	}
	held_key(h->key, t->signer, t->nonce);
	memcpy(h->hash, hash, HASH_LEN);
	memcpy(h->signer, t->signer, PUBKEY_LEN);
	h->nonce = t->nonce;
	memcpy(h->bytes, bytes, len);
	h->len = len;
	h->since_ns = bc->time_ns;
	h->oom = 0;
	HASH_ADD(hh, m->held_by_key, key, sizeof(h->key), h);
	if (h->oom) {
		free(h->bytes);
		free(h);
		return TALLY_E_NOMEM;
	}
	HASH_ADD(hh_hash, m->held_by_hash, hash, HASH_LEN, h);
	if (h->oom || acct_put(m, h)) {
		HASH_DELETE(hh, m->held_by_key, h);
		if (!h->oom)
			HASH_DELETE(hh_hash, m->held_by_hash, h);
		free(h->bytes);
		free(h);
		return TALLY_E_NOMEM;
	}
	h->prev = m->held_tail;
	if (m->held_tail)
		m->held_tail->next = h;
	else
		m->held_head = h;
	m->held_tail = h;
	m->nheld++;
	return 0;
}

int mempool_add(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], bool *held,
		char *why)
{
	char hex[2 * HASH_LEN + 1];
	struct account acct;
	struct held_tx *h;
	uint8_t *copy;
	bool known;
	int rc;

	why[0] = '\0';
	if (held)
		*held = false;
	if (mempool_find(m, hash)) {
		hex_encode(hash, HASH_LEN, hex);
		return why_set(why, TALLY_E_REPLAY, "transaction %s is already pending", hex);
	}
	if (held_find_hash(m, hash)) {
		hex_encode(hash, HASH_LEN, hex);
		return why_set(why, TALLY_E_REPLAY, "transaction %s is already held (waiting for"
			       " an earlier nonce of its account)", hex);
	}
	rc = state_account_get(&m->check, t->signer, &acct);
	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	if (t->nonce > acct.nonce && t->nonce - acct.nonce <= m->hold.ahead) {
		if ((h = held_find(m, t->signer, t->nonce)))
			return why_set(why, TALLY_E_REPLAY, "nonce %" PRIu64 " is already held for"
				       " another transaction of this account", t->nonce);
		if ((rc = account_known(m, t->signer, &acct, &known)))
			return rc;
		if (!known)
			return why_set(why, TALLY_E_NONCE, "nonce %" PRIu64 " leaves a gap (next"
				       " nonce %" PRIu64 "), and the chain knows nothing of this"
				       " account (no balance, no nonce used, no stake), so nothing"
				       " is held for it: send nonce %" PRIu64 " first",
				       t->nonce, acct.nonce, acct.nonce);
		if ((rc = hold_tx(m, bc, t, bytes, len, hash, why)))
			return rc;
		if (held)
			*held = true;
		return 0;
	}
	if (m->n >= m->max)
		return why_set(why, TALLY_E_CAPACITY, "the mempool is full (%zu transactions);"
			       " try again after the next block", m->n);
	copy = malloc(len);
	if (!copy)
		return TALLY_E_NOMEM;
	memcpy(copy, bytes, len);
	if ((rc = queue_tx(m, bc, t, copy, len, hash, why)))
		return rc;
	promote(m, bc, t->signer);
	return 0;
}

void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN])
{
	struct mempool_entry *e = (struct mempool_entry *)mempool_find(m, hash);
	struct held_tx *h;

	if (e) {
		unlink_entry(m, e);
		return;
	}
	/* A transaction held here for its gap may be committed by a block
	 * another node built (it had the whole sequence): it is no drop. */
	if ((h = held_find_hash(m, hash))) {
		held_unlink(m, h);
		free(h->bytes);
		free(h);
	}
}

/* Held transactions after a block: those whose nonce was used meanwhile, or
 * whose gap outlived the timeout, go; those whose turn came are queued. */
static void recheck_held(struct mempool *m, const struct block_ctx *bc)
{
	char why[WHY_MAX];
	struct held_tx *h, *hn;
	uint64_t next;

	for (h = m->held_head; h; h = hn) {
		hn = h->next;
		if (mempool_next_nonce(m, h->signer, &next))
			return;
		if (h->nonce < next) {
			snprintf(why, sizeof(why), "held for nonce %" PRIu64 ", which another"
				 " transaction of the account used", h->nonce);
			held_drop(m, h, why);
		} else if (bc->time_ns > h->since_ns &&
			   bc->time_ns - h->since_ns > m->hold.timeout_ns) {
			snprintf(why, sizeof(why), "held for nonce %" PRIu64 " for more than %" PRIu64
				 " s, and the account's nonce %" PRIu64 " never arrived",
				 h->nonce, (uint64_t)(m->hold.timeout_ns / 1000000000ull), next);
			held_drop(m, h, why);
		}
	}
	/* Promotion takes only the account's own entries out of the list: go
	 * on from the first entry of another account after h. */
	for (h = m->held_head; h; h = hn) {
		uint8_t pub[PUBKEY_LEN];

		if (mempool_next_nonce(m, h->signer, &next))
			return;
		hn = h->next;
		if (h->nonce != next)
			continue;
		memcpy(pub, h->signer, PUBKEY_LEN);
		while (hn && !memcmp(hn->signer, pub, PUBKEY_LEN))
			hn = hn->next;
		promote(m, bc, pub);
	}
}

long mempool_recheck(struct mempool *m, const struct block_ctx *bc,
		     void (*dropped)(void *ctx, const struct mempool_entry *e, const char *why),
		     void *ctx)
{
	struct mempool_entry *e, *next;
	char why[WHY_MAX];
	long ndropped = 0;
	int rc = check_reset(m);

	if (rc)
		return -rc;
	for (e = m->head; e; e = next) {
		next = e->next;
		rc = mempool_entry_apply(e, &m->check, bc, m->scratch, why);
		if (state_err_is_fatal(rc))
			return -rc;
		if (rc) {
			if (dropped)
				dropped(ctx, e, why);
			unlink_entry(m, e);
			ndropped++;
		}
	}
	recheck_held(m, bc);
	return ndropped;
}
