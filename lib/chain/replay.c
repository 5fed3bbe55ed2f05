/* Replaying a chain (see lib/chain/replay.h). */
#include "lib/chain/replay.h"

#include <inttypes.h>
#include <string.h>

#include "lib/errors.h"

int replay_init(struct replay *r, const struct genesis *g, char *why)
{
	struct state_backend be;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = chain_verifier_from_genesis(&r->v, g);
	if (rc)
		return why_set(why, rc, "the genesis does not verify: %s", tally_strerror(rc));
	r->mem = memstate_new();
	if (!r->mem)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	be = memstate_backend(r->mem);
	rc = state_open(&r->state, &be, 0);
	if (!rc)
		rc = state_load_genesis(&r->state, g);
	if (!rc)
		rc = state_root_update(&r->state);
	if (rc) {
		replay_free(r);
		return why_set(why, rc, "cannot build the genesis state: %s", tally_strerror(rc));
	}
	return 0;
}

void replay_free(struct replay *r)
{
	state_close(&r->state);
	memstate_free(r->mem);
	r->mem = NULL;
}

int replay_block(struct replay *r, const struct block *b, const struct commit_cert *cert,
		 const struct validator_set *next_vals, struct tx_receipt *receipts, char *why)
{
	struct chain_verifier next = r->v;
	struct merkle_frontier usage;
	struct last_commit lc;
	struct exec_result er;
	int rc;

	if (r->broken)
		return why_set(why, TALLY_E_STATE, "block %" PRIu64 ": not replayed, an earlier"
			       " block failed", b->header.height);
	r->signed_ok = false;
	rc = chain_verify_header(&r->v, b, cert, &usage, why);
	if (rc)
		goto broken;
	r->signed_ok = true;
	chain_last_commit(&r->v, &lc);
	rc = exec_block(&r->state, b, &lc, NULL, receipts, &er, NULL, why);
	if (!rc)
		rc = exec_check_header(&b->header, &er, why);
	if (!rc)
		rc = chain_advance(&next, b, cert, &usage, next_vals ? next_vals : &er.next_vals,
				   why);
	if (rc)
		goto broken;
	r->v = next;
	return 0;
broken:
	r->broken = true;
	return rc;
}
