/* The liveness rule: missed commits counted from the certificate each block
 * names, and jailing without slashing for downtime (rule in
 * lib/chain/state.h, state_liveness; docs/FORMATS.md section 10.10). */
#include "lib/chain/state.h"

#include <string.h>

#include "lib/errors.h"

/* True when c holds a precommit of pub (its signers are in ascending
 * order, checked when it was verified; a linear scan needs no order). */
static bool cert_has(const struct commit_cert *c, const uint8_t pub[PUBKEY_LEN])
{
	for (size_t i = 0; i < c->n; i++)
		if (!memcmp(c->sigs[i].validator, pub, PUBKEY_LEN))
			return true;
	return false;
}

/* Whether jailing pub, with stake (its power at the last height) on top of
 * already (the power this block jailed before it) of total, keeps the
 * chain live: less than 1/3 of the power at once, and a set left. */
static int may_jail(struct state *s, const uint8_t pub[PUBKEY_LEN],
		    const struct validator_entry *jailed, uint64_t already, uint64_t stake,
		    uint64_t total, bool *ok)
{
	struct validator_set set;
	int rc;

	*ok = false;
	if (((unsigned __int128)already + stake) * 3 >= total)
		return 0;
	rc = state_validator_set_if(s, pub, jailed, &set);
	if (rc == TALLY_E_VALSET)
		return 0;
	if (rc)
		return rc;
	*ok = true;
	return 0;
}

int state_liveness(struct state *s, uint64_t height, const uint8_t named[HASH_LEN],
		   const struct last_commit *lc, struct liveness_jailed *jailed)
{
	const struct validator_set *set;
	struct chain_params p;
	uint8_t hash[HASH_LEN];
	uint64_t total, gone = 0;
	int rc;

	if (jailed)
		jailed->n = 0;
	rc = state_params(s, &p);
	if (rc)
		return rc;
	if (p.liveness_window == 0 || height < 2)
		return 0;
	if (!lc || !lc->cert || !lc->signers)
		return TALLY_E_CERT;
	cert_hash(lc->cert, hash);
	if (memcmp(hash, named, HASH_LEN) || lc->cert->height != height - 1)
		return TALLY_E_CERT;
	set = lc->signers;
	total = valset_total_stake(set);
	for (size_t i = 0; i < set->n; i++) {
		const uint8_t *pub = set->v[i].pubkey;
		struct validator_entry v;
		struct liveness l;
		bool ok;

		rc = state_validator_get(s, pub, &v);
		if (rc == TALLY_E_NOTFOUND || (!rc && v.jailed))
			continue;   /* jailed (or gone): not counted */
		if (rc)
			return rc;
		rc = state_liveness_get(s, pub, &l);
		if (rc && rc != TALLY_E_NOTFOUND)
			return rc;
		if (cert_has(lc->cert, pub))
			l.missed = 0;
		else if (l.missed < UINT64_MAX)
			l.missed++;
		if (l.missed >= p.liveness_window) {
			v.jailed = true;
			rc = may_jail(s, pub, &v, gone, set->v[i].stake, total, &ok);
			if (rc)
				return rc;
			if (ok) {
				gone += set->v[i].stake;
				l.jailed_until = height + p.jail_blocks;
				l.missed = 0;
				rc = state_validator_put(s, pub, &v);
				if (rc)
					return rc;
				if (jailed)
					memcpy(jailed->pub[jailed->n++], pub, PUBKEY_LEN);
			}
		}
		rc = state_liveness_put(s, pub, &l);
		if (rc)
			return rc;
	}
	return 0;
}
