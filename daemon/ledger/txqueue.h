/* Transactions taken and not yet checked, handed to the ledger in batches.
 *
 * Two doors of the node take transactions faster than their signatures can
 * be checked one by one on the thread that took them: the asynchronous
 * submission of the API (inbox.h) and the TXS frames of peers (the peer
 * transport's intake). Both queue what they took here; one thread per queue
 * takes up to LEDGER_BATCH_MAX of what waits, in arrival order, and hands
 * them to the ledger as one batch (ledger_submit_batch: signatures checked
 * on the ledger's worker pool, admitted in order under one hold of the
 * mempool's lock), so an account's transactions taken in order enter the
 * mempool in that order. The owner hears each batch's answers through its
 * settled callback.
 *
 * The queue is bounded by a count and by bytes, optionally also per origin
 * (TXQUEUE_ORIGINS origins with transactions waiting at most), and indexed
 * by hash: a transaction waits at most once, and txqueue_waiting says whether it still
 * does. A transaction leaves the index only after its batch's settled call
 * returned, so an owner that records outcomes there and is asked of a hash
 * finds it either waiting here or recorded by itself, never neither.
 *
 * With a log (txqueue_config.log_file), what waits survives the process
 * being killed: txqueue_put appends each transaction to the ledger's
 * DATA_DIR/log_file (the format of the mempool's log, pending.h: written,
 * not fsynced) before it returns 0 (txqueue_put_batch: a batch's with one
 * write), and a record leaves the log only once its batch was settled (the
 * mempool's log has it, or the owner recorded its refusal): the log is
 * emptied when nothing waits, and written again with what waits when it
 * grew past twice what may wait, or after a write failed. txqueue_new
 * queues again, in their order, what the log of a killed process holds.
 * While the log cannot be written txqueue_put refuses (with the I/O error)
 * rather than take what a kill would lose. */
#ifndef TALLY_LEDGER_TXQUEUE_H
#define TALLY_LEDGER_TXQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ledger/ledger.h"

struct txqueue;

#define TXQUEUE_ORIGINS 256

/* One batch's answers, on the queue's thread, without the queue's lock:
 * items[0..k) as ledger_submit_batch left them (bytes, len, origin and
 * hash as put; rc and why the answer; a batch refused whole has its error
 * in every item). The items and their bytes are valid during the call. */
typedef void (*txqueue_settled_fn)(void *ctx, const struct ledger_batch_item *items, size_t k);

struct txqueue_config {
	struct ledger *ledger;                   /* borrowed: outlives the queue */
	const struct ledger_admission *adm;      /* for every batch; may be NULL; borrowed */
	size_t max_txs;                          /* at most this many wait (> 0) */
	size_t max_bytes;                        /* and at most this many bytes (> 0) */
	/* Of one origin, at most this many and bytes (0: no bound of its
	 * own), so one sender flooding the queue leaves room for the others. */
	size_t max_origin_txs, max_origin_bytes;
	/* At txqueue_free: true checks what still waits (it was promised an
	 * answer), false drops it. */
	bool drain_at_stop;
	txqueue_settled_fn settled;
	void *ctx;
	const char *what;                        /* "received transactions": for messages */
	const char *log_file;                    /* in the ledger's data directory; NULL: none */
	/* Said after a refusal for the log (": <log_advice>"): what the
	 * sender can do instead. NULL: nothing. */
	const char *log_advice;
};

/* A queue, not yet running: txqueue_put queues, nothing is checked until
 * txqueue_start. With a log, what it holds is queued first (*restored, may
 * be NULL, says how many). NULL with why set: TALLY_E_NOMEM when memory is
 * out, the log's error (TALLY_E_IO, ...) when it cannot be read. */
struct txqueue *txqueue_new(const struct txqueue_config *cfg, size_t *restored, char *why);
/* Starts the thread: 0, or TALLY_E_NOMEM with why. */
int txqueue_start(struct txqueue *q, char *why);
/* Stops taking transactions; drains or drops what waits (drain_at_stop),
 * a batch being checked finishes; joins the thread; frees. NULL is a
 * no-op. */
void txqueue_free(struct txqueue *q);

/* Queues a copy of bytes (len bytes of a transaction) under hash (its
 * tx_hash: the ledger does not compute it again, nor does the log's
 * record), with origin (PUBKEY_LEN bytes, copied; NULL for none) for the
 * ledger's admit hook. Errors, with why: TALLY_E_REPLAY when the same hash
 * waits already, TALLY_E_UNAVAILABLE when the queue is full (in all, or
 * this origin's share) or stopping, TALLY_E_IO or TALLY_E_DISKFULL when
 * the log cannot be written, TALLY_E_TOOLONG (above TX_MAX_SIZE, with a
 * log), TALLY_E_NOMEM. A batch of one for txqueue_put_batch. */
int txqueue_put(struct txqueue *q, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		const uint8_t *origin, char *why);

/* Queues items[0..n), in order, under one hold of the queue's lock, and
 * appends the log records of those taken with one write: each item's
 * bytes, len, origin and hash (in: its tx_hash) as txqueue_put takes
 * them. An item whose rc is not 0 on entry (refused already) is skipped
 * and left as it is. Each other item is answered in its rc and why as
 * txqueue_put would have answered it, put alone in its turn: 0 when
 * taken; TALLY_E_REPLAY for the same hash waiting, also when an earlier
 * item of this batch was it; TALLY_E_UNAVAILABLE once the queue (or the
 * origin's share) is full, the items before taken; and so on. When the
 * log's write fails, none of the batch is taken (a kill would lose them
 * all): each item that would have been answers with the log's error
 * (TALLY_E_IO or TALLY_E_DISKFULL), and the queue refuses as txqueue_put
 * says until the log is written again. Returns how many were taken. */
size_t txqueue_put_batch(struct txqueue *q, struct ledger_batch_item *items, size_t n);
/* Whether a transaction waits (or is being checked) here now. */
bool txqueue_waiting(struct txqueue *q, const uint8_t hash[HASH_LEN]);
/* How many wait (or are being checked) now. */
size_t txqueue_count(struct txqueue *q);

#endif
