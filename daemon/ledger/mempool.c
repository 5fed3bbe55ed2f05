/* The mempool (see mempool.h).
 *
 * A uthash table indexes the entries by tx hash, hashed with the
 * per-process keyed hash (lib/table.h): a submitter can grind transaction
 * hashes, so their bytes alone must not choose the bucket. A doubly linked
 * list keeps arrival order. */
#include "daemon/ledger/mempool.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/memstate.h"
#include "lib/errors.h"
#include "lib/table.h"

struct mempool {
	size_t max, n;
	struct mempool_entry *head, *tail;
	struct mempool_entry *by_hash;   /* uthash table, keyed by tx hash */
	struct state *committed;
	struct memstate *pending;        /* the check state's entries */
	struct state check;              /* committed + pending */
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
	if (check_reset(m)) {
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
	/* The table lives in the entries' handles: clear it before they go. */
	HASH_CLEAR(hh, m->by_hash);
	for (e = m->head; e; e = next) {
		next = e->next;
		free(e->bytes);
		free(e);
	}
	memstate_free(m->pending);
	free(m);
}

size_t mempool_size(const struct mempool *m)
{
	return m->n;
}

const struct mempool_entry *mempool_first(const struct mempool *m)
{
	return m->head;
}

const struct mempool_entry *mempool_next(const struct mempool_entry *e)
{
	return e->next;
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

int mempool_add(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], char *why)
{
	struct mempool_entry *e;
	char hex[2 * HASH_LEN + 1];
	int rc;

	why[0] = '\0';
	if (mempool_find(m, hash)) {
		hex_encode(hash, HASH_LEN, hex);
		return why_set(why, TALLY_E_REPLAY, "transaction %s is already pending", hex);
	}
	if (m->n >= m->max)
		return why_set(why, TALLY_E_CAPACITY, "the mempool is full (%zu transactions);"
			       " try again after the next block", m->n);
	e = calloc(1, sizeof(*e));
	if (!e || !(e->bytes = malloc(len))) {
		free(e);
		return TALLY_E_NOMEM;
	}
	/* A refused transaction writes nothing, so the check state stays as
	 * it was; after a store failure it is unknown, so it is rebuilt. */
	rc = state_apply_tx(&m->check, bc, t, bytes, len, hash, NULL, why);
	if (rc) {
		free(e->bytes);
		free(e);
		if (state_err_is_fatal(rc))
			mempool_recheck(m, bc, NULL, NULL);
		return rc;
	}
	memcpy(e->hash, hash, HASH_LEN);
	e->tx = *t;
	memcpy(e->bytes, bytes, len);
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
	return 0;
}


void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN])
{
	struct mempool_entry *e = (struct mempool_entry *)mempool_find(m, hash);

	if (e)
		unlink_entry(m, e);
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
		rc = state_apply_tx(&m->check, bc, &e->tx, e->bytes, e->len, e->hash, NULL, why);
		if (state_err_is_fatal(rc))
			return -rc;
		if (rc) {
			if (dropped)
				dropped(ctx, e, why);
			unlink_entry(m, e);
			ndropped++;
		}
	}
	return ndropped;
}
