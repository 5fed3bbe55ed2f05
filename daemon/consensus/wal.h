/* The consensus write-ahead log: every input the round state machine acts
 * on (a message received or made here, a timeout that fired) is appended
 * and made durable (fdatasync) before the machine sees it, so that after a
 * crash the node replays the height it was in and ends up in the state it
 * had: the same locks, the same votes, no second signature for one step and
 * no decided block lost. CometBFT's consensus WAL is the model.
 *
 * The file holds the records of one height. Each record is framed as
 *
 *   u32 len | u32 crc | len bytes of body
 *
 * (little-endian; crc is CRC-32C, Castagnoli, of the body; 1 <= len <=
 * WAL_RECORD_MAX), and a body is one of
 *
 *   height:   u8 1 | fixed8 "tallywal" | u32 version (1) | u64 height
 *             (always the first record: the height the file is for)
 *   message:  u8 2 | u64 received_ns | u8 flags (bit 0: the proposal's block
 *             is valid, bit 1: it was timely; 0 for a vote) |
 *             u32 n | n bytes: the consensus message (msg.h)
 *   timeout:  u8 3 | u64 height | u32 round | u8 wait (enum cs_wait)
 *
 * When a height is decided and committed, the file is cut to nothing and
 * starts again with the next height's record.
 *
 * Opening reads every record. A record that runs past the end of the file
 * or whose CRC or body does not check is where the log ends: a process
 * killed inside an append leaves such a torn tail, and nothing after it was
 * acted on (the machine sees a record only once it is durable). The tail is
 * cut off and its size reported. */
#ifndef TALLY_CONSENSUS_WAL_H
#define TALLY_CONSENSUS_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/consensus/msg.h"

#define WAL_VERSION 1
#define WAL_RECORD_MAX (CS_MSG_MAX + 64)

enum wal_kind {
	WAL_HEIGHT = 1,
	WAL_MESSAGE = 2,
	WAL_TIMEOUT = 3,
};

#define WAL_FLAG_VALID 1
#define WAL_FLAG_TIMELY 2

struct wal_rec {
	uint8_t kind;                    /* enum wal_kind */
	uint64_t height;                 /* WAL_HEIGHT, WAL_TIMEOUT */
	uint32_t round;                  /* WAL_TIMEOUT */
	uint8_t wait;                    /* WAL_TIMEOUT */
	uint64_t received_ns;            /* WAL_MESSAGE */
	uint8_t flags;                   /* WAL_MESSAGE */
	const uint8_t *msg;              /* WAL_MESSAGE: borrowed */
	size_t msg_len;
};

struct wal;

/* Opens (creating, 0600) the log at path and reads its records, cutting a
 * torn tail. TALLY_E_IO / TALLY_E_DISKFULL with why[WHY_MAX]. */
int wal_open(struct wal **out, const char *path, char *why);
void wal_close(struct wal *w);
/* The records read at open, in order (their bytes live until wal_close). */
size_t wal_nrecords(const struct wal *w);
const struct wal_rec *wal_record(const struct wal *w, size_t i);
/* Bytes of torn tail cut off at open (0 when the log ended cleanly). */
uint64_t wal_cut_bytes(const struct wal *w);

/* Appends a record and makes it durable. On failure nothing of it stays in
 * the file (the file is cut back), or the log refuses every later append
 * when it cannot be cut back (TALLY_E_IO). */
int wal_append(struct wal *w, const struct wal_rec *r, char *why);
/* Empties the log and writes the height record of a new height, durably. */
int wal_start_height(struct wal *w, uint64_t height, char *why);

/* The record framing, for tests: CRC-32C of p (RFC 3720's polynomial). */
uint32_t wal_crc32c(const void *p, size_t n);

#endif
