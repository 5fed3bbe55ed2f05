/* The inbox of received transactions (see inbox.h). One mutex covers the
 * queue, its index by hash, the ring of refusals and the counters; the
 * thread holds it only to take a batch out and to record its outcomes, never
 * while the ledger checks the batch. */
#include "daemon/ledger/inbox.h"

#include "daemon/ledger/ledger_impl.h"
#include "daemon/ledger/pending.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/tx.h"
#include "lib/errors.h"
#include "lib/table.h"

struct inbox_item {
	struct inbox_item *next;             /* the queue, in arrival order */
	uint8_t hash[HASH_LEN];
	int oom;                             /* uthash could not index it */
	UT_hash_handle hh;                   /* the index, by hash */
	size_t len;
	uint8_t bytes[];
};

struct refusal {
	uint8_t hash[HASH_LEN];
	int rc;
	char why[WHY_MAX];
};

struct inbox {
	struct ledger *l;
	const struct ledger_admission *adm;
	char chain_id[CHAIN_ID_MAX + 1];

	pthread_mutex_t mu;
	pthread_cond_t cv;                   /* something waits, or stopping */
	struct inbox_item *head, *tail;      /* waiting, not yet taken */
	struct inbox_item *index;            /* waiting or being checked, by hash */
	size_t n, bytes;                     /* in the index */
	size_t max_txs;
	bool stopping;
	struct refusal *refused;             /* a ring of INBOX_REFUSED_MAX */
	size_t refused_next;
	struct inbox_stats stats;
	struct pending *log;                 /* INBOX_FILE: what waits, for a restart */
	int log_rc;                          /* the log failed: nothing is taken */
	char log_why[WHY_MAX];
	pthread_t thread;

	/* The thread's own: one batch. */
	struct inbox_item *batch[LEDGER_BATCH_MAX];
	struct ledger_batch_item items[LEDGER_BATCH_MAX];
};

/* With mu held: what the ledger answered for one item, then the item
 * leaves the index (and the inbox): in that order, so inbox_status then
 * ledger_tx_status always finds it in one of them. */
static void settle(struct inbox *q, struct inbox_item *it, int rc, const char *why)
{
	if (rc) {
		struct refusal *r = &q->refused[q->refused_next++ % INBOX_REFUSED_MAX];

		memcpy(r->hash, it->hash, HASH_LEN);
		r->rc = rc;
		snprintf(r->why, sizeof(r->why), "%s", why && why[0] ? why : tally_strerror(rc));
		q->stats.refused++;
	} else {
		q->stats.admitted++;
	}
	HASH_DEL(q->index, it);
	q->n--;
	q->bytes -= it->len;
	free(it);
}

/* With mu held: the log could not be written; asynchronous submissions are
 * refused until log_settled() writes it whole again. */
static void log_failed(struct inbox *q, int rc, const char *why)
{
	if (!q->log_rc)
		ledger_logf(q->l, "inbox: %s: asynchronous submissions are refused until it can be"
			    " written", why[0] ? why : tally_strerror(rc));
	q->log_rc = rc;
	snprintf(q->log_why, sizeof(q->log_why), "%s", why[0] ? why : tally_strerror(rc));
}

/* With mu held: the log holds what waits, and no more than it must. A
 * record leaves it only once its transaction's outcome is recorded (the
 * ledger's own log has it, or the refusal is remembered here), so a node
 * killed at any moment finds, when it restarts, every transaction it
 * answered "received" in one log or the other: emptied when nothing waits,
 * rewritten with what waits when it grew past twice what may wait, after
 * a failure (a new file: the old one's descriptor may be what failed), or
 * when rewrite says, as it must at the start: until this run wrote the file
 * once, appends write nothing. */
static void log_settled(struct inbox *q, bool rewrite)
{
	char why[WHY_MAX] = "";
	int rc;

	if (!q->n && !q->log_rc) {
		rc = pending_truncate(q->log, why);
	} else if (!rewrite && !q->log_rc && pending_size(q->log) <= 2 * ((uint64_t)INBOX_MAX_BYTES +
				(uint64_t)q->max_txs * (4 + PENDING_CHECK_LEN))) {
		return;
	} else if (!(rc = pending_rewrite_begin(q->log, why))) {
		for (struct inbox_item *it = q->head; it && !rc; it = it->next)
			rc = pending_rewrite_add(q->log, it->bytes, it->len, why);
		rc = pending_rewrite_commit(q->log, why) ? : rc;
	}
	if (rc) {
		log_failed(q, rc, why);
	} else if (q->log_rc) {
		ledger_logf(q->l, "inbox: %s written again: asynchronous submissions are taken",
			    INBOX_FILE);
		q->log_rc = 0;
	}
}

/* Takes up to LEDGER_BATCH_MAX waiting transactions into q->batch, with mu
 * held; returns how many. */
static size_t take_batch(struct inbox *q)
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

/* One batch through the ledger, then each outcome recorded. */
static void check_batch(struct inbox *q, size_t k)
{
	char why[WHY_MAX];
	int rc;

	memset(q->items, 0, k * sizeof(q->items[0]));
	for (size_t i = 0; i < k; i++) {
		q->items[i].bytes = q->batch[i]->bytes;
		q->items[i].len = q->batch[i]->len;
		/* inbox_put hashed it: not again. */
		memcpy(q->items[i].hash, q->batch[i]->hash, HASH_LEN);
		q->items[i].hashed = true;
	}
	rc = ledger_submit_batch(q->l, q->items, k, q->adm, why);
	pthread_mutex_lock(&q->mu);
	for (size_t i = 0; i < k; i++) {
		/* A batch refused whole (the disk short of its reserve, no
		 * memory) refuses each of its transactions for that. */
		if (rc)
			settle(q, q->batch[i], rc, why);
		else
			settle(q, q->batch[i], q->items[i].rc, q->items[i].why);
	}
	log_settled(q, false);
	pthread_mutex_unlock(&q->mu);
}

/* Queues a copy of a transaction's bytes, with mu held or before the
 * thread starts: 0, TALLY_E_REPLAY (it waits already) or TALLY_E_NOMEM. */
static int enqueue(struct inbox *q, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN])
{
	struct inbox_item *it, *dup;

	HASH_FIND(hh, q->index, hash, HASH_LEN, dup);
	if (dup)
		return TALLY_E_REPLAY;
	it = malloc(sizeof(*it) + len);
	if (!it)
		return TALLY_E_NOMEM;
	memset(it, 0, sizeof(*it));
	memcpy(it->hash, hash, HASH_LEN);
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
	q->stats.received++;
	return 0;
}

/* Takes back what enqueue() queued last (its log record was not written). */
static void unqueue_last(struct inbox *q)
{
	struct inbox_item *it = q->tail, *p;

	for (p = q->head; p && p->next != it; p = p->next)
		;
	if (p)
		p->next = NULL;
	else
		q->head = NULL;
	q->tail = p;
	HASH_DEL(q->index, it);
	q->n--;
	q->bytes -= it->len;
	q->stats.received--;
	free(it);
}

static void free_items(struct inbox *q)
{
	struct inbox_item *it, *tmp;

	HASH_ITER(hh, q->index, it, tmp) {
		HASH_DEL(q->index, it);
		free(it);
	}
	q->head = q->tail = NULL;
}

/* What a node killed last time had received and not settled, from its log,
 * queued again in the order it came (each is checked as any other), and
 * the log rewritten with it. The log's file cannot be read: the node does
 * not start (the operator moves it aside). */
static int restore(struct inbox *q, char *why)
{
	char line[WHY_MAX] = "";
	size_t count, queued = 0;
	int rc = pending_open_named(&q->log, q->l->data_dir, INBOX_FILE, line);

	if (rc)
		return why_set(why, rc, "%s; move it aside to start without the transactions it"
			       " holds", line[0] ? line : tally_strerror(rc));
	count = pending_count(q->log);
	for (size_t i = 0; i < count; i++) {
		uint8_t hash[HASH_LEN];
		size_t len;
		const uint8_t *bytes = pending_record(q->log, i, &len);

		tx_hash(bytes, len, hash);
		rc = enqueue(q, bytes, len, hash);
		if (rc == TALLY_E_NOMEM)
			return why_set(why, rc, "no memory for the %zu transactions of %s", count,
				       INBOX_FILE);
		queued += !rc;
	}
	if (count || pending_cut_bytes(q->log))
		ledger_logf(q->l, "inbox: %zu received transactions restored from %s, to be"
			    " checked%s", queued, INBOX_FILE, pending_cut_bytes(q->log) ?
			    " (a torn record after them dropped)" : "");
	pending_forget_read(q->log);
	log_settled(q, true);
	return 0;
}

static void *inbox_main(void *arg)
{
	struct inbox *q = arg;

	pthread_mutex_lock(&q->mu);
	for (;;) {
		size_t k;

		while (!q->head && !q->stopping)
			pthread_cond_wait(&q->cv, &q->mu);
		/* Stopping, the thread still checks what waits: it was
		 * answered "received". */
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

struct inbox *inbox_new(struct ledger *l, const char *chain_id,
			const struct ledger_admission *adm, size_t max_txs, char *why)
{
	struct inbox *q = calloc(1, sizeof(*q));

	if (q)
		q->refused = calloc(INBOX_REFUSED_MAX, sizeof(*q->refused));
	if (!q || !q->refused) {
		if (q)
			free(q);
		why_set(why, TALLY_E_NOMEM, "no memory for the inbox of received transactions");
		return NULL;
	}
	q->l = l;
	q->adm = adm;
	q->max_txs = max_txs ? max_txs : INBOX_MAX_TXS;
	snprintf(q->chain_id, sizeof(q->chain_id), "%s", chain_id);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	if (restore(q, why))
		goto fail;
	if (pthread_create(&q->thread, NULL, inbox_main, q)) {
		why_set(why, TALLY_E_NOMEM, "cannot start the inbox's thread");
		goto fail;
	}
	return q;
fail:
	free_items(q);
	pending_close(q->log);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q->refused);
	free(q);
	return NULL;
}

void inbox_free(struct inbox *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->mu);
	q->stopping = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	/* The thread leaves once the queue is empty: every item was settled,
	 * and the log emptied. */
	pending_close(q->log);
	pthread_cond_destroy(&q->cv);
	pthread_mutex_destroy(&q->mu);
	free(q->refused);
	free(q);
}

int inbox_put(struct inbox *q, const uint8_t *bytes, size_t len, uint64_t now_s,
	      uint8_t hash[HASH_LEN], char *why)
{
	uint8_t rec[PENDING_RECORD_MAX];
	struct tx t;
	int rc;

	why[0] = '\0';
	if ((rc = tx_check_unsigned(&t, bytes, len, q->chain_id, now_s, why)))
		return rc;
	tx_hash(bytes, len, hash);
	pthread_mutex_lock(&q->mu);
	if (q->log_rc && !q->n)
		log_settled(q, false);       /* the log empty again, perhaps */
	if (q->stopping)
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the node is stopping");
	else if (q->log_rc)
		rc = why_set(why, q->log_rc, "the node cannot keep received transactions (%s):"
			     " submit without Prefer: respond-async", q->log_why);
	else if (q->n >= q->max_txs || q->bytes + len > INBOX_MAX_BYTES)
		rc = why_set(why, TALLY_E_UNAVAILABLE, "the node has %zu received transactions"
			     " (%zu KiB) waiting for their checks, as many as it queues; try"
			     " again shortly", q->n, q->bytes >> 10);
	/* In the log before it is answered "received": a node killed now
	 * finds it there when it restarts. */
	else if ((rc = enqueue(q, bytes, len, hash)) == TALLY_E_REPLAY)
		why_set(why, rc, "this transaction was received already and waits for its checks");
	else if (rc)
		why_set(why, rc, "no memory for a received transaction");
	else if ((rc = pending_append(q->log, rec, pending_frame(rec, bytes, len), why))) {
		/* Not answered "received": taken back, and the log written
		 * whole again (at once when nothing waits, else after the
		 * batch being checked) before another is taken. */
		unqueue_last(q);
		log_failed(q, rc, why);
		if (!q->n)
			log_settled(q, false);
	} else
		pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	return rc;
}

void inbox_status(struct inbox *q, const uint8_t hash[HASH_LEN], struct inbox_status *st)
{
	struct inbox_item *it;
	size_t used;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&q->mu);
	HASH_FIND(hh, q->index, hash, HASH_LEN, it);
	if (it) {
		st->state = INBOX_RECEIVED;
		goto out;
	}
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
out:
	pthread_mutex_unlock(&q->mu);
}

void inbox_stats(struct inbox *q, struct inbox_stats *s)
{
	pthread_mutex_lock(&q->mu);
	*s = q->stats;
	s->waiting = q->n;
	pthread_mutex_unlock(&q->mu);
}
