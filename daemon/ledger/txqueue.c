/* A bounded queue of transactions and the thread that checks them in
 * batches (see txqueue.h). One mutex covers the queue, its index by hash
 * and its counts; the thread holds it only to take a batch out and to let
 * the batch go, never while the ledger checks it or the owner settles it. */
#include "daemon/ledger/txqueue.h"

#include "daemon/ledger/ledger_impl.h"
#include "daemon/ledger/pending.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/tx.h"
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
	struct pending *log;                 /* cfg.log_file: what waits, for a restart */
	int log_rc;                          /* the log failed: nothing is taken */
	char log_why[WHY_MAX];

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

/* Whether the queue bounds each origin's share. */
static bool shared(const struct txqueue *q)
{
	return q->cfg.max_origin_txs || q->cfg.max_origin_bytes;
}

/* With mu held: the item leaves the index and the queue's counts. */
static void release(struct txqueue *q, struct txqueue_item *it)
{
	struct txqueue_share *sh = it->has_origin && shared(q) ? share_of(q, it->origin, false)
								: NULL;

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

/* With mu held: the log could not be written; txqueue_put refuses until
 * log_settled() writes it whole again. */
static void log_failed(struct txqueue *q, int rc, const char *why)
{
	if (!q->log_rc)
		ledger_logf(q->cfg.ledger, "%s: %s: %s are refused until it can be written",
			    q->cfg.log_file, why[0] ? why : tally_strerror(rc), q->cfg.what);
	q->log_rc = rc;
	snprintf(q->log_why, sizeof(q->log_why), "%s", why[0] ? why : tally_strerror(rc));
}

/* With mu held: the log holds what waits, and no more than it must (see
 * txqueue.h): emptied when nothing waits, written again with what waits
 * (a new file: the old one's descriptor may be what failed) when it grew
 * past twice what may wait, after a failure, or when rewrite says, as it
 * must at the start: until this run wrote the file once, appends write
 * nothing. */
static void log_settled(struct txqueue *q, bool rewrite)
{
	char why[WHY_MAX] = "";
	int rc;

	if (!q->log)
		return;
	if (!q->n && !q->log_rc) {
		rc = pending_truncate(q->log, why);
	} else if (!rewrite && !q->log_rc &&
		   pending_size(q->log) <= 2 * ((uint64_t)q->cfg.max_bytes +
						(uint64_t)q->cfg.max_txs * (4 + PENDING_CHECK_LEN))) {
		return;
	} else if (!(rc = pending_rewrite_begin(q->log, why))) {
		for (struct txqueue_item *it = q->head; it && !rc; it = it->next)
			rc = pending_rewrite_add(q->log, it->bytes, it->len, why);
		rc = pending_rewrite_commit(q->log, why) ? : rc;
	}
	if (rc) {
		log_failed(q, rc, why);
	} else if (q->log_rc) {
		/* Not yet proof of room: a rewrite of nothing needs none. */
		ledger_logf(q->cfg.ledger, "%s rewritten with the %zu %s waiting: more are"
			    " taken again, and refused again if a write fails", q->cfg.log_file,
			    q->n, q->cfg.what);
		q->log_rc = 0;
	}
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
	log_settled(q, false);
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

/* Queues a copy of a transaction, with mu held or before the thread
 * starts: 0, TALLY_E_REPLAY (it waits already) or TALLY_E_NOMEM. */
static int enqueue(struct txqueue *q, const uint8_t *bytes, size_t len,
		   const uint8_t hash[HASH_LEN], const uint8_t *origin)
{
	struct txqueue_item *it, *dup;

	HASH_FIND(hh, q->index, hash, HASH_LEN, dup);
	if (dup)
		return TALLY_E_REPLAY;
	it = malloc(sizeof(*it) + len);
	if (!it)
		return TALLY_E_NOMEM;
	memset(it, 0, sizeof(*it));
	memcpy(it->hash, hash, HASH_LEN);
	if (origin) {
		memcpy(it->origin, origin, PUBKEY_LEN);
		it->has_origin = true;
	}
	memcpy(it->bytes, bytes, len);
	it->len = len;
	HASH_ADD(hh, q->index, hash, HASH_LEN, it);
	if (it->oom) {
		free(it);
		return TALLY_E_NOMEM;
	}
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	q->n++;
	q->bytes += len;
	if (origin && shared(q)) {
		/* txqueue_put made its share; restored ones have no origin. */
		struct txqueue_share *sh = share_of(q, origin, true);

		if (sh) {
			sh->n++;
			sh->bytes += len;
		}
	}
	return 0;
}

/* Takes back what enqueue() queued after last (NULL: the whole queue),
 * whose log records were not written, with mu held. */
static void unqueue_after(struct txqueue *q, struct txqueue_item *last)
{
	struct txqueue_item *it = last ? last->next : q->head;

	if (last)
		last->next = NULL;
	else
		q->head = NULL;
	q->tail = last;
	while (it) {
		struct txqueue_item *next = it->next;

		release(q, it);
		it = next;
	}
}

/* What a process killed last time had taken and not settled, from its log,
 * queued again in the order it came, and the log written again with it.
 * A log that cannot be read stops the start (the operator moves it
 * aside). */
static int restore(struct txqueue *q, size_t *restored, char *why)
{
	size_t count, queued = 0;
	int rc = pending_open_to_restore(&q->log, q->cfg.ledger->data_dir, q->cfg.log_file, why);

	if (rc)
		return rc;
	count = pending_count(q->log);
	for (size_t i = 0; i < count; i++) {
		uint8_t hash[HASH_LEN];
		size_t len;
		const uint8_t *bytes = pending_record(q->log, i, &len);

		tx_hash(bytes, len, hash);
		rc = enqueue(q, bytes, len, hash, NULL);
		if (rc == TALLY_E_NOMEM)
			return why_set(why, rc, "no memory for the %zu transactions of %s", count,
				       q->cfg.log_file);
		queued += !rc;
	}
	if (count || pending_cut_bytes(q->log))
		ledger_logf(q->cfg.ledger, "%zu %s restored from %s, to be checked%s", queued,
			    q->cfg.what, q->cfg.log_file, pending_cut_bytes(q->log) ?
			    " (a torn record after them dropped)" : "");
	pending_forget_read(q->log);
	log_settled(q, true);
	if (restored)
		*restored = queued;
	return 0;
}

struct txqueue *txqueue_new(const struct txqueue_config *cfg, size_t *restored, char *why)
{
	struct txqueue *q = calloc(1, sizeof(*q));

	if (restored)
		*restored = 0;
	if (!q) {
		why_set(why, TALLY_E_NOMEM, "no memory for the queue of %s", cfg->what);
		return NULL;
	}
	q->cfg = *cfg;
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (q->cfg.log_file && restore(q, restored, why)) {
		txqueue_free(q);
		return NULL;
	}
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
	 * goes unchecked here. */
	while (q->head) {
		struct txqueue_item *it = q->head;

		q->head = it->next;
		release(q, it);
	}
	/* Drained, the log was emptied; dropped, what waited stays in it for
	 * the next start. */
	pending_close(q->log);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q);
}

/* A refusal for the log: why, then the owner's advice (log_advice). */
static void advise(const struct txqueue *q, char *why)
{
	size_t used = strlen(why);

	if (q->cfg.log_advice && used < WHY_MAX)
		snprintf(why + used, WHY_MAX - used, ": %s", q->cfg.log_advice);
}

/* With mu held: queues a copy of the item (txqueue_put's checks, in its
 * order), or answers it in it->rc and it->why. */
static int put_locked(struct txqueue *q, struct ledger_batch_item *it)
{
	struct txqueue_share *sh = NULL;
	size_t len = it->len;
	char *why = it->why;
	int rc = 0;

	if (q->stopping) {
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the node is stopping");
	} else if (q->log_rc) {
		rc = why_set(why, q->log_rc, "the node cannot keep %s on disk (%s)", q->cfg.what,
			     q->log_why);
		advise(q, why);
	} else if (q->n >= q->cfg.max_txs || q->bytes + len > q->cfg.max_bytes) {
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the node has %zu %s (%zu KiB) waiting for"
			     " their checks, as many as it queues; try again shortly", q->n,
			     q->cfg.what, q->bytes >> 10);
	} else if (it->origin && shared(q) && !(sh = share_of(q, it->origin, true))) {
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the %s waiting for their checks came"
			     " from %d senders, as many as the node queues from at once; try"
			     " again shortly", q->cfg.what, TXQUEUE_ORIGINS);
	} else if (sh && ((q->cfg.max_origin_txs && sh->n >= q->cfg.max_origin_txs) ||
			  (q->cfg.max_origin_bytes && sh->bytes + len > q->cfg.max_origin_bytes))) {
		rc = why_set(why, TALLY_E_UNAVAILABLE, "%zu of the %s waiting for their checks"
			     " came from this sender, as many as the node queues from one; try"
			     " again shortly", sh->n, q->cfg.what);
	} else if ((rc = enqueue(q, it->bytes, len, it->hash, it->origin)) == TALLY_E_REPLAY) {
		why_set(why, rc, "this transaction was received already and waits for its checks");
	} else if (rc) {
		why_set(why, rc, "no memory for one of the %s", q->cfg.what);
	}
	/* A share made for a sender whose transaction was not taken goes. */
	if (rc && sh && !sh->n)
		*sh = q->shares[--q->nshares];
	it->rc = rc;
	return rc;
}

size_t txqueue_put_batch(struct txqueue *q, struct ledger_batch_item *items, size_t n)
{
	uint8_t one[PENDING_RECORD_MAX], *recs = one;
	struct txqueue_item *before;
	size_t size = 0, at = 0, taken = 0;
	char why[WHY_MAX] = "";
	int rc;

	for (size_t i = 0; i < n; i++) {
		if (items[i].rc)
			continue;
		items[i].why[0] = '\0';
		if (q->log && items[i].len > TX_MAX_SIZE)
			items[i].rc = why_set(items[i].why, TALLY_E_TOOLONG, "a transaction of %zu"
					      " bytes, above %d", items[i].len, TX_MAX_SIZE);
		else
			size += 4 + items[i].len + PENDING_CHECK_LEN;
	}
	/* The records' room, before the lock is taken. */
	if (q->log && size > sizeof(one) && !(recs = malloc(size))) {
		for (size_t i = 0; i < n; i++)
			if (!items[i].rc)
				items[i].rc = why_set(items[i].why, TALLY_E_NOMEM, "no memory for a"
						      " batch of %zu %s", n, q->cfg.what);
		return 0;
	}
	pthread_mutex_lock(&q->mu);
	if (q->log_rc && !q->n)
		log_settled(q, false);       /* the log written again, perhaps */
	before = q->tail;
	for (size_t i = 0; i < n; i++) {
		if (items[i].rc || put_locked(q, &items[i]))
			continue;
		taken++;
		if (q->log)
			at += pending_frame_hashed(recs + at, items[i].bytes, items[i].len,
						   items[i].hash);
	}
	/* In the log before they are taken, with one write: a process killed
	 * now finds them there when it starts again. */
	if (taken && q->log && (rc = pending_append(q->log, recs, at, why))) {
		/* None taken: each backed out (its share with it), and the
		 * log written whole again (at once when nothing waits, else
		 * after the batch being checked) before another is taken. */
		unqueue_after(q, before);
		log_failed(q, rc, why);
		if (!q->n)
			log_settled(q, false);
		advise(q, why);
		/* Those put above are the ones still unanswered; so is a
		 * repeat of one of them within the batch (refused as waiting
		 * already, and now nothing of it waits). */
		for (size_t i = 0; i < n; i++) {
			struct txqueue_item *was = NULL;

			if (items[i].rc == TALLY_E_REPLAY)
				HASH_FIND(hh, q->index, items[i].hash, HASH_LEN, was);
			if (items[i].rc && (items[i].rc != TALLY_E_REPLAY || was))
				continue;
			items[i].rc = rc;
			snprintf(items[i].why, sizeof(items[i].why), "%s", why);
		}
		taken = 0;
	}
	if (taken)
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (recs != one)
		free(recs);
	return taken;
}

int txqueue_put(struct txqueue *q, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		const uint8_t *origin, char *why)
{
	struct ledger_batch_item it = { .bytes = bytes, .len = len, .origin = origin };

	memcpy(it.hash, hash, HASH_LEN);
	if (!txqueue_put_batch(q, &it, 1))
		snprintf(why, WHY_MAX, "%s", it.why);
	return it.rc;
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
