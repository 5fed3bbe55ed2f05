/* The binary body of POST /v1/txs (Content-Type: application/octet-stream,
 * docs/PROTOCOL.md): the signed transactions as they are, without the JSON
 * and hex around them, laid out as the body of a TXS frame between peers:
 *
 *   u16 count (1..LEDGER_BATCH_MAX) | count x (u32 length (1..TX_MAX_SIZE) | bytes)
 *
 * integers little-endian as in every tally encoding (lib/codec.h), and
 * nothing after the last transaction. */
#ifndef TALLY_API_TXBODY_H
#define TALLY_API_TXBODY_H

#include <stddef.h>
#include <stdint.h>

/* One transaction of a body: a view into it. */
struct txbody_tx {
	const uint8_t *bytes;
	size_t len;
};

/* Splits body[len] into out[0..*n) (out holds max >= 1 views), checking its
 * framing whole: 0, or TALLY_E_ENCODING (cut short, a zero length, bytes
 * after the last transaction, a count of 0), TALLY_E_TOOLONG (more than
 * max transactions, one longer than TX_MAX_SIZE), with why[WHY_MAX] naming
 * the transaction and byte offset. Each transaction's own bytes are not
 * looked at: they are checked one by one when submitted. */
int txbody_split(const uint8_t *body, size_t len, struct txbody_tx *out, size_t max, size_t *n,
		 char *why);

#endif
