/* Chain verification as an auditor does it: every check works on the block
 * and certificate alone plus what the verifier carried from the block
 * before, so `tally chain verify` needs no ledger state. */
#include "lib/chain/verify.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"
#include "lib/chain/evidence.h"
#include "lib/chain/tx.h"

#define CHAIN_WHY_MAX 256

static int refuse(char *why, int rc, uint64_t height, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!why)
		return rc;
	n = snprintf(why, CHAIN_WHY_MAX, "block %llu: ", (unsigned long long)height);
	if (n < 0 || n >= CHAIN_WHY_MAX)
		return rc;
	va_start(ap, fmt);
	vsnprintf(why + n, CHAIN_WHY_MAX - n, fmt, ap);
	va_end(ap);
	return rc;
}

int chain_verifier_from_genesis(struct chain_verifier *v, const struct genesis *g)
{
	int rc;

	memset(v, 0, sizeof(*v));
	if (chain_id_valid(g->chain_id) != 0)
		return TALLY_E_CHAIN_ID;
	rc = valset_check(&g->validators);
	if (rc)
		return rc;
	strcpy(v->chain_id, g->chain_id);
	v->height = 0;
	v->time_ns = g->genesis_time_ns;
	genesis_hash(g, v->genesis_hash);
	memcpy(v->last_block_id, v->genesis_hash, HASH_LEN);
	v->vals = g->validators;
	merkle_frontier_init(&v->usage);
	return 0;
}

static bool frontier_matches(const struct merkle_frontier *f, uint64_t size,
			     const uint8_t root[HASH_LEN])
{
	uint8_t got[HASH_LEN];

	if (f->size != size)
		return false;
	merkle_frontier_root(f, got);
	return memcmp(got, root, HASH_LEN) == 0;
}

int chain_verifier_from_checkpoint(struct chain_verifier *v, const struct chain_checkpoint *cp,
				   const uint8_t pinned_block_id[HASH_LEN], const struct genesis *g,
				   char *why)
{
	const struct block_header *h = &cp->header;
	uint8_t id[HASH_LEN], vals_hash[HASH_LEN], genesis_id[HASH_LEN];
	char got[17], want[17];
	int rc;

	memset(v, 0, sizeof(*v));
	if (why)
		why[0] = '\0';
	if (h->version != BLOCK_VERSION)
		return refuse(why, TALLY_E_VERSION, h->height, "unknown header version %u",
			      h->version);
	/* The header is from the source, only its id is pinned: its chain
	 * must be the genesis's before anything is read from it. */
	if (chain_id_valid(h->chain_id) != 0 || strcmp(h->chain_id, g->chain_id) != 0)
		return refuse(why, TALLY_E_CHAIN_ID, h->height,
			      "the checkpoint is for chain '%.48s', the genesis is chain '%s'",
			      h->chain_id, g->chain_id);
	block_id(h, id);
	if (memcmp(id, pinned_block_id, HASH_LEN) != 0) {
		hex_encode(id, 8, got);
		hex_encode(pinned_block_id, 8, want);
		return refuse(why, TALLY_E_LINK, h->height, "its id %s... is not the pinned block"
			      " id %s...: the source holds another block at this height", got, want);
	}
	rc = valset_check(&cp->vals);
	if (rc)
		return refuse(why, rc, h->height, "the validator set given for block %llu is"
			      " malformed", (unsigned long long)h->height + 1);
	valset_hash(&cp->vals, vals_hash);
	if (memcmp(vals_hash, h->next_validators_hash, HASH_LEN) != 0)
		return refuse(why, TALLY_E_VALSET, h->height, "the validator set given for block"
			      " %llu does not match the header's next validators hash",
			      (unsigned long long)h->height + 1);
	if (cp->cert.height != h->height || memcmp(cp->cert.block_id, id, HASH_LEN) != 0)
		return refuse(why, TALLY_E_CERT, h->height,
			      "commit certificate is for another block");
	/* The certificate was signed by the set named in validators_hash. When
	 * that set is the one handed over, its signatures are checked too; when
	 * the set changed at this block the pinned id is the trust, and the next
	 * block's last_commit_hash still binds this certificate. */
	genesis_hash(g, genesis_id);
	if (memcmp(vals_hash, h->validators_hash, HASH_LEN) == 0) {
		rc = cert_verify(&cp->cert, &cp->vals, genesis_id);
		if (rc)
			return refuse(why, rc, h->height, "commit certificate does not verify: %s",
				      tally_strerror(rc));
	}
	if (!frontier_matches(&cp->usage, h->usage_size, h->usage_root))
		return refuse(why, TALLY_E_USAGEROOT, h->height, "the usage log given (%llu"
			      " records) is not the one the header names (%llu records)",
			      (unsigned long long)cp->usage.size,
			      (unsigned long long)h->usage_size);
	strcpy(v->chain_id, h->chain_id);
	memcpy(v->genesis_hash, genesis_id, HASH_LEN);
	v->height = h->height;
	v->time_ns = h->time_ns;
	memcpy(v->last_block_id, id, HASH_LEN);
	cert_hash(&cp->cert, v->last_cert_hash);
	v->last_cert = cp->cert;
	v->vals = cp->vals;
	/* The set that signed the checkpoint is known when it did not change. */
	if (memcmp(vals_hash, h->validators_hash, HASH_LEN) == 0)
		v->last_vals = cp->vals;
	v->usage = cp->usage;
	return 0;
}

/* Links, heights, time, validator set and proposer: what the header claims
 * about its place in the chain. */
static int check_header(const struct chain_verifier *v, const struct block_header *h, char *why)
{
	uint8_t hash[HASH_LEN];
	char hex[17];

	if (h->version != BLOCK_VERSION)
		return refuse(why, TALLY_E_VERSION, h->height, "unknown header version %u",
			      h->version);
	if (strcmp(h->chain_id, v->chain_id) != 0)
		return refuse(why, TALLY_E_CHAIN_ID, h->height,
			      "block is for chain '%s', this chain is '%s'", h->chain_id,
			      v->chain_id);
	if (h->height != v->height + 1)
		return refuse(why, TALLY_E_HEIGHT, h->height,
			      "height out of sequence, expected %llu after block %llu",
			      (unsigned long long)v->height + 1, (unsigned long long)v->height);
	if (h->time_ns <= v->time_ns)
		return refuse(why, TALLY_E_RANGE, h->height,
			      "time %llu ns is not after the previous time %llu ns",
			      (unsigned long long)h->time_ns, (unsigned long long)v->time_ns);
	if (memcmp(h->prev_block_id, v->last_block_id, HASH_LEN) != 0)
		return refuse(why, TALLY_E_LINK, h->height,
			      v->height ? "previous block id does not match block %llu"
					: "previous block id is not the genesis hash",
			      (unsigned long long)v->height);
	if (memcmp(h->last_commit_hash, v->last_cert_hash, HASH_LEN) != 0)
		return refuse(why, TALLY_E_LINK, h->height,
			      "last commit hash does not match the certificate of block %llu",
			      (unsigned long long)v->height);
	valset_hash(&v->vals, hash);
	if (memcmp(h->validators_hash, hash, HASH_LEN) != 0)
		return refuse(why, TALLY_E_VALSET, h->height,
			      "validators hash does not match the current validator set");
	if (!valset_find(&v->vals, h->proposer)) {
		hex_encode(h->proposer, 8, hex);
		return refuse(why, TALLY_E_UNAUTHORIZED, h->height,
			      "proposer %s is not in the validator set", hex);
	}
	return 0;
}

/* Every transaction decodes strictly, is for this chain and is signed by
 * its signer (unless v->tx_verified says this node checked it already);
 * USAGE transactions are appended to the usage log. */
static bool tx_already_verified(const struct chain_verifier *v, const struct block_tx *bt)
{
	uint8_t hash[HASH_LEN];

	if (!v->tx_verified)
		return false;
	block_tx_hash(bt, hash);
	return v->tx_verified(v->tx_verified_ctx, hash);
}

static int check_txs(const struct chain_verifier *v, const struct block *b,
		     struct merkle_frontier *usage, char *why)
{
	uint64_t height = b->header.height;
	uint8_t root[HASH_LEN], leaf[HASH_LEN];
	char sub[CHAIN_WHY_MAX];
	struct tx t;
	int rc;

	if (b->ntx > BLOCK_MAX_TXS)
		return refuse(why, TALLY_E_TOOLONG, height, "%zu transactions, above the limit %d",
			      b->ntx, BLOCK_MAX_TXS);
	block_txs_root(b, root);
	if (memcmp(root, b->header.txs_root, HASH_LEN) != 0)
		return refuse(why, TALLY_E_TXROOT, height, "transactions root mismatch");
	for (size_t i = 0; i < b->ntx; i++) {
		const uint8_t *p = b->txs[i].bytes;
		size_t n = b->txs[i].len;

		rc = tx_decode(&t, p, n);
		if (rc)
			return refuse(why, rc, height, "transaction %zu does not decode: %s", i,
				      tally_strerror(rc));
		if (strcmp(t.chain_id, v->chain_id) != 0)
			return refuse(why, TALLY_E_CHAIN_ID, height,
				      "transaction %zu is for chain '%s'", i, t.chain_id);
		rc = tx_already_verified(v, &b->txs[i]) ? 0 :
		     tx_verify_all(&t, p, n, v->genesis_hash, sub);
		/* The rules that need no state (keys, a LEASE_OPEN's contract at
		 * the block's time): the ones state_apply_tx applies first, here
		 * too, so that a verifier that does not execute (from a
		 * checkpoint) refuses what every validator would. */
		if (!rc)
			rc = tx_check_rules_at_block(&t, v->chain_id, b->header.time_ns, sub);
		if (rc)
			return refuse(why, rc, height, "transaction %zu (%s): %s", i,
				      tx_kind_name(t.kind), sub);
		if (tx_enters_usage_log(&t)) {
			block_tx_leaf(&b->txs[i], leaf);   /* its leaf in txs_root too */
			merkle_frontier_append(usage, leaf);
		}
	}
	if (usage->size != b->header.usage_size)
		return refuse(why, TALLY_E_USAGEROOT, height,
			      "usage log size mismatch (recomputed %llu, header says %llu)",
			      (unsigned long long)usage->size,
			      (unsigned long long)b->header.usage_size);
	if (!frontier_matches(usage, b->header.usage_size, b->header.usage_root))
		return refuse(why, TALLY_E_USAGEROOT, height,
			      "usage log root mismatch (the header's is not the root of its %llu records)",
			      (unsigned long long)usage->size);
	return 0;
}

static int check_cert(const struct chain_verifier *v, const struct block_header *h,
		      const struct commit_cert *cert, char *why)
{
	uint8_t id[HASH_LEN];
	int rc;

	if (!cert)
		return refuse(why, TALLY_E_CERT, h->height, "no commit certificate");
	block_id(h, id);
	if (cert->height != h->height || memcmp(cert->block_id, id, HASH_LEN) != 0)
		return refuse(why, TALLY_E_CERT, h->height,
			      "commit certificate is for another block");
	rc = cert_verify(cert, &v->vals, v->genesis_hash);
	switch (rc) {
	case 0:
		return 0;
	case TALLY_E_QUORUM:
		return refuse(why, rc, h->height,
			      "commit certificate signers hold 2/3 of the stake or less");
	case TALLY_E_SIGNATURE:
		return refuse(why, rc, h->height,
			      "a commit certificate signature does not verify");
	default:
		return refuse(why, rc, h->height,
			      "commit certificate signers are repeated, out of order or not validators");
	}
}

/* The set that signs the next block. */
static int advance_vals(struct chain_verifier *v, const struct block_header *h,
			const struct validator_set *next_vals, char *why)
{
	uint8_t hash[HASH_LEN];

	if (memcmp(h->next_validators_hash, h->validators_hash, HASH_LEN) == 0)
		return 0;
	if (!next_vals)
		return refuse(why, TALLY_E_VALSET, h->height,
			      "the validator set changes but the new set was not given");
	if (valset_check(next_vals) != 0)
		return refuse(why, TALLY_E_VALSET, h->height,
			      "the next validator set is malformed");
	valset_hash(next_vals, hash);
	if (memcmp(hash, h->next_validators_hash, HASH_LEN) != 0)
		return refuse(why, TALLY_E_VALSET, h->height,
			      "the given next validator set does not match next validators hash");
	v->vals = *next_vals;
	return 0;
}

int chain_verify_proposal(const struct chain_verifier *v, const struct block *b,
			  struct merkle_frontier *usage, char *why)
{
	int rc;

	if (why)
		why[0] = '\0';
	*usage = v->usage;
	rc = check_header(v, &b->header, why);
	if (!rc)
		rc = check_txs(v, b, usage, why);
	return rc;
}

int chain_verify_header(const struct chain_verifier *v, const struct block *b,
			const struct commit_cert *cert, struct merkle_frontier *usage, char *why)
{
	int rc = chain_verify_proposal(v, b, usage, why);

	if (!rc)
		rc = check_cert(v, &b->header, cert, why);
	return rc;
}

int chain_advance(struct chain_verifier *v, const struct block *b,
		  const struct commit_cert *cert, const struct merkle_frontier *usage,
		  const struct validator_set *next_vals, char *why)
{
	const struct block_header *h = &b->header;
	struct validator_set signers = v->vals;
	int rc = advance_vals(v, h, next_vals, why);

	if (rc)
		return rc;
	v->last_vals = signers;
	v->usage = *usage;
	v->height = h->height;
	v->time_ns = h->time_ns;
	block_id(h, v->last_block_id);
	cert_hash(cert, v->last_cert_hash);
	v->last_cert = *cert;
	return 0;
}

int chain_check_block_time(uint64_t time_ns, uint64_t now_ns, uint64_t max_future_ns,
			   char *why)
{
	uint64_t bound = now_ns + max_future_ns;

	if (bound < now_ns)
		bound = UINT64_MAX;
	if (time_ns <= bound)
		return 0;
	return why_set(why, TALLY_E_FUTURE, "its time is %llu ms ahead of this node's clock (at"
		       " most %llu ms is taken)", (unsigned long long)((time_ns - now_ns) / 1000000),
		       (unsigned long long)(max_future_ns / 1000000));
}

int chain_adopt_last_cert(struct chain_verifier *v, const struct block_header *next,
			  const struct commit_cert *c, char *why)
{
	int rc;

	if (why)
		why[0] = '\0';
	if (next->height != v->height + 1)
		return refuse(why, TALLY_E_HEIGHT, next->height,
			      "height out of sequence, expected %llu after block %llu",
			      (unsigned long long)v->height + 1, (unsigned long long)v->height);
	if (v->height == 0 || c->height != v->height ||
	    memcmp(c->block_id, v->last_block_id, HASH_LEN) != 0)
		return refuse(why, TALLY_E_CERT, v->height + 1,
			      "the certificate it names is not one for block %llu",
			      (unsigned long long)v->height);
	if (v->last_vals.n == 0)
		return refuse(why, TALLY_E_VALSET, v->height + 1,
			      "the validator set that signed block %llu is not known",
			      (unsigned long long)v->height);
	rc = cert_verify(c, &v->last_vals, v->genesis_hash);
	if (rc)
		return refuse(why, rc, v->height + 1,
			      "the certificate it names for block %llu does not verify: %s",
			      (unsigned long long)v->height, tally_strerror(rc));
	cert_hash(c, v->last_cert_hash);
	v->last_cert = *c;
	return 0;
}

void chain_last_commit(const struct chain_verifier *v, struct last_commit *lc)
{
	lc->cert = v->height ? &v->last_cert : NULL;
	lc->signers = v->last_vals.n ? &v->last_vals : NULL;
}

int chain_verify_block(struct chain_verifier *v, const struct block *b,
		       const struct commit_cert *cert, const struct validator_set *next_vals,
		       char *why)
{
	/* Work on a copy so a failed block leaves the verifier where it was. */
	struct chain_verifier next = *v;
	struct merkle_frontier usage;
	int rc = chain_verify_header(v, b, cert, &usage, why);

	if (!rc)
		rc = chain_advance(&next, b, cert, &usage, next_vals, why);
	if (!rc)
		*v = next;
	return rc;
}
