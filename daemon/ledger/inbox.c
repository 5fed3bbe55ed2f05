/* The inbox of received transactions (see inbox.h): a txqueue that checks
 * them, and what became of those the ledger refused. */
#include "daemon/ledger/inbox.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/ledger/txqueue.h"
#include "lib/chain/tx.h"
#include "lib/errors.h"

struct refusal {
	uint8_t hash[HASH_LEN];
	int rc;
	char why[WHY_MAX];
};

struct inbox {
	struct txqueue *queue;
	char chain_id[CHAIN_ID_MAX + 1];

	pthread_mutex_t mu;                  /* the ring of refusals, the counters */
	struct refusal *refused;             /* a ring of INBOX_REFUSED_MAX */
	size_t refused_next;
	struct inbox_stats stats;
};

/* A batch's answers (the queue's thread): refusals remembered, before the
 * queue lets the batch go (txqueue.h), so inbox_status then
 * ledger_tx_status always finds a transaction in one of them. */
static void settled(void *ctx, const struct ledger_batch_item *items, size_t k)
{
	struct inbox *q = ctx;

	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < k; i++) {
		struct refusal *r;

		if (!items[i].rc) {
			q->stats.admitted++;
			continue;
		}
		r = &q->refused[q->refused_next++ % INBOX_REFUSED_MAX];
		memcpy(r->hash, items[i].hash, HASH_LEN);
		r->rc = items[i].rc;
		snprintf(r->why, sizeof(r->why), "%s",
			 items[i].why[0] ? items[i].why : tally_strerror(items[i].rc));
		q->stats.refused++;
	}
	pthread_mutex_unlock(&q->mu);
}

struct inbox *inbox_new(struct ledger *l, const char *chain_id,
			const struct ledger_admission *adm, size_t max_txs, char *why)
{
	struct inbox *q = calloc(1, sizeof(*q));
	struct txqueue_config cfg = {
		.ledger = l,
		.adm = adm,
		.max_txs = max_txs ? max_txs : INBOX_MAX_TXS,
		.max_bytes = INBOX_MAX_BYTES,
		/* Stopping, what waits is still checked: it was answered
		 * "received". */
		.drain_at_stop = true,
		.settled = settled,
		.ctx = q,
		.what = "received transactions",
		.log_file = INBOX_FILE,
		/* The synchronous submission needs no inbox.log. */
		.log_advice = "submit without Prefer: respond-async",
	};
	size_t restored;

	if (q)
		q->refused = calloc(INBOX_REFUSED_MAX, sizeof(*q->refused));
	if (!q || !q->refused) {
		if (q)
			free(q);
		why_set(why, TALLY_E_NOMEM, "no memory for the inbox of received transactions");
		return NULL;
	}
	snprintf(q->chain_id, sizeof(q->chain_id), "%s", chain_id);
	pthread_mutex_init(&q->mu, NULL);
	/* What a killed node had received is received again: counted so. */
	q->queue = txqueue_new(&cfg, &restored, why);
	q->stats.received = restored;
	if (!q->queue || txqueue_start(q->queue, why)) {
		txqueue_free(q->queue);
		pthread_mutex_destroy(&q->mu);
		free(q->refused);
		free(q);
		return NULL;
	}
	return q;
}

void inbox_free(struct inbox *q)
{
	if (!q)
		return;
	/* Checks and settles what still waits before it returns. */
	txqueue_free(q->queue);
	pthread_mutex_destroy(&q->mu);
	free(q->refused);
	free(q);
}

size_t inbox_put_batch(struct inbox *q, struct ledger_batch_item *items, size_t n,
		       uint64_t now_s)
{
	size_t checked = 0, taken;

	for (size_t i = 0; i < n; i++) {
		struct ledger_batch_item *it = &items[i];
		struct tx t;

		if (it->rc)
			continue;
		it->why[0] = '\0';
		if ((it->rc = tx_check_unsigned(&t, it->bytes, it->len, q->chain_id, now_s,
						it->why)))
			continue;
		tx_hash(it->bytes, it->len, it->hash);
		it->hashed = true;           /* the queue and its log take it as is */
		checked++;
	}
	if (!checked)
		return 0;
	/* Counted first: their batch may be settled before put returns. */
	pthread_mutex_lock(&q->mu);
	q->stats.received += checked;
	pthread_mutex_unlock(&q->mu);
	/* In inbox.log before they are answered "received" (txqueue.h). */
	taken = txqueue_put_batch(q->queue, items, n);
	if (taken < checked) {
		pthread_mutex_lock(&q->mu);
		q->stats.received -= checked - taken;
		pthread_mutex_unlock(&q->mu);
	}
	return taken;
}

int inbox_put(struct inbox *q, const uint8_t *bytes, size_t len, uint64_t now_s,
	      uint8_t hash[HASH_LEN], char *why)
{
	struct ledger_batch_item it = { .bytes = bytes, .len = len };

	inbox_put_batch(q, &it, 1, now_s);
	if (it.hashed)
		memcpy(hash, it.hash, HASH_LEN);
	if (it.rc)
		snprintf(why, WHY_MAX, "%s", it.why);
	return it.rc;
}

void inbox_status(struct inbox *q, const uint8_t hash[HASH_LEN], struct inbox_status *st)
{
	size_t used;

	memset(st, 0, sizeof(*st));
	/* The queue first: a transaction leaves it only once its refusal is
	 * in the ring. */
	if (txqueue_waiting(q->queue, hash)) {
		st->state = INBOX_RECEIVED;
		return;
	}
	pthread_mutex_lock(&q->mu);
	/* The newest refusal of this hash wins; slots not written yet are no
	 * refusals. */
	used = q->refused_next < INBOX_REFUSED_MAX ? q->refused_next : INBOX_REFUSED_MAX;
	for (size_t i = 0; i < used; i++) {
		const struct refusal *r =
			&q->refused[(q->refused_next + INBOX_REFUSED_MAX - 1 - i) % INBOX_REFUSED_MAX];

		if (memcmp(r->hash, hash, HASH_LEN))
			continue;
		st->state = INBOX_REFUSED;
		st->rc = r->rc;
		snprintf(st->why, sizeof(st->why), "%s", r->why);
		break;
	}
	pthread_mutex_unlock(&q->mu);
}

void inbox_stats(struct inbox *q, struct inbox_stats *s)
{
	pthread_mutex_lock(&q->mu);
	*s = q->stats;
	pthread_mutex_unlock(&q->mu);
	s->waiting = txqueue_count(q->queue);
}
