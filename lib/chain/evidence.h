/* Evidence of equivocation: what an EVIDENCE transaction carries, and the
 * rules it must meet (docs/FORMATS.md, "EVIDENCE").
 *
 * Each of its two votes is one signed vote,
 *
 *     vote (u8 type | u64 height | u32 round | fixed32 block_id) |
 *     fixed32 validator | fixed64 signature                 (141 bytes)
 *
 * the signature the validator's over the vote in domain SIG_VOTE, bound to
 * the chain's genesis hash (lib/chain/block.h, vote_sign). Two votes are
 * evidence when one validator signed both for the same height, round and
 * type with different block ids; vote_a's block id is the smaller
 * (bytewise), so one equivocation has one encoding.
 *
 * What the chain does with it (lib/chain/state.c, docs/FORMATS.md 10.9):
 * the offender is slashed and jailed, once per offence. Pure code. */
#ifndef TALLY_CHAIN_EVIDENCE_H
#define TALLY_CHAIN_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include "lib/chain/block.h"
#include "lib/chain/tx.h"

#define SIGNED_VOTE_LEN (VOTE_LEN + PUBKEY_LEN + SIG_LEN)

struct signed_vote {
	struct vote v;
	uint8_t validator[PUBKEY_LEN];
	uint8_t sig[SIG_LEN];
};

void signed_vote_encode(struct enc *e, const struct signed_vote *s);
/* Strict: exactly SIGNED_VOTE_LEN bytes, a prevote or precommit. */
int signed_vote_decode(struct signed_vote *s, const uint8_t *p, size_t n);

/* The EVIDENCE body for two conflicting votes, in canonical order.
 * TALLY_E_INVALID when they are not evidence (another validator, height,
 * round or type, or the same block). */
int evidence_make(struct tx_evidence *out, const struct signed_vote *x,
		  const struct signed_vote *y);

/* The rules that need no state and no signature check: both votes decode,
 * one validator (a valid Ed25519 key), one height, round and type, block ids
 * different and in canonical order. a and b (may be NULL) receive the votes.
 * 0, or TALLY_E_TRUNCATED / TALLY_E_TRAILING / TALLY_E_RANGE (a vote that
 * does not decode), TALLY_E_KEY, TALLY_E_INVALID (not a conflict),
 * TALLY_E_ENCODING (not in canonical order), with why. */
int evidence_check(const struct tx_evidence *ev, struct signed_vote *a, struct signed_vote *b,
		   char *why);

/* Both votes' signatures, for the chain whose genesis hash is chain:
 * TALLY_E_SIGNATURE when one does not verify (and the rules above first). */
int evidence_verify(const struct tx_evidence *ev, const uint8_t chain[HASH_LEN], char *why);

/* Every signature a transaction carries: its signer's (tx_verify) and, for
 * EVIDENCE, the two votes'. What block verification and the auditor check
 * once per transaction. why (may be NULL) names whose signature failed: the
 * signer's, or the accused validator's in an EVIDENCE (an offence pinned on
 * a validator that did not sign it). */
int tx_verify_all(const struct tx *t, const uint8_t *p, size_t n, const uint8_t chain[HASH_LEN],
		  char *why);

#endif
