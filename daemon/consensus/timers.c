/* The engine's timers (see timers.h). */
#include "daemon/consensus/timers.h"

#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

int cs_timers_set(struct cs_timers *s, uint64_t at_ns, const struct cs_timeout *t)
{
	for (size_t i = 0; i < s->n; i++)
		if (!memcmp(&s->v[i].t, t, sizeof(*t))) {
			s->v[i].at_ns = at_ns;
			return 0;
		}
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct cs_timer *grown = realloc(s->v, cap * sizeof(*grown));

		if (!grown)
			return TALLY_E_NOMEM;
		s->v = grown;
		s->cap = cap;
	}
	memset(&s->v[s->n], 0, sizeof(s->v[0]));
	s->v[s->n].at_ns = at_ns;
	s->v[s->n].t = *t;
	s->n++;
	return 0;
}

bool cs_timers_pop(struct cs_timers *s, uint64_t until, struct cs_timeout *t)
{
	size_t best = s->n;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].at_ns <= until && (best == s->n || s->v[i].at_ns < s->v[best].at_ns))
			best = i;
	if (best == s->n)
		return false;
	*t = s->v[best].t;
	s->v[best] = s->v[--s->n];
	return true;
}

uint64_t cs_timers_next(const struct cs_timers *s)
{
	uint64_t next = UINT64_MAX;

	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].at_ns < next)
			next = s->v[i].at_ns;
	return next;
}

void cs_timers_free(struct cs_timers *s)
{
	free(s->v);
	memset(s, 0, sizeof(*s));
}
