/* Consensus messages: what validators send each other, what the consensus
 * WAL records, byte for byte. Canonical encoding (lib/codec.h), decoded
 * strictly:
 *
 *   proposal:  u8 1 | u64 height | u32 round | u32 pol_round (two's complement,
 *              -1 or below round) | fixed32 block_id | fixed64 signature |
 *              u32 n | n bytes: the proposed block (block_encode) |
 *              u32 m | m bytes: the certificate of the block before it
 *              (cert_encode), the one its header's last_commit_hash names;
 *              m = 0 at height 1
 *   vote:      u8 2 | u8 type (1 prevote, 2 precommit) | u64 height |
 *              u32 round | fixed32 block_id | fixed32 validator |
 *              fixed64 signature
 *
 * The proposal signature is the round's proposer's over proposal_encode (domain
 * SIG_PROPOSAL), the vote's the validator's over vote_encode (domain
 * SIG_VOTE), both bound to the genesis hash (lib/crypto.h). Decoding checks
 * the form only; signatures and membership are the state machine's. */
#ifndef TALLY_CONSENSUS_MSG_H
#define TALLY_CONSENSUS_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/chain/tx.h"
#include "lib/codec.h"

enum cs_msg_kind {
	CS_MSG_PROPOSAL = 1,
	CS_MSG_VOTE = 2,
};

/* The largest block a proposal may carry: a header and BLOCK_MAX_TXS
 * transactions of TX_MAX_SIZE, each with its length. */
#define CS_BLOCK_BYTES_MAX (1024 + (size_t)BLOCK_MAX_TXS * (4 + TX_MAX_SIZE))
/* The largest encoded certificate. */
#define CS_CERT_BYTES_MAX (48 + (size_t)VALIDATORS_MAX * (PUBKEY_LEN + SIG_LEN))
/* The largest encoded message. */
#define CS_MSG_MAX (CS_BLOCK_BYTES_MAX + CS_CERT_BYTES_MAX + 128)

struct cs_msg {
	uint8_t kind;                    /* enum cs_msg_kind */
	struct proposal p;               /* CS_MSG_PROPOSAL */
	const uint8_t *block;            /* CS_MSG_PROPOSAL: borrowed (a view into the decoded bytes) */
	size_t block_len;
	const uint8_t *prev_cert;        /* CS_MSG_PROPOSAL: borrowed, may be empty */
	size_t prev_cert_len;
	struct vote v;                   /* CS_MSG_VOTE */
	uint8_t validator[PUBKEY_LEN];   /* CS_MSG_VOTE: the signer */
	uint8_t sig[SIG_LEN];
};

void cs_msg_encode(struct enc *e, const struct cs_msg *m);
/* Strict: unknown kind (TALLY_E_RANGE), a vote type other than prevote or
 * precommit, a pol_round out of range, a block above CS_BLOCK_BYTES_MAX or
 * a certificate above CS_CERT_BYTES_MAX (TALLY_E_TOOLONG), short input or
 * trailing bytes. m->block and m->prev_cert point into p. */
int cs_msg_decode(struct cs_msg *m, const uint8_t *p, size_t n);

#endif
