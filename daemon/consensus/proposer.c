/* Proposer selection (see proposer.h for the algorithm). */
#include "daemon/consensus/proposer.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

static int64_t total_power(const struct validator_set *s)
{
	uint64_t t = valset_total_stake(s);

	/* Stakes beyond INT64_MAX / 8 would overflow priorities; the genesis and
	 * STAKE rules keep totals far below that, so clamp rather than wrap. */
	return t > (uint64_t)INT64_MAX / 8 ? INT64_MAX / 8 : (int64_t)t;
}

static void rescale(struct validator_set *s, int64_t total)
{
	int64_t lo = INT64_MAX, hi = INT64_MIN;
	int64_t limit = 2 * total;

	for (size_t i = 0; i < s->n; i++) {
		lo = s->v[i].priority < lo ? s->v[i].priority : lo;
		hi = s->v[i].priority > hi ? s->v[i].priority : hi;
	}
	if (s->n == 0 || limit == 0)
		return;
	/* diff fits: priorities stay within a few times the total stake. */
	int64_t diff = hi - lo;

	if (diff > limit) {
		int64_t ratio = (diff + limit - 1) / limit;

		for (size_t i = 0; i < s->n; i++)
			s->v[i].priority /= ratio;
	}
}

static void center(struct validator_set *s)
{
	__int128 sum = 0;

	if (!s->n)
		return;
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i].priority;
	int64_t avg = (int64_t)(sum / (__int128)s->n);

	if (sum % (__int128)s->n != 0 && sum < 0)
		avg--;   /* floor, as CometBFT's big.Int division does */
	for (size_t i = 0; i < s->n; i++)
		s->v[i].priority -= avg;
}

size_t valset_increment(struct validator_set *s)
{
	int64_t total = total_power(s);
	size_t best = 0;

	rescale(s, total);
	center(s);
	for (size_t i = 0; i < s->n; i++) {
		s->v[i].priority += (int64_t)s->v[i].stake;
		/* The set is sorted by pubkey, so the first maximum is the smaller key. */
		if (s->v[i].priority > s->v[best].priority)
			best = i;
	}
	if (s->n)
		s->v[best].priority -= total;
	return best;
}

size_t valset_proposer(const struct validator_set *s, uint32_t round)
{
	struct validator_set copy = *s;
	size_t who = 0;

	for (uint64_t r = 0; r <= round; r++)
		who = valset_increment(&copy);
	return who;
}

void valset_next(const struct validator_set *cur, const struct validator_set *stakes,
		 struct validator_set *out)
{
	struct validator_set inc = *cur;
	int64_t total;

	valset_increment(&inc);
	*out = *stakes;
	total = total_power(stakes);
	for (size_t i = 0; i < out->n; i++) {
		const struct validator *old = valset_find(&inc, out->v[i].pubkey);

		out->v[i].priority = old ? old->priority : -(total + (total >> 3));
	}
}

void priorities_encode(struct enc *e, const struct validator_set *s)
{
	enc_u32(e, (uint32_t)s->n);
	for (size_t i = 0; i < s->n; i++) {
		enc_fixed(e, s->v[i].pubkey, PUBKEY_LEN);
		enc_u64(e, s->v[i].stake);
		enc_u64(e, (uint64_t)s->v[i].priority);
	}
}

int priorities_decode(struct validator_set *s, const uint8_t *p, size_t n)
{
	struct dec d;
	uint32_t count;

	memset(s, 0, sizeof(*s));
	dec_init(&d, p, n);
	count = dec_u32(&d);
	if (count > VALIDATORS_MAX)
		dec_fail(&d, TALLY_E_TOOLONG);
	for (uint32_t i = 0; i < count && !dec_error(&d); i++) {
		dec_fixed(&d, s->v[i].pubkey, PUBKEY_LEN);
		s->v[i].stake = dec_u64(&d);
		s->v[i].priority = (int64_t)dec_u64(&d);
	}
	s->n = dec_error(&d) ? 0 : count;
	/* Stored by this node, but checked by the same rule as any set. */
	if (!dec_error(&d) && valset_check(s))
		dec_fail(&d, TALLY_E_VALSET);
	return dec_finish(&d);
}

