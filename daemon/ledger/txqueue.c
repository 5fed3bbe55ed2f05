/* A bounded queue of transactions and the thread that checks them in
 * batches (see txqueue.h). One mutex covers the queue, its index by hash
 * and its counts; the thread holds it only to take a batch out and to let
 * the batch go, never while the ledger checks it or the owner settles it. */
#include "daemon/ledger/txqueue.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/table.h"

struct txqueue_item {
	struct txqueue_item *next;           /* the queue, in arrival order */
	uint8_t hash[HASH_LEN];
	uint8_t origin[PUBKEY_LEN];
	bool has_origin;
	int oom;                             /* uthash could not index it */
	UT_hash_handle hh;                   /* the index, by hash */
	size_t len;
	uint8_t bytes[];
};

struct txqueue {
	struct txqueue_config cfg;

	pthread_mutex_t mu;
	pthread_cond_t cv;                   /* something waits, or stopping */
	struct txqueue_item *head, *tail;    /* waiting, not yet taken */
	struct txqueue_item *index;          /* waiting or being checked, by hash */
	size_t n, bytes;                     /* in the index */
	/* What is in the index per origin (max_origin_*), unordered. */
	struct txqueue_share {
		uint8_t origin[PUBKEY_LEN];
		size_t n, bytes;
	} shares[TXQUEUE_ORIGINS];
	size_t nshares;
	bool stopping, started;
	pthread_t thread;

	/* The thread's own: one batch. */
	struct txqueue_item *batch[LEDGER_BATCH_MAX];
	struct ledger_batch_item items[LEDGER_BATCH_MAX];
};

/* Takes up to LEDGER_BATCH_MAX waiting transactions into q->batch, with mu
 * held; returns how many. */
static size_t take_batch(struct txqueue *q)
{
	size_t k = 0;

	while (q->head && k < LEDGER_BATCH_MAX) {
		q->batch[k++] = q->head;
		q->head = q->head->next;
	}
	if (!q->head)
		q->tail = NULL;
	return k;
}

/* With mu held: the share of origin, or NULL (not there and add false, or
 * no slot left). */
static struct txqueue_share *share_of(struct txqueue *q, const uint8_t origin[PUBKEY_LEN],
				      bool add)
{
	struct txqueue_share *sh;

	for (size_t i = 0; i < q->nshares; i++)
		if (!memcmp(q->shares[i].origin, origin, PUBKEY_LEN))
			return &q->shares[i];
	if (!add || q->nshares == TXQUEUE_ORIGINS)
		return NULL;
	sh = &q->shares[q->nshares++];
	memcpy(sh->origin, origin, PUBKEY_LEN);
	sh->n = sh->bytes = 0;
	return sh;
}

static bool shared(const struct txqueue *q, const struct txqueue_item *it)
{
	return it->has_origin && (q->cfg.max_origin_txs || q->cfg.max_origin_bytes);
}

/* With mu held: the item leaves the index and the queue's counts. */
static void release(struct txqueue *q, struct txqueue_item *it)
{
	struct txqueue_share *sh = shared(q, it) ? share_of(q, it->origin, false) : NULL;

	if (sh) {
		sh->n--;
		sh->bytes -= it->len;
		if (!sh->n)
			*sh = q->shares[--q->nshares];
	}
	HASH_DEL(q->index, it);
	q->n--;
	q->bytes -= it->len;
	free(it);
}

/* One batch through the ledger, the owner told, then the batch let go: in
 * that order (txqueue.h). */
static void check_batch(struct txqueue *q, size_t k)
{
	char why[WHY_MAX];
	int rc;

	memset(q->items, 0, k * sizeof(q->items[0]));
	for (size_t i = 0; i < k; i++) {
		q->items[i].bytes = q->batch[i]->bytes;
		q->items[i].len = q->batch[i]->len;
		q->items[i].origin = q->batch[i]->has_origin ? q->batch[i]->origin : NULL;
		/* Hashed by whoever put it: not again. */
		memcpy(q->items[i].hash, q->batch[i]->hash, HASH_LEN);
		q->items[i].hashed = true;
	}
	why[0] = '\0';
	rc = ledger_submit_batch(q->cfg.ledger, q->items, k, q->cfg.adm, why);
	/* A batch refused whole (the disk short of its reserve, no memory)
	 * refuses each of its transactions for that. */
	for (size_t i = 0; rc && i < k; i++) {
		q->items[i].rc = rc;
		snprintf(q->items[i].why, sizeof(q->items[i].why), "%s",
			 why[0] ? why : tally_strerror(rc));
	}
	q->cfg.settled(q->cfg.ctx, q->items, k);
	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < k; i++)
		release(q, q->batch[i]);
	pthread_mutex_unlock(&q->mu);
}

static void *txqueue_main(void *arg)
{
	struct txqueue *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		size_t k;

		while (!q->head && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		if (q->stopping && !q->cfg.drain_at_stop)
			break;
		k = take_batch(q);
		if (!k)
			break;
		pthread_mutex_unlock(&q->mu);
		check_batch(q, k);
		pthread_mutex_lock(&q->mu);
	}
	pthread_mutex_unlock(&q->mu);
	return NULL;
}

struct txqueue *txqueue_new(const struct txqueue_config *cfg, char *why)
{
	struct txqueue *q = calloc(1, sizeof(*q));

	if (!q) {
		why_set(why, TALLY_E_NOMEM, "no memory for the queue of %s", cfg->what);
		return NULL;
	}
	q->cfg = *cfg;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	return q;
}

int txqueue_start(struct txqueue *q, char *why)
{
	if (pthread_create(&q->thread, NULL, txqueue_main, q))
		return why_set(why, TALLY_E_NOMEM, "cannot start the thread that checks %s",
			       q->cfg.what);
	q->started = true;
	return 0;
}

void txqueue_free(struct txqueue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (q->started)
		pthread_join(q->thread, NULL);
	/* Drained, nothing is left; dropped (or never started), what waits
	 * goes unchecked. */
	while (q->head) {
		struct txqueue_item *it = q->head;

		q->head = it->next;
		release(q, it);
	}
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

int txqueue_put(struct txqueue *q, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		const uint8_t *origin, char *why)
{
	struct txqueue_item *it = malloc(sizeof(*it) + len), *dup;
	struct txqueue_share *sh = NULL;
	int rc = 0;

	if (!it)
		return why_set(why, TALLY_E_NOMEM, "no memory for one of the %s", q->cfg.what);
	memset(it, 0, sizeof(*it));
	memcpy(it->hash, hash, HASH_LEN);
	if (origin) {
		memcpy(it->origin, origin, PUBKEY_LEN);
		it->has_origin = true;
	}
	memcpy(it->bytes, bytes, len);
	it->len = len;
	pthread_mutex_lock(&q->mu);
	HASH_FIND(hh, q->index, hash, HASH_LEN, dup);
	if (dup)
		rc = why_set(why, TALLY_E_REPLAY, "this transaction was received already and waits"
			     " for its checks");
	else if (q->stopping)
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the node is stopping");
	else if (q->n >= q->cfg.max_txs || q->bytes + len > q->cfg.max_bytes)
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the node has %zu %s (%zu KiB) waiting for"
			     " their checks, as many as it queues; try again shortly", q->n,
			     q->cfg.what, q->bytes >> 10);
	else if (shared(q, it) && (!(sh = share_of(q, it->origin, true)) ||
				   (q->cfg.max_origin_txs && sh->n >= q->cfg.max_origin_txs) ||
				   (q->cfg.max_origin_bytes &&
				    sh->bytes + len > q->cfg.max_origin_bytes)))
		rc = why_set(why, TALLY_E_UNAVAILABLE, "%zu of the %s waiting for their checks"
			     " came from this sender, as many as the node queues from one; try"
			     " again shortly", sh ? sh->n : 0, q->cfg.what);
	if (!rc) {
		HASH_ADD(hh, q->index, hash, HASH_LEN, it);
		if (it->oom)
			rc = why_set(why, TALLY_E_NOMEM, "no memory for one of the %s", q->cfg.what);
	}
	if (!rc) {
		if (q->tail)
			q->tail->next = it;
		else
			q->head = it;
		q->tail = it;
		q->n++;
		q->bytes += len;
		if (sh) {
			sh->n++;
			sh->bytes += len;
		}
		pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	if (rc)
		free(it);
	return rc;
}

bool txqueue_waiting(struct txqueue *q, const uint8_t hash[HASH_LEN])
{
	struct txqueue_item *it;

	pthread_mutex_lock(&q->mu);
	HASH_FIND(hh, q->index, hash, HASH_LEN, it);
	pthread_mutex_unlock(&q->mu);
	return it != NULL;
}

size_t txqueue_count(struct txqueue *q)
{
	size_t n;

	pthread_mutex_lock(&q->mu);
	n = q->n;
	pthread_mutex_unlock(&q->mu);
	return n;
}
