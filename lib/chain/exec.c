/* Block execution (see lib/chain/exec.h). */
#include "lib/chain/exec.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

int exec_finish(struct state *s, const struct block *b, const struct last_commit *lc,
		struct exec_result *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	rc = state_liveness(s, b->header.height, b->header.last_commit_hash, lc, &r->downtime);
	if (!rc)
		rc = state_end_block(s, b->header.height);
	if (rc)
		return rc;
	r->usage_size = s->usage_size;
	rc = s->be.usage_root(s->be.ctx, r->usage_size, r->usage_root);
	if (!rc)
		rc = state_root_update(s);
	if (rc)
		return rc;
	state_root(s, r->state_root);
	rc = state_validator_set(s, &r->next_vals);
	if (!rc)
		valset_hash(&r->next_vals, r->next_vals_hash);
	return rc;
}

int exec_block(struct state *s, const struct block *b, const struct last_commit *lc,
	       const struct tx *txs,
	       struct tx_receipt *receipts, struct exec_result *r, size_t *failed_at,
	       char *why)
{
	const struct block_header *h = &b->header;
	struct block_ctx bc = { h->chain_id, h->height, h->time_ns };
	struct tx *own = NULL;
	char sub[WHY_MAX];
	int rc = 0;

	if (!txs) {
		own = malloc(sizeof(*own));
		if (!own)
			return TALLY_E_NOMEM;
	}
	for (size_t i = 0; i < b->ntx; i++) {
		const uint8_t *p = b->txs[i].bytes;
		size_t n = b->txs[i].len;
		const struct tx *t = txs ? &txs[i] : own;
		uint8_t hash[HASH_LEN];

		if (!txs && (rc = tx_decode(own, p, n)) != 0) {
			why_set(why, rc, "block %" PRIu64 ": transaction %zu does not decode: %s",
				h->height, i, tally_strerror(rc));
		} else {
			block_tx_hash(&b->txs[i], hash);
			rc = state_apply_tx(s, &bc, t, p, n, hash, receipts ? &receipts[i] : NULL,
					    sub);
			if (rc)
				why_set(why, rc, "block %" PRIu64 ": transaction %zu (%s) does not"
					" apply: %s", h->height, i, tx_kind_name(t->kind),
					sub[0] ? sub : tally_strerror(rc));
		}
		if (rc) {
			if (failed_at)
				*failed_at = i;
			free(own);
			return rc;
		}
	}
	free(own);
	rc = exec_finish(s, b, lc, r);
	if (rc == TALLY_E_CERT)
		why_set(why, rc, "block %" PRIu64 ": the liveness rule needs the certificate of"
			" block %" PRIu64 " that its last_commit_hash names and the set that"
			" signed it", h->height,
			h->height - 1);
	else if (rc)
		why_set(why, rc, "block %" PRIu64 ": %s", h->height,
			rc == TALLY_E_VALSET ? "no validator with stake would be left"
					     : tally_strerror(rc));
	return rc;
}

int exec_check_header(const struct block_header *h, const struct exec_result *r, char *why)
{
	if (h->usage_size != r->usage_size || memcmp(h->usage_root, r->usage_root, HASH_LEN))
		return why_set(why, TALLY_E_USAGEROOT, "block %" PRIu64 ": the usage log after"
			       " the block is not the one the header names (size %" PRIu64
			       ", header says %" PRIu64 ")", h->height, r->usage_size,
			       h->usage_size);
	if (memcmp(h->state_root, r->state_root, HASH_LEN))
		return why_set(why, TALLY_E_STATEROOT, "block %" PRIu64 ": the state root does"
			       " not match the state its transactions produce", h->height);
	if (memcmp(h->next_validators_hash, r->next_vals_hash, HASH_LEN))
		return why_set(why, TALLY_E_VALSET, "block %" PRIu64 ": the next validator set"
			       " hash does not match the validators its state holds", h->height);
	return 0;
}

void exec_fill_header(struct block *b, const struct exec_result *r)
{
	struct block_header *h = &b->header;

	block_txs_root(b, h->txs_root);
	h->usage_size = r->usage_size;
	memcpy(h->usage_root, r->usage_root, HASH_LEN);
	memcpy(h->state_root, r->state_root, HASH_LEN);
	memcpy(h->next_validators_hash, r->next_vals_hash, HASH_LEN);
}
