/* The mempool's durable copy: an append-only log, DATA_DIR/mempool.log, of
 * the signed transactions the node accepted (queued or held), so that a
 * killed tallyd finds them again when it restarts.
 *
 * A record is
 *   u32 len (little-endian) | len bytes: the signed transaction | check
 * where check is the first PENDING_CHECK_LEN bytes of SHA-256 of the bytes
 * (of the transaction's tx_hash, lib/chain/tx.h, which is that SHA-256).
 * Reading stops at the first record that is short (a torn tail: the process
 * died inside a write), whose length is 0 or above TX_MAX_SIZE, or whose
 * check does not match; what follows it is not read. Any file content reads
 * without a crash.
 *
 * Nothing is fsynced: a record is in the kernel once write() returns, which
 * survives the process being killed, not a power failure or a kernel crash.
 * The log may hold transactions a block has committed since (until the
 * ledger compacts it) and a record twice: the ledger submits each record
 * again, with every check, when it reads the log (daemon/ledger/ledger.c),
 * so a stale or repeated record costs a refusal, never a wrong state.
 *
 * Not thread safe: the ledger calls it under its mempool lock, a txqueue
 * with a log (txqueue.h: the inbox's, inbox.log) under the queue's. */
#ifndef TALLY_LEDGER_PENDING_H
#define TALLY_LEDGER_PENDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/chain/tx.h"

#define PENDING_FILE "mempool.log"
#define PENDING_CHECK_LEN 8
/* The largest record: a transaction of TX_MAX_SIZE bytes, framed. */
#define PENDING_RECORD_MAX (4 + TX_MAX_SIZE + PENDING_CHECK_LEN)

struct pending;

/* Reads DATA_DIR/NAME (PENDING_FILE, or another log of the same format:
 * the inbox's, daemon/ledger/inbox.h) as a previous run left it (a missing
 * file reads as empty): the whole records before the first bad one are kept
 * in memory for pending_record(). The file is not written until
 * pending_rewrite_begin() or pending_truncate(): until then pending_append()
 * writes nothing. Errors: TALLY_E_NOMEM; TALLY_E_IO (the file exists and
 * cannot be read), TALLY_E_INVALID (the path is too long), with why. */
int pending_open_named(struct pending **out, const char *data_dir, const char *name, char *why);
/* pending_open_named for a start that restores the log's transactions: on
 * failure why says what could not be read and to move the file aside to
 * start without them (the start stops rather than lose them). The same
 * errors. */
int pending_open_to_restore(struct pending **out, const char *data_dir, const char *name,
			    char *why);
void pending_close(struct pending *p);

/* The records read at open, in file order: how many, and record i's
 * transaction bytes (*len of them; NULL past the end); the bytes of file
 * left behind the last whole record (a torn or damaged tail, dropped by the
 * next rewrite). pending_forget_read() frees them. */
size_t pending_count(const struct pending *p);
const uint8_t *pending_record(const struct pending *p, size_t i, size_t *len);
uint64_t pending_cut_bytes(const struct pending *p);
void pending_forget_read(struct pending *p);

/* Frames a transaction of len bytes (1 .. TX_MAX_SIZE) as a record into out,
 * which has room for 4 + len + PENDING_CHECK_LEN bytes (PENDING_RECORD_MAX
 * holds any); returns the record's length (0 for a length out of range,
 * which frames nothing). pending_frame_hashed takes the transaction's
 * hash (tx_hash(tx, len): SHA-256 of the bytes, whose first
 * PENDING_CHECK_LEN bytes are the check) from a caller that has it, so the
 * bytes are not hashed again; pending_frame hashes them. */
size_t pending_frame_hashed(uint8_t *out, const uint8_t *tx, size_t len,
			    const uint8_t hash[HASH_LEN]);
size_t pending_frame(uint8_t *out, const uint8_t *tx, size_t len);

/* Appends n bytes of records framed by pending_frame() with one write(),
 * at the end of the last whole record. A write that fails or falls short
 * is cut back, so the next append does not follow a torn record; when even
 * that fails, appends stop until the next rewrite or truncation. 0 when
 * the file is not open for writing yet; TALLY_E_IO or TALLY_E_DISKFULL with
 * why otherwise. */
int pending_append(struct pending *p, const uint8_t *recs, size_t n, char *why);

/* Bytes of whole records in the file (what pending_append and the rewrite
 * wrote since open). */
uint64_t pending_size(const struct pending *p);

/* Empties the file (creating it if needed): the pool is empty. TALLY_E_IO
 * with why. */
int pending_truncate(struct pending *p, char *why);

/* Compaction: a new file, DATA_DIR/mempool.log.tmp, receives the pool's
 * transactions one pending_rewrite_add() at a time, and
 * pending_rewrite_commit() renames it over the log, which appends go to from
 * then on. On any failure the temp file is removed and the log is left as it
 * was (appends go on there). TALLY_E_IO or TALLY_E_DISKFULL with why
 * (TALLY_E_NOMEM without); add returns it once the rewrite failed and then
 * writes nothing, and commit returns it too. */
int pending_rewrite_begin(struct pending *p, char *why);
int pending_rewrite_add(struct pending *p, const uint8_t *tx, size_t len, char *why);
int pending_rewrite_commit(struct pending *p, char *why);

#endif
