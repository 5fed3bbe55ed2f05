/* The peer protocol's messages (docs/PROTOCOL.md, "Peer protocol"): their
 * canonical encodings (lib/codec.h) and the frame around them.
 *
 * On the TLS stream every message is one frame
 *
 *     u32 length | u8 type | body (length - 1 bytes)
 *
 * with length little-endian like every codec integer, and at most
 * wire_max_len(type): a receiver reads the five-byte head, refuses an
 * unknown type or a length above the type's maximum before it buffers the
 * body, and decodes the body strictly (every byte consumed, every field in
 * range). Pure code: no I/O, no clock. */
#ifndef TALLY_NET_WIRE_H
#define TALLY_NET_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/consensus/msg.h"
#include "lib/chain/block.h"
#include "lib/chain/tx.h"
#include "lib/codec.h"
#include "lib/crypto.h"

#define WIRE_MAGIC "tallyp2p"          /* 8 bytes, no NUL */
#define WIRE_VERSION 3           /* 2: one CONSENSUS type, BLOCK with prev_cert;
                                    3: TXS carries up to WIRE_TXS_MAX transactions */
#define WIRE_HEAD_LEN 5                /* u32 length | u8 type */
/* Blocks asked for in one GET_BLOCKS. */
#define WIRE_BLOCKS_MAX 64
/* Transactions in one TXS frame: a node under load sends its peers a few
 * frames a block interval, not one per transaction. */
#define WIRE_TXS_MAX 256
/* The largest block body (lib/chain/block.h): a header, a count and
 * BLOCK_MAX_TXS transactions of TX_MAX_SIZE, each length-prefixed. */
#define WIRE_HEADER_MAX 512
#define WIRE_BLOCK_MAX (WIRE_HEADER_MAX + 4 + (size_t)BLOCK_MAX_TXS * (4 + TX_MAX_SIZE))
/* A commit certificate of VALIDATORS_MAX signatures. */
#define WIRE_CERT_MAX (8 + 4 + HASH_LEN + 4 + (size_t)VALIDATORS_MAX * (PUBKEY_LEN + SIG_LEN))

enum wire_type {
	WIRE_HELLO = 1,        /* first message each way: protocol, chain, key, tip */
	WIRE_STATUS = 2,       /* the sender's new tip */
	WIRE_TXS = 3,          /* transactions its sender admitted to its mempool */
	WIRE_GET_BLOCKS = 4,   /* committed blocks from..from+count-1, please */
	WIRE_BLOCK = 5,        /* one committed block, its certificate, the previous one's */
	WIRE_NO_BLOCK = 6,     /* the sender has no block at this height */
	WIRE_CONSENSUS = 7,    /* a proposal or vote in the engine's encoding (msg.h) */
	/* 8: VOTE in version 1; unknown now */
	WIRE_PING = 9,
	WIRE_PONG = 10,
	WIRE__COUNT
};

const char *wire_type_name(uint8_t type);
/* Largest frame length (type byte plus body) for a type; 0 for an unknown
 * type. wire_max_frame: the largest of any type. */
size_t wire_max_len(uint8_t type);
size_t wire_max_frame(void);

struct wire_hello {
	uint16_t version;                    /* WIRE_VERSION */
	uint8_t genesis_hash[HASH_LEN];      /* the chain: a peer of another is refused */
	char chain_id[CHAIN_ID_MAX + 1];     /* for the refusal's message */
	uint8_t node_key[PUBKEY_LEN];        /* must be the key the TLS handshake proved */
	uint64_t height;                     /* the sender's tip */
	uint8_t last_block_id[HASH_LEN];
};

struct wire_status {
	uint64_t height;
	uint8_t last_block_id[HASH_LEN];
};

struct wire_get_blocks {
	uint64_t from;                       /* >= 1 */
	uint32_t count;                      /* 1..WIRE_BLOCKS_MAX */
};

/* Views into the frame's bytes (not copied). The certificate of the block
 * before (empty at height 1) is the one this block's header names: a node
 * that holds another one for that block adopts it (chain_adopt_last_cert). */
struct wire_block {
	uint64_t height;
	const uint8_t *block;  size_t block_len;   /* block_encode */
	const uint8_t *cert;   size_t cert_len;    /* cert_encode */
	const uint8_t *prev_cert;  size_t prev_cert_len;
};

struct wire_bytes {
	const uint8_t *bytes;
	size_t len;
};

/* 1..WIRE_TXS_MAX transactions, each 1..TX_MAX_SIZE bytes. To encode, items
 * holds them; decoding checks every one and leaves body (the n encoded
 * transactions after the count) for wire_txs_next to walk, and a decoded
 * one (items NULL) encodes back to the same bytes. */
struct wire_txs {
	uint16_t n;
	const struct wire_bytes *items;      /* encode */
	const uint8_t *body;                 /* decode */
	size_t len;
};

/* Walks a decoded TXS: each call gives the next transaction (a view into
 * the frame) and true, or false after the last. */
struct wire_txs_iter {
	const uint8_t *p, *end;
};
void wire_txs_begin(struct wire_txs_iter *it, const struct wire_txs *t);
bool wire_txs_next(struct wire_txs_iter *it, struct wire_bytes *tx);

/* A decoded frame body, by type. */
struct wire_msg {
	uint8_t type;
	union {
		struct wire_hello hello;
		struct wire_status status;
		struct wire_txs txs;
		struct wire_get_blocks get_blocks;
		struct wire_block block;
		uint64_t no_block;               /* height */
		/* The whole body: one message as daemon/consensus/msg.h encodes
		 * it, checked by cs_msg_decode (its form only: signatures and
		 * membership are the engine's). */
		struct { const uint8_t *bytes; size_t len; } consensus;
		uint64_t ping;                   /* PING and PONG: a nonce echoed back */
	} u;
};

/* Appends one whole frame (head and body) of m to e; sets the encoder's
 * error to TALLY_E_TOOLONG when it would exceed wire_max_len, TALLY_E_RANGE
 * for an unknown type. */
void wire_encode(struct enc *e, const struct wire_msg *m);

/* Reads a frame head: the type and the body length that follows. 0, or
 * TALLY_E_RANGE for an unknown type, TALLY_E_TOOLONG for a length above the
 * type's maximum, TALLY_E_TRUNCATED for a zero length. */
int wire_head(const uint8_t head[WIRE_HEAD_LEN], uint8_t *type, size_t *body_len);

/* Decodes a body of the given type strictly; views in m point into body.
 * 0, or the codec's error (TALLY_E_TRUNCATED, TALLY_E_TRAILING,
 * TALLY_E_TOOLONG, TALLY_E_ENCODING, TALLY_E_RANGE, TALLY_E_VERSION for a
 * HELLO of another magic or version). */
int wire_decode(uint8_t type, const uint8_t *body, size_t len, struct wire_msg *m);

#endif
