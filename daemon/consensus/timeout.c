/* Consensus timeouts (see timeout.h). */
#include "daemon/consensus/timeout.h"

#include <stddef.h>

#include "lib/errors.h"

#define MS 1000000ull
#define HOUR_NS (3600ull * 1000 * MS)

struct cs_timeouts cs_timeouts_default(void)
{
	struct cs_timeouts t = {
		.propose_ns = CS_TIMEOUT_PROPOSE_MS * MS,
		.propose_delta_ns = CS_TIMEOUT_PROPOSE_DELTA_MS * MS,
		.prevote_ns = CS_TIMEOUT_PREVOTE_MS * MS,
		.prevote_delta_ns = CS_TIMEOUT_PREVOTE_DELTA_MS * MS,
		.precommit_ns = CS_TIMEOUT_PRECOMMIT_MS * MS,
		.precommit_delta_ns = CS_TIMEOUT_PRECOMMIT_DELTA_MS * MS,
		.commit_ns = CS_TIMEOUT_COMMIT_MS * MS,
	};

	return t;
}

int cs_timeouts_check(const struct cs_timeouts *t, char *why)
{
	const uint64_t v[] = { t->propose_ns, t->propose_delta_ns, t->prevote_ns,
			       t->prevote_delta_ns, t->precommit_ns, t->precommit_delta_ns,
			       t->commit_ns };

	if (!t->propose_ns || !t->prevote_ns || !t->precommit_ns)
		return why_set(why, TALLY_E_INVALID, "the propose, prevote and precommit"
			       " timeouts must be above zero");
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] > HOUR_NS)
			return why_set(why, TALLY_E_INVALID, "a consensus timeout above an hour"
				       " would stall the chain");
	return 0;
}

static uint64_t grow(uint64_t base, uint64_t delta, uint32_t round)
{
	unsigned __int128 ns = (unsigned __int128)delta * round + base;

	return ns > UINT64_MAX ? UINT64_MAX : (uint64_t)ns;
}

uint64_t cs_timeout_ns(const struct cs_timeouts *t, enum cs_wait w, uint32_t round)
{
	switch (w) {
	case CS_WAIT_PROPOSE:
		return grow(t->propose_ns, t->propose_delta_ns, round);
	case CS_WAIT_PREVOTE:
		return grow(t->prevote_ns, t->prevote_delta_ns, round);
	case CS_WAIT_PRECOMMIT:
		return grow(t->precommit_ns, t->precommit_delta_ns, round);
	case CS_WAIT_COMMIT:
	default:
		return t->commit_ns;
	}
}
