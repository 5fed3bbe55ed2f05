/* Transactions: the only way the ledger state changes.
 *
 * Every transaction is one signed envelope
 *
 *     u8 version | u8 kind | str chain_id | fixed32 signer | u64 nonce | body | fixed64 sig
 *
 * where sig is the signer's Ed25519 signature, in domain SIG_TX and bound to
 * the chain's genesis hash, over every byte before it. The signer is the account (its public
 * key); nonce is that account's next nonce, so a transaction can be applied
 * once only. The transaction hash is SHA-256 of the whole encoding.
 *
 * A signed LEASE_OPEN is the signed lease contract (its signer is the tenant
 * and its nonce the contract's); a signed USAGE is the provider-signed usage
 * record that the usage log commits to. Lease ids are the hash of the
 * LEASE_OPEN transaction. */
#ifndef TALLY_TX_H
#define TALLY_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "contracts/provider.h"
#include "lib/codec.h"
#include "lib/crypto.h"

#define TX_VERSION 1
#define TX_MAX_SIZE 4096     /* no transaction encodes larger */

enum tx_kind {
	TX_LEASE_OPEN = 1,   /* tenant: a lease contract; deposit moves to escrow */
	TX_LEASE_START = 2,  /* provider: the VM runs */
	TX_USAGE = 3,        /* provider: one metering interval */
	TX_LEASE_CLOSE = 4,  /* tenant or provider: end of lease, escrow settles */
	TX_TRANSFER = 5,     /* any account: move funds */
	TX_STAKE = 6,        /* any account: bond funds as stake (a validator candidate) */
	TX_UNSTAKE = 7,      /* a staker: start unbonding stake */
	TX_EVIDENCE = 8,     /* any account: two conflicting votes of one validator (evidence.h) */
	TX_UNJAIL = 9,       /* a jailed validator, its jail period over: back to candidate */
	TX_PROVIDER = 10,    /* provider: its announcement, or its withdrawal (contracts/provider.h) */
};

struct tx_lease_ref {
	uint8_t lease_id[LEASE_ID_LEN];
};

struct tx_lease_close {
	uint8_t lease_id[LEASE_ID_LEN];
	uint8_t reason;              /* enum lease_close_reason */
};

struct tx_transfer {
	uint8_t to[PUBKEY_LEN];
	uint64_t amount;
};

struct tx_stake {
	uint64_t amount;
};

/* Two signed votes of one validator for the same height, round and type with
 * different block ids (lib/chain/evidence.h has the layout and the rules). */
struct tx_evidence {
	uint8_t vote_a[256];
	uint32_t vote_a_len;
	uint8_t vote_b[256];
	uint32_t vote_b_len;
};

struct tx {
	uint8_t version;
	uint8_t kind;                /* enum tx_kind */
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t signer[PUBKEY_LEN];
	uint64_t nonce;
	union {
		struct lease_contract open;
		struct tx_lease_ref start;
		struct usage_record usage;
		struct tx_lease_close close;
		struct tx_transfer transfer;
		struct tx_stake stake;       /* STAKE and UNSTAKE */
		struct tx_evidence evidence;
		struct provider_offer provider;
	} u;
	uint8_t sig[SIG_LEN];
};

const char *tx_kind_name(enum tx_kind k);

/* The usage log's rule (docs/FORMATS.md, sections 6 and 9): a USAGE
 * transaction enters the log as the RFC 6962 leaf hash of its whole signed
 * bytes p[n]; no other kind does. Returns true, leaf set, for one that
 * enters. What block verification, execution and the auditor all apply. */
bool tx_usage_leaf(const struct tx *t, const uint8_t *p, size_t n, uint8_t leaf[HASH_LEN]);
/* Whether t enters the usage log (the rule above), for a caller that holds
 * the leaf hash of its bytes already (a decoded block's, block.h). */
bool tx_enters_usage_log(const struct tx *t);

/* The signed payload (everything before the signature). An unknown kind sets
 * the encoder's error to TALLY_E_RANGE; an evidence vote above 256 bytes or a
 * transaction above TX_MAX_SIZE to TALLY_E_TOOLONG. */
void tx_encode_unsigned(struct enc *e, const struct tx *t);
/* The full transaction: payload then signature. */
void tx_encode(struct enc *e, const struct tx *t);
/* Strict decode of a full transaction; does not check the signature. */
int tx_decode(struct tx *t, const uint8_t *p, size_t n);
/* Sets t->sig: the signature in domain SIG_TX, bound to the chain whose
 * genesis hash is chain. */
int tx_sign(struct tx *t, const struct tally_key *k, const uint8_t chain[HASH_LEN]);
/* Checks the signature of an encoded transaction (decoded into t): the
 * signature at the end of p over the bytes before it, by t->signer in
 * t->chain_id. TALLY_E_SIGNATURE when it does not verify. */
int tx_verify(const struct tx *t, const uint8_t *p, size_t n, const uint8_t chain[HASH_LEN]);
void tx_hash(const uint8_t *p, size_t n, uint8_t out[HASH_LEN]);

/* The rules of a decoded transaction that need no ledger state: for this
 * chain (TALLY_E_CHAIN_ID), every key it names accepted by key_check
 * (TALLY_E_KEY: the signer, a transfer's recipient), and for a LEASE_OPEN
 * contract_check_open at now_s (unix seconds). The state transition applies them at the block's
 * time, the node at admission with its clock. */
int tx_check_rules(const struct tx *t, const char *chain_id, uint64_t now_s, char *why);
/* tx_check_rules at a block's time, block_time_ns (unix nanoseconds, the
 * header's time_ns), truncated to whole seconds: the one way the state
 * transition, the verifier and the auditor turn a block's time into the
 * rules' clock, so that they refuse the same transactions. */
int tx_check_rules_at_block(const struct tx *t, const char *chain_id, uint64_t block_time_ns,
			    char *why);

/* Stateless checks a node makes before the mempool: decodes strictly,
 * tx_check_rules at now_s, and the signature. why[WHY_MAX] receives a
 * sentence on failure. */
int tx_check(struct tx *t, const uint8_t *p, size_t n, const char *chain_id,
	     const uint8_t chain[HASH_LEN], uint64_t now_s, char *why);
/* tx_check without the signature, for bytes whose signature this node
 * verified already (the same bytes, so the same signature). */
int tx_check_unsigned(struct tx *t, const uint8_t *p, size_t n, const char *chain_id,
		      uint64_t now_s, char *why);

#endif
