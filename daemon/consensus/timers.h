/* The engine's timers as an I/O layer keeps them (engine_io.schedule): at
 * most one per (height, round, wait), the latest request winning, fired
 * earliest first. tallyd's driver and the devnet's loopback both keep them
 * so. Not thread-safe: the owner's lock guards it. */
#ifndef TALLY_CONSENSUS_TIMERS_H
#define TALLY_CONSENSUS_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/consensus/engine.h"

struct cs_timer {
	uint64_t at_ns;                  /* on the engine's now_ns clock */
	struct cs_timeout t;
};

struct cs_timers {
	struct cs_timer *v;
	size_t n, cap;
};

/* Arms t at at_ns (again, if it is armed). 0 or TALLY_E_NOMEM. */
int cs_timers_set(struct cs_timers *s, uint64_t at_ns, const struct cs_timeout *t);
/* Takes the earliest timer due at or before until into *t; false when none. */
bool cs_timers_pop(struct cs_timers *s, uint64_t until, struct cs_timeout *t);
/* When the earliest is due; UINT64_MAX when none is armed. */
uint64_t cs_timers_next(const struct cs_timers *s);
void cs_timers_free(struct cs_timers *s);

#endif
