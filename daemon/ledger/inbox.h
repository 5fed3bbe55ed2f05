/* Transactions received and not yet checked: the asynchronous submission
 * (POST /v1/tx and /v1/txs with "Prefer: respond-async", RFC 7240; the
 * same idea as CometBFT's broadcast_tx_async).
 *
 * A synchronous submission answers once the signature is checked and the
 * mempool has taken the transaction, so one connection submits at most one
 * transaction per signature check, and waits for each. Here the answer
 * comes once the transaction is decoded (strictly, with every check that
 * needs neither its signature nor the state: tx_check_unsigned) and queued
 * (a txqueue, txqueue.h, as peers' transactions are); its thread hands what
 * waits, in arrival order, to the ledger as batches (ledger_submit_batch: signatures checked on the ledger's
 * worker pool, admitted in order, so an account's transactions sent in
 * order on one connection enter the mempool in that order).
 *
 * What became of a received transaction: inbox_status says "received"
 * while it waits, then the ledger's ledger_tx_status (pending, held,
 * committed, dropped); a transaction the ledger refused when its turn came
 * is remembered here with its error (the last INBOX_REFUSED_MAX refusals).
 * A transaction leaves the queue only once its outcome is recorded, so
 * asking the inbox first and the ledger second never misses one in
 * between.
 *
 * Bounds: INBOX_MAX_TXS transactions (or fewer, as inbox_new says) and
 * INBOX_MAX_BYTES bytes wait at most; beyond them inbox_put refuses with
 * TALLY_E_UNAVAILABLE (try again shortly).
 *
 * Received transactions survive the node being killed: inbox_put appends
 * each to DATA_DIR/inbox.log (the format of the mempool's log,
 * daemon/ledger/pending.h: written, not fsynced; inbox_put_batch a batch's
 * with one write) before it answers, and a
 * record leaves the log only once its outcome is recorded (the ledger's
 * mempool log has it, or it was refused); inbox_new queues again, in their
 * order, what a killed node's log holds, and each is checked as any other.
 * The refusals remembered are in memory only. While the log cannot be
 * written inbox_put refuses (with the I/O error, and the advice to submit
 * synchronously) rather than answer "received" for a transaction a kill
 * would lose. inbox_free checks and
 * admits what still waits before it returns. */
#ifndef TALLY_LEDGER_INBOX_H
#define TALLY_LEDGER_INBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ledger/ledger.h"

#define INBOX_MAX_TXS 16384
#define INBOX_MAX_BYTES (16u << 20)
#define INBOX_REFUSED_MAX 4096
#define INBOX_FILE "inbox.log"

struct inbox;

/* An inbox in front of l for transactions of chain chain_id (copied); adm
 * (may be NULL; borrowed, and must outlive the inbox) is passed to every
 * batch; at most max_txs transactions wait (0: INBOX_MAX_TXS). Queues what
 * l's data directory's inbox.log holds, then starts its thread. NULL with
 * why set when memory or threads run out or the log cannot be read. */
struct inbox *inbox_new(struct ledger *l, const char *chain_id,
			const struct ledger_admission *adm, size_t max_txs, char *why);
/* Stops taking transactions, hands what waits to the ledger, joins the
 * thread, frees. NULL is a no-op. */
void inbox_free(struct inbox *q);

/* Decodes bytes (len bytes of a signed transaction) with every check that
 * needs no signature and no state (tx_check_unsigned at now_s, seconds)
 * and queues a copy. hash receives the transaction's hash. Errors: the
 * decoder's and tx_check_unsigned's, TALLY_E_REPLAY when the same
 * transaction waits already, TALLY_E_UNAVAILABLE when the queue is full or
 * stopping, TALLY_E_IO or TALLY_E_DISKFULL when its log cannot be written,
 * TALLY_E_NOMEM. A batch of one for inbox_put_batch. */
int inbox_put(struct inbox *q, const uint8_t *bytes, size_t len, uint64_t now_s,
	      uint8_t hash[HASH_LEN], char *why);

/* inbox_put for items[0..n) (bytes and len in; rc, why and, when it
 * decoded, hash out), in order, with one hold of the queue's lock and one
 * write to inbox.log for those taken (txqueue_put_batch): each item is
 * answered as inbox_put would have answered it in its turn (the same
 * transaction twice in the batch: the second is TALLY_E_REPLAY; the queue
 * full: those after refused for now, those before taken). An item whose
 * rc is not 0 on entry (refused already) is skipped and left as it is.
 * When inbox.log cannot be written none of the batch is taken: each
 * that passed its checks answers with the log's error (TALLY_E_IO or
 * TALLY_E_DISKFULL). Returns how many were taken ("received"). */
size_t inbox_put_batch(struct inbox *q, struct ledger_batch_item *items, size_t n,
		       uint64_t now_s);

/* What the inbox knows of a transaction. */
enum inbox_state {
	INBOX_UNKNOWN = 0,           /* not waiting here, nor refused lately */
	INBOX_RECEIVED,              /* waiting for its checks */
	INBOX_REFUSED,               /* refused by the ledger: rc and why say why */
};
struct inbox_status {
	enum inbox_state state;
	int rc;                      /* INBOX_REFUSED: the tally_err */
	char why[WHY_MAX];
};
void inbox_status(struct inbox *q, const uint8_t hash[HASH_LEN], struct inbox_status *st);

/* Counters since the inbox was made, and what waits now. */
struct inbox_stats {
	uint64_t received;           /* taken by inbox_put(_batch) */
	uint64_t admitted;           /* then taken by the mempool (queued or held) */
	uint64_t refused;            /* then refused by the ledger */
	size_t waiting;              /* in the queue now */
};
void inbox_stats(struct inbox *q, struct inbox_stats *s);

#endif
