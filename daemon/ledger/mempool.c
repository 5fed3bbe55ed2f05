/* The mempool (see mempool.h).
 *
 * An open-addressing hash table (linear probing, backward-shift deletion)
 * indexes the entries by tx hash; the key is uniformly distributed bytes,
 * so its first 8 bytes serve as the hash. The table is sized to twice the
 * bound at creation and never grows. A doubly linked list keeps arrival
 * order. */
#include "daemon/ledger/mempool.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/memstate.h"
#include "lib/errors.h"

struct slot {
	uint8_t key[HASH_LEN];
	void *val;            /* NULL: empty */
};

struct table {
	struct slot *s;
	size_t mask;
};

struct mempool {
	size_t max, n;
	struct mempool_entry *head, *tail;
	struct table by_hash;
	struct state *committed;
	struct memstate *pending;        /* the check state's entries */
	struct state check;              /* committed + pending */
};

static size_t home(const struct table *t, const uint8_t key[HASH_LEN])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & t->mask;
}

static int table_init(struct table *t, size_t max)
{
	size_t cap = 16;

	while (cap < 2 * max)
		cap *= 2;
	t->s = calloc(cap, sizeof(*t->s));
	t->mask = cap - 1;
	return t->s ? 0 : TALLY_E_NOMEM;
}

static size_t table_slot(const struct table *t, const uint8_t key[HASH_LEN])
{
	size_t i = home(t, key);

	while (t->s[i].val && memcmp(t->s[i].key, key, HASH_LEN))
		i = (i + 1) & t->mask;
	return i;
}

static void *table_get(const struct table *t, const uint8_t key[HASH_LEN])
{
	return t->s[table_slot(t, key)].val;
}

static void table_put(struct table *t, const uint8_t key[HASH_LEN], void *val)
{
	size_t i = table_slot(t, key);

	memcpy(t->s[i].key, key, HASH_LEN);
	t->s[i].val = val;
}

static void table_del(struct table *t, const uint8_t key[HASH_LEN])
{
	size_t i = table_slot(t, key), j = i;

	if (!t->s[i].val)
		return;
	t->s[i].val = NULL;
	/* Shift back later members of the probe run that can move into the hole. */
	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->s[j].val)
			return;
		size_t k = home(t, t->s[j].key);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);

		if (stays)
			continue;
		t->s[i] = t->s[j];
		t->s[j].val = NULL;
		i = j;
	}
}

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
	if (table_init(&m->by_hash, max) || check_reset(m)) {
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
	for (e = m->head; e; e = next) {
		next = e->next;
		free(e->bytes);
		free(e);
	}
	memstate_free(m->pending);
	free(m->by_hash.s);
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
	return table_get(&m->by_hash, hash);
}

int mempool_next_nonce(struct mempool *m, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce)
{
	struct account a;
	int rc = state_account_get(&m->check, pub, &a);

	*nonce = a.nonce;
	return rc == TALLY_E_NOTFOUND ? 0 : rc;
}

int mempool_add(struct mempool *m, const struct block_ctx *bc, const struct tx *t,
		const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN], char *why)
{
	struct mempool_entry *e;
	char hex[2 * HASH_LEN + 1];
	int rc;

	why[0] = '\0';
	if (table_get(&m->by_hash, hash)) {
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
	table_put(&m->by_hash, e->hash, e);
	return 0;
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
	table_del(&m->by_hash, e->hash);
	m->n--;
	free(e->bytes);
	free(e);
}

void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN])
{
	struct mempool_entry *e = table_get(&m->by_hash, hash);

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
